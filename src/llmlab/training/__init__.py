"""Training recipes (the ``torch`` extra): the tiny byte-level LM lab and its experiments, DPO/DiscoPOP.

Nothing is imported here, so ``import llmlab.training`` does not import torch; import the submodules.
"""
