"""Our max-min fluid model against SimGrid's (CM02, latency 0, no TCP window) on the same topologies.

Runs when SimGrid's Python bindings import (``pip install simgrid`` or Debian ``python3-simgrid``; point
``LLMLAB_SIMGRID_PATH`` at the folder holding the module if it is outside this interpreter's site-packages,
e.g. ``/usr/lib/python3/dist-packages``); skips otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmlab.sim.c4.cluster import Fault, apply_faults, ecmp_routes, place_jobs, ring_connections, route_links
from llmlab.sim.c4.network import ClusterSpec, Topology, fluid_finish_times

RUNNER = Path(__file__).with_name("_simgrid_runner.py")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    extra = os.environ.get("LLMLAB_SIMGRID_PATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), extra) if p)
    return env


def _simgrid_available() -> bool:
    r = subprocess.run([sys.executable, "-c", "import simgrid"], env=_env(), capture_output=True, timeout=60)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not _simgrid_available(),
                                reason="SimGrid's Python bindings not importable (set LLMLAB_SIMGRID_PATH)")


def _simgrid(capacity: np.ndarray, flows: list[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    sc = {"capacity": capacity.tolist(), "flows": [f.tolist() for f in flows], "sizes": sizes.tolist()}
    r = subprocess.run([sys.executable, str(RUNNER)], input=json.dumps(sc), env=_env(), capture_output=True,
                       text=True, timeout=300, check=True)
    return np.array(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("faulty", [False, True])
def test_flow_finish_times_match_simgrid_on_a_leaf_spine_fabric(faulty):
    spec = ClusterSpec(n_nodes=16, nodes_per_leaf=4, n_spines=4)
    topo = Topology.build(spec)
    if faulty:  # a degraded uplink and a port down (bond failover) change the sharing
        topo = apply_faults(topo, [Fault("degraded_link", 0, group=1, plane=0, spine=2, factor=0.1),
                                   Fault("port_down", 0, node=5, nic=3, port=0)])
    jobs = place_jobs(spec, 3, 4, seed=1)
    conns = ring_connections(spec, jobs, channels=2)
    links = [route_links(topo, c, r) for c, r in zip(conns, ecmp_routes(topo, conns, seed=4), strict=True)]
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 64, len(links)) * 2**20  # different sizes: rates are re-shared as flows end
    ours = fluid_finish_times(links, sizes.astype(float), topo.capacity)
    theirs = _simgrid(topo.capacity, links, sizes)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
