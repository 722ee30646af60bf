"""Benchmarks for dripcourse: scale of the delivery engine."""
