"""Corpus pipelines on datatrove: Magpie instruction synthesis and the mOSCAR document filters.

``pipeline.run_pipeline`` is the one place that builds a datatrove executor (local or Ray); the paper
modules (``magpie.py``, ``moscar.py``) only list their steps.
"""
