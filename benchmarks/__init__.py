"""Benchmarks: ``make bench`` runs ``python -m benchmarks``; they talk only to 127.0.0.1."""
