"""Inference-time methods, one module per paper. Each takes a Query and named Model roles."""
