"""Corpus-scale data pipelines on datatrove: Magpie instruction synthesis and mOSCAR document filters."""
