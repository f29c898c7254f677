"""Benchmarks: their definitions, prepare scripts and shipped task data."""
