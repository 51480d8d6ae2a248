"""C4: diagnosing and planning collective traffic in large training clusters, at simulator scale.

Paper: Dong et al., "Boosting Large-scale Parallel Training Efficiency with C4: A Communication-Driven
Approach" (arXiv 2406.04594). No official code (C4 is Alibaba's production extension of its collective
library). Implemented: a flow-level simulator (:mod:`~llmlab.sim.c4.network`: 2-tier leaf-spine with
dual-port NICs, ECMP on the 5-tuple, max-min fair sharing by progressive filling; :mod:`~llmlab.sim.c4.cluster`:
jobs of BSP iterations, hierarchical ring all-reduce per rail and channel, fault injection, C4a-style telemetry),
C4D (§3, the four syndromes and delay-matrix attribution, :mod:`~llmlab.sim.c4.c4d`) and C4P (§4, global path
allocation, dual-port balance, source-port steering of ECMP and re-planning on failure,
:mod:`~llmlab.sim.c4.c4p`).

Deviations (deliberate):
* The simulator's max-min solver is our own (vectorised progressive filling, needed for sweeps over hundreds of
  hash seeds); it is tested against SimGrid's CM02 max-min model on the same topologies
  (``tests/sim/c4/test_simgrid_parity.py``, skipped without SimGrid's Python bindings).
* Intra-node (NVLink) phases of the hierarchical all-reduce are not simulated; the inter-node rings are the
  bottleneck the paper is about. Only 2-tier leaf-spine topologies (no 3-tier fat-tree).
* A ring's connections share one rate (the ring runs at its slowest connection's pace); per-connection
  telemetry reports each connection's own max-min pace, as the agents measure each connection's transfers.
* Detection thresholds (slow ratio 0.7, 3 iterations persistence, straggler window 5, 30 s hang timeout) and
  the degraded-link factor (0.1) are ours; the paper does not publish its constants. Path knowledge used to
  localise link faults comes from the planner, as in C4.
"""
