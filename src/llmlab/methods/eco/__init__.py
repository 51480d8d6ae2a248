"""ECO: "Large Language Model Unlearning via Embedding-Corrupted Prompts", Liu, Wang, Flanigan, Liu, arXiv 2406.07933.

Implements §3 of the paper: a prompt classifier flags prompts about the forget target
(:mod:`~llmlab.methods.eco.classifier`); flagged prompts get their input embeddings corrupted
(:mod:`~llmlab.methods.eco.corrupt`: the official corruption functions) through the hf backend's
input-embedding hook (:mod:`~llmlab.methods.eco.backend`); the corruption strength σ comes from the
zeroth-order search (:mod:`~llmlab.methods.eco.optim`). TOFU's metrics (:mod:`~llmlab.methods.eco.tofu`) and
the tiny-LM "as if never trained" experiment (:mod:`~llmlab.methods.eco.experiment`) check the claim.

Deliberate deviations from the official code (details in each module and docs/eco.md): only our own hook
is removed (the official ``remove_hooks`` clears every forward hook of every module); corruptions never
work in place and draw noise from an explicit generator; the zeroth-order step divides by the actual
distance between its two points when the lower one is clipped; the tiny-LM experiment's σ search starts
from the best point of a coarse log grid (its objective is not convex in σ); the prompt classifier is a TF-IDF logistic
regression trained here instead of a fine-tuned RoBERTa.
"""

from llmlab.methods.eco.classifier import PromptClassifier
from llmlab.methods.eco.optim import ZerothOrderScalar

__all__ = ["PromptClassifier", "ZerothOrderScalar"]
