from __future__ import annotations

import math

import numpy as np
import pytest

from llmlab.core.errors import ConfigError
from llmlab.sim.c4.network import (
    ClusterSpec,
    Topology,
    busbw,
    ecmp_spine,
    fluid_finish_times,
    max_min_rates,
    ring_allreduce_closed_form,
    ring_allreduce_time,
)


def test_single_flow_gets_line_rate_and_k_flows_share_equally():
    cap = np.array([100.0, 1000.0])
    assert max_min_rates([np.array([0, 1])], cap).tolist() == [100.0]
    r = max_min_rates([np.array([0])] * 4, cap)
    assert np.allclose(r, 25.0)


def test_max_min_gives_leftover_to_unconstrained_flows():
    # flows 0,1 share link 0 (cap 10); flow 1 also crosses link 1 (cap 2): max-min gives 8 and 2
    r = max_min_rates([np.array([0]), np.array([0, 1]), np.array([2])], np.array([10.0, 2.0, 5.0]))
    assert np.allclose(r, [8.0, 2.0, 5.0])
    # brute-force check of max-min: no flow can grow without shrinking a flow that is not larger
    caps = np.array([10.0, 2.0, 5.0])
    links = [np.array([0]), np.array([0, 1]), np.array([2])]
    for i in range(3):
        for lk in links[i]:
            load = sum(r[j] for j in range(3) if lk in links[j])
            if math.isclose(load, caps[lk]):
                break
        else:
            pytest.fail(f"flow {i} has no saturated link")


def test_grouped_flows_share_one_rate():
    # a ring of 2 connections: one crosses a slow link; both run at its pace, freeing capacity for flow 2
    r = max_min_rates([np.array([0]), np.array([1]), np.array([1])], np.array([1.0, 10.0]), np.array([0, 0, 1]))
    assert np.allclose(r, [1.0, 1.0, 9.0])


def test_dead_link_flows_never_finish():
    fin = fluid_finish_times([np.array([0]), np.array([1])], np.array([5.0, 5.0]), np.array([0.0, 5.0]))
    assert math.isinf(fin[0]) and fin[1] == pytest.approx(1.0)


def test_fluid_reshares_when_a_flow_finishes():
    # two flows on one link of 10: the small one ends at t=1 (rate 5), the other then gets 10
    fin = fluid_finish_times([np.array([0]), np.array([0])], np.array([5.0, 15.0]), np.array([10.0]))
    assert fin.tolist() == pytest.approx([1.0, 2.0])


def _ring_topology(n: int, gbytes: float) -> tuple[list[np.ndarray], np.ndarray]:
    """n NPUs, a unidirectional link i -> i+1 each: collision-free for a ring collective."""
    return [np.array([i]) for i in range(n)], np.full(n, gbytes * 1e9)


@pytest.mark.parametrize("config", ["Ring_4npus.yml", "Ring_8npus.yml", "Ring_16npus.yml", "HGX-H100-validated.yml"])
def test_ring_allreduce_equals_alpha_beta_on_astra_sim_configs(shared_data, config):
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load((shared_data / "collective-sim/astra-sim/examples/network/analytical" / config).read_text())
    n, bw, lat = cfg["npus_count"][0], cfg["bandwidth"][0], cfg["latency"][0] * 1e-9
    if cfg["topology"][0] == "Ring":
        links, cap = _ring_topology(n, bw)
        alpha = lat
    else:  # switch: NPU i -> switch -> NPU i+1 over its own up and down links (no collisions in a ring)
        links = [np.array([i, n + (i + 1) % n]) for i in range(n)]
        cap = np.full(2 * n, bw * 1e9)
        alpha = 2 * lat
    for size in (16 * 2**20, 64 * 2**20):  # the sizes of SimAI's microAllReduce example
        t = ring_allreduce_time(size, n, links, cap, alpha)
        assert t == pytest.approx(ring_allreduce_closed_form(size, n, bw * 1e9, alpha), rel=1e-12)
        # NCCL-tests busbw: 2(n-1)/n * S / t, which approaches the link bandwidth as S grows
        assert busbw(size, t, n) == pytest.approx(2 * (n - 1) / n * size / t)
        assert busbw(size, t, n) < bw * 1e9
    big = 2**40
    assert busbw(big, ring_allreduce_time(big, n, links, cap, alpha), n) == pytest.approx(bw * 1e9, rel=1e-4)


def test_topology_paths_and_capacities():
    spec = ClusterSpec(n_nodes=16, nodes_per_leaf=8, n_spines=4)
    t = Topology.build(spec)
    assert t.index["n3/nic5/p1:down"] == t.host_link(3, 5, 1, "down")
    assert t.index["spine2->leaf1.0"] == t.fabric_link(1, 0, 2, False)
    # 1:1 oversubscription: a leaf's uplinks carry what its host ports can send
    leaf_up = sum(t.capacity[t.fabric_link(0, 0, s, True)] for s in range(4))
    assert leaf_up == pytest.approx(8 * 8 * spec.port_gbps * 1e9 / 8)
    same_leaf = t.path((0, 0, 0), (1, 0, 0), 0)
    assert len(same_leaf) == 2
    cross = t.path((0, 0, 0), (9, 0, 1), 3)
    assert [t.names[i] for i in cross] == ["n0/nic0/p0:up", "leaf0.0->spine3", "spine3->leaf1.1", "n9/nic0/p1:down"]
    assert t.physical(cross[1]) == "leaf0.0-spine3" == t.physical(t.fabric_link(0, 0, 3, False))


def test_ecmp_is_deterministic_and_spreads_and_skips_dead_uplinks():
    t = Topology.build(ClusterSpec(n_nodes=16, nodes_per_leaf=8, n_spines=4))
    picks = [ecmp_spine(t, (0, 0, 0), sport, (9, 0, 0), seed=1) for sport in range(49152, 49152 + 400)]
    assert picks == [ecmp_spine(t, (0, 0, 0), sport, (9, 0, 0), seed=1) for sport in range(49152, 49152 + 400)]
    assert set(picks) == {0, 1, 2, 3} and max(np.bincount(picks)) < 150
    t.routable[t.fabric_link(0, 0, 2, True)] = False
    assert 2 not in {ecmp_spine(t, (0, 0, 0), sport, (9, 0, 0), seed=1) for sport in range(49152, 49352)}


def test_spec_validation():
    with pytest.raises(ConfigError):
        ClusterSpec(n_nodes=10, nodes_per_leaf=8)
