"""Helpers for end-to-end tests: a learner chatting with the bot through a platform emulator."""
