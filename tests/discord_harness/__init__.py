"""Test harness for the Discord adapter: a fake REST API on loopback and interactions fed to discord.py."""
