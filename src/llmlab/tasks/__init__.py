"""Benchmarks, judges and scorers, one module per paper or dataset."""
