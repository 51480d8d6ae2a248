"""Cluster simulators (no torch): C4's collective-communication diagnosis and planning (:mod:`llmlab.sim.c4`)."""
