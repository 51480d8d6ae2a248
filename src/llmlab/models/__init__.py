"""PyTorch modules (the ``torch`` extra): selective scan, Samba, sparse FFNs, MoE routing, quantization.

Nothing is imported here, so ``import llmlab.models`` does not import torch; import the submodules.
"""
