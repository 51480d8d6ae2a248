from __future__ import annotations

import numpy as np
import pytest

from llmlab.core.errors import ConfigError
from llmlab.sim.c4.c4d import diagnose
from llmlab.sim.c4.c4p import max_link_load, plan_routes
from llmlab.sim.c4.cluster import (
    Fault,
    allreduce_times,
    conn_bytes,
    ecmp_routes,
    ideal_links,
    job_busbw,
    place_jobs,
    ring_connections,
    route_links,
    simulate_job,
)
from llmlab.sim.c4.network import ClusterSpec, Topology, ecmp_spine

SPEC = ClusterSpec(n_nodes=32, nodes_per_leaf=8, n_spines=8)
SIZE = 64 * 2**20


def _setup(n_jobs=4, per_job=8, seed=0):
    topo = Topology.build(SPEC)
    jobs = place_jobs(SPEC, n_jobs, per_job, seed)
    return topo, jobs, ring_connections(SPEC, jobs, 2)


def _bw(topo, jobs, conns, routes):
    links = [route_links(topo, c, r) for c, r in zip(conns, routes, strict=True)]
    t = allreduce_times(SPEC, conns, links, topo.capacity, jobs, SIZE, 2, 0.0)
    return job_busbw(SPEC, jobs, t, SIZE), links


def test_ideal_fabric_gives_nic_line_rate_busbw():
    topo, jobs, conns = _setup()
    il, ic = ideal_links(SPEC, conns)
    t = allreduce_times(SPEC, conns, il, ic, jobs, SIZE, 2, 0.0)
    # per rail the ring moves 2(m-1)/m * S/8 bytes through each NIC at the bonded NIC rate
    m = 8
    assert t == pytest.approx(np.full(4, 2 * conn_bytes(SPEC, m, SIZE, 2) / SPEC.nic_bytes_per_s))
    assert job_busbw(SPEC, jobs, t, SIZE) == pytest.approx(np.full(4, SPEC.nic_bytes_per_s))


def test_planned_routes_are_realised_by_source_port_steering_and_beat_every_ecmp_seed():
    topo, jobs, conns = _setup()
    plan = plan_routes(topo, conns, seed=3)
    for c, r in zip(conns, plan, strict=True):
        if r.spine >= 0:  # the ECMP hash of the chosen 5-tuple lands on the planned spine
            assert ecmp_spine(topo, (c.src_node, c.rail, r.src_port), r.sport, (c.dst_node, c.rail, r.dst_port),
                              3) == r.spine
    planned, plinks = _bw(topo, jobs, conns, plan)
    il, ic = ideal_links(SPEC, conns)
    ideal = job_busbw(SPEC, jobs, allreduce_times(SPEC, conns, il, ic, jobs, SIZE, 2, 0.0), SIZE)
    assert planned.mean() == pytest.approx(ideal.mean(), rel=1e-6)  # collision-free plan exists at 1:1
    for seed in range(5):
        ecmp, elinks = _bw(topo, jobs, conns, ecmp_routes(topo, conns, seed))
        assert max_link_load(topo, plinks) <= max_link_load(topo, elinks)
        assert ecmp.mean() < planned.mean()


def test_dual_port_balance_uses_both_ports_of_every_nic():
    topo, jobs, conns = _setup(n_jobs=2)
    plan = plan_routes(topo, conns, seed=0)
    out_ports: dict[tuple[int, int], list[int]] = {}
    for c, r in zip(conns, plan, strict=True):
        out_ports.setdefault((c.src_node, c.rail), []).append(r.src_port)
    assert all(sorted(v) == [0, 1] for v in out_ports.values())  # 2 channels -> one per port


def test_replanning_avoids_failed_links():
    topo, jobs, conns = _setup()
    for s in (0, 1):
        for up in (True, False):
            i = topo.fabric_link(0, 0, s, up)
            topo.capacity[i], topo.routable[i] = 0.0, False
    plan = plan_routes(topo, conns, seed=0)
    links = [route_links(topo, c, r) for c, r in zip(conns, plan, strict=True)]
    assert all(topo.capacity[lk].min() > 0 for lk in links)
    bw, _ = _bw(topo, jobs, conns, plan)
    assert np.isfinite(bw).all() and (bw > 0).all()


def test_place_jobs_validation():
    with pytest.raises(ConfigError):
        place_jobs(SPEC, 5, 8, 0)
    with pytest.raises(ConfigError):
        Fault("meteor", 0)


def _job():
    topo, jobs, conns = _setup(n_jobs=1)
    plan = plan_routes(topo, conns, seed=0)
    used = sorted({(c.src_node // 8, r.src_port, r.spine) for c, r in zip(conns, plan, strict=True) if r.spine >= 0})
    return jobs[0], used


@pytest.mark.parametrize("kind", ["port_down", "degraded_link", "dead_link", "slow_gpu", "hung_rank"])
def test_c4d_names_the_injected_component_and_syndrome(kind):
    nodes, used = _job()
    g, p, s = used[len(used) // 2]
    fault = {
        "port_down": Fault(kind, 4, node=nodes[3], nic=2, port=1),
        "degraded_link": Fault(kind, 4, group=g, plane=p, spine=s, factor=0.05),  # 10 GB/s of a 200 GB/s uplink
        "dead_link": Fault(kind, 4, group=g, plane=p, spine=s, factor=0.0),
        "slow_gpu": Fault(kind, 4, node=nodes[5], nic=7, factor=1.5),
        "hung_rank": Fault(kind, 4, node=nodes[1], nic=4),
    }[kind]
    tel = simulate_job(SPEC, nodes, 14, [fault], seed=1, size_bytes=SIZE)
    verdicts = diagnose(tel)
    assert [v.syndrome for v in verdicts] == [fault.syndrome]
    assert verdicts[0].culprits == (fault.culprit,)
    assert verdicts[0].iteration >= fault.onset  # never before the fault exists
    # telemetry is shaped like C4a's: per rank enter/exit, per connection bytes and duration
    rec = tel.collectives[0]
    assert set(rec) == {"iter", "rank", "enter", "exit"} and rec["exit"] > rec["enter"]
    assert {"src", "dst", "bytes", "duration"} <= set(tel.connections[0])


def test_c4d_is_quiet_on_a_healthy_job():
    nodes, _ = _job()
    assert diagnose(simulate_job(SPEC, nodes, 14, [], seed=2, size_bytes=SIZE)) == []
