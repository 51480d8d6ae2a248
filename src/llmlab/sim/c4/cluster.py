"""Jobs, ring all-reduce connections, ECMP routing, fault injection and C4a-style telemetry.

A job is a set of nodes running BSP iterations: every rank (GPU) computes, then all ranks enter an
all-reduce. The all-reduce is hierarchical: inside a node over NVLink (not simulated: assumed not to be the
bottleneck), across nodes as one ring per rail (GPU/NIC ``k`` of node ``i`` sends to NIC ``k`` of node ``i+1``)
and per channel (each channel is one RDMA connection with its own UDP source port, hence its own ECMP hash).
Per rail the ring all-reduces ``S / gpus_per_node`` bytes in ``2(m−1)`` steps of ``S / (gpus_per_node · m)``
split over the channels, so each connection carries ``2(m−1)/m · S / (gpus_per_node · channels)`` bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmlab.core.errors import ConfigError
from llmlab.sim.c4.network import (
    ClusterSpec,
    Topology,
    busbw,
    ecmp_spine,
    five_tuple_hash,
    fluid_finish_times,
    max_min_rates,
)

FAULT_KINDS = ("port_down", "degraded_link", "dead_link", "slow_gpu", "hung_rank")


@dataclass(frozen=True)
class Connection:
    """One ring connection: job, rail (NIC index), channel, source node and destination node."""

    job: int
    rail: int
    channel: int
    src_node: int
    dst_node: int

    @property
    def ring(self) -> tuple[int, int, int]:
        """The ring it belongs to (its rate is coupled to the ring's other connections)."""
        return (self.job, self.rail, self.channel)


@dataclass(frozen=True)
class Route:
    """Where a connection goes: UDP source port, the two NIC ports used and the spine (-1: same leaf)."""

    sport: int
    src_port: int
    dst_port: int
    spine: int


def place_jobs(spec: ClusterSpec, n_jobs: int, nodes_per_job: int, seed: int) -> list[list[int]]:
    """Random disjoint node sets (fragmented placement, as on a shared cluster), each sorted (ring order).

    Raises:
        ConfigError: When the jobs do not fit.
    """
    if n_jobs * nodes_per_job > spec.n_nodes:
        raise ConfigError(f"{n_jobs} jobs x {nodes_per_job} nodes do not fit in {spec.n_nodes} nodes")
    if nodes_per_job < 2:
        raise ConfigError("a job needs at least 2 nodes for an inter-node ring")
    perm = np.random.default_rng(seed).permutation(spec.n_nodes)
    return [sorted(int(x) for x in perm[j * nodes_per_job:(j + 1) * nodes_per_job]) for j in range(n_jobs)]


def ring_connections(spec: ClusterSpec, jobs: list[list[int]], channels: int = 2) -> list[Connection]:
    """All jobs' ring connections (per job, rail, channel: node i -> node i+1 mod m)."""
    out = []
    for j, nodes in enumerate(jobs):
        m = len(nodes)
        for k in range(spec.gpus_per_node):
            for c in range(channels):
                out += [Connection(j, k, c, nodes[i], nodes[(i + 1) % m]) for i in range(m)]
    return out


def ecmp_routes(topo: Topology, conns: list[Connection], seed: int) -> list[Route]:
    """Unplanned routing: random source ports, bond hashing over alive ports, ECMP at the leaf."""
    rng = np.random.default_rng(seed)
    out = []
    for c in conns:
        sport = int(rng.integers(49152, 65536))
        sp, dp = topo.alive_ports(c.src_node, c.rail), topo.alive_ports(c.dst_node, c.rail)
        if not sp or not dp:
            raise ConfigError(f"NIC n{c.src_node}/nic{c.rail} or n{c.dst_node}/nic{c.rail} has no port up")
        h = five_tuple_hash((c.src_node, c.rail, -1), (c.dst_node, c.rail, -1), sport, seed)
        p, q = sp[h % len(sp)], dp[(h >> 20) % len(dp)]
        src, dst = (c.src_node, c.rail, p), (c.dst_node, c.rail, q)
        spine = ecmp_spine(topo, src, sport, dst, seed) if topo.leaf_of(c.src_node, p) != topo.leaf_of(c.dst_node, q) \
            else -1
        out.append(Route(sport, p, q, spine))
    return out


def route_links(topo: Topology, c: Connection, r: Route) -> np.ndarray:
    """Directed links of a routed connection."""
    return np.array(topo.path((c.src_node, c.rail, r.src_port), (c.dst_node, c.rail, r.dst_port), max(r.spine, 0)))


def ideal_links(spec: ClusterSpec, conns: list[Connection],
                alive_ports: Any = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Collision-free fabric: only the NICs constrain (all ports bonded perfectly); links and capacities."""
    n_nic = spec.n_nodes * spec.gpus_per_node
    cap = np.full(2 * n_nic, spec.nic_bytes_per_s)
    if alive_ports is not None:
        for (node, nic), n_up in alive_ports.items():
            i = node * spec.gpus_per_node + nic
            cap[i] = cap[n_nic + i] = n_up * spec.port_gbps * 1e9 / 8
    links = [np.array([c.src_node * spec.gpus_per_node + c.rail, n_nic + c.dst_node * spec.gpus_per_node + c.rail])
             for c in conns]
    return links, cap


def conn_bytes(spec: ClusterSpec, m: int, size_bytes: float, channels: int) -> float:
    """Bytes one connection carries in a ring all-reduce of ``size_bytes`` per GPU over ``m`` nodes."""
    return 2 * (m - 1) / m * size_bytes / (spec.gpus_per_node * channels)


def allreduce_times(spec: ClusterSpec, conns: list[Connection], links: list[np.ndarray], capacity: np.ndarray,
                    jobs: list[list[int]], size_bytes: float, channels: int, alpha_s: float) -> np.ndarray:
    """Seconds of each job's all-reduce when all jobs run theirs at the same time (ring-coupled max-min).

    Returns:
        Per job seconds (``inf`` for a job with a connection on a dead link).
    """
    sizes = np.array([conn_bytes(spec, len(jobs[c.job]), size_bytes, channels) for c in conns])
    ring_ids = {r: i for i, r in enumerate(sorted({c.ring for c in conns}))}
    groups = np.array([ring_ids[c.ring] for c in conns])
    fin = fluid_finish_times(links, sizes, capacity, groups)
    job_of = np.array([c.job for c in conns])
    out = np.zeros(len(jobs))
    for j, nodes in enumerate(jobs):
        out[j] = fin[job_of == j].max() + 2 * (len(nodes) - 1) * alpha_s
    return out


def job_busbw(spec: ClusterSpec, jobs: list[list[int]], times: np.ndarray, size_bytes: float) -> np.ndarray:
    """Per job NCCL-tests bus bandwidth of the inter-node ring (per rail: ``S/gpus`` over ``m`` ranks), bytes/s."""
    return np.array([busbw(size_bytes / spec.gpus_per_node, t, len(nodes)) for nodes, t in zip(jobs, times,
                                                                                                   strict=True)])


# -- faults and telemetry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """An injected fault, active from iteration ``onset``.

    ``kind``: port_down (``node, nic, port``), degraded_link / dead_link (``group, plane, spine``; dead = a
    blackhole: still routable, carries nothing), slow_gpu (``node, nic`` = GPU index, compute × ``factor``),
    hung_rank (``node, nic``: the rank stops entering collectives).
    """

    kind: str
    onset: int
    node: int = -1
    nic: int = -1
    port: int = -1
    group: int = -1
    plane: int = -1
    spine: int = -1
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault '{self.kind}'. Available: {', '.join(FAULT_KINDS)}")

    @property
    def culprit(self) -> str:
        """The component C4D should name."""
        if self.kind == "port_down":
            return f"n{self.node}/nic{self.nic}"
        if self.kind in ("slow_gpu", "hung_rank"):
            return f"n{self.node}/gpu{self.nic}"
        return f"leaf{self.group}.{self.plane}-spine{self.spine}"

    @property
    def syndrome(self) -> str:
        """The C4D syndrome this fault produces."""
        return {"port_down": "comm_slow", "degraded_link": "comm_slow", "dead_link": "comm_hang",
                "slow_gpu": "noncomm_slow", "hung_rank": "noncomm_hang"}[self.kind]


def apply_faults(topo: Topology, faults: list[Fault]) -> Topology:
    """A copy of ``topo`` with the network faults applied."""
    t = topo.copy()
    for f in faults:
        if f.kind == "port_down":
            for d in ("up", "down"):
                i = t.host_link(f.node, f.nic, f.port, d)
                t.capacity[i], t.routable[i] = 0.0, False
        elif f.kind in ("degraded_link", "dead_link"):
            for nm in (f"leaf{f.group}.{f.plane}->spine{f.spine}", f"spine{f.spine}->leaf{f.group}.{f.plane}"):
                i = t.index[nm]
                t.capacity[i] = t.capacity[i] * f.factor if f.kind == "degraded_link" else 0.0
    return t


@dataclass
class Telemetry:
    """What C4's agents report, per iteration: collective enter/exit per rank, bytes/duration per connection.

    ``collectives``: ``{"iter", "rank", "enter", "exit"}`` (enter/exit None when never happened);
    ``connections``: ``{"iter", "src", "dst", "channel", "bytes", "expected_bytes", "duration", "path"}``
    (``path``: physical links, as known from C4P's path allocation); ``end_time``: when the stream stops.
    """

    collectives: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    iter_start: list[float] = field(default_factory=list)
    end_time: float = 0.0
    probe: Callable[[str], float] | None = None  # active path probing: delivered / nominal bandwidth of a link


def make_probe(topo0: Topology, topo: Topology) -> Callable[[str], float]:
    """Probe of a physical link (or NIC port) on the faulty topology: worst direction's capacity / nominal."""
    by_phys: dict[str, list[int]] = {}
    for i in range(topo0.capacity.size):
        by_phys.setdefault(topo0.physical(i), []).append(i)

    def probe(name: str) -> float:
        idx = by_phys[name]
        return float(min(topo.capacity[i] / topo0.capacity[i] for i in idx))

    return probe


def simulate_job(spec: ClusterSpec, nodes: list[int], n_iters: int, faults: list[Fault], *, seed: int = 0,
                 size_bytes: float = 256 * 2**20, compute_s: float = 0.05, jitter: float = 0.02,
                 channels: int = 2, alpha_s: float = 5e-6, hang_timeout_s: float = 30.0,
                 routing: str = "planned") -> Telemetry:
    """Run one job's BSP iterations with faults and emit its telemetry.

    ``routing``: ``planned`` (C4P, re-planned when a port or link goes down, as in C4's deployment; degraded
    links and blackholes are invisible to routing) or ``ecmp``. A hang (a rank that never enters, or a
    connection on a dead link) ends the stream ``hang_timeout_s`` after the collective should have started.
    """
    from llmlab.sim.c4.c4p import plan_routes

    if routing not in ("planned", "ecmp"):
        raise ConfigError(f"unknown routing '{routing}'. Available: planned, ecmp")
    topo0 = Topology.build(spec)
    conns = ring_connections(spec, [nodes], channels)
    rng = np.random.default_rng(seed)
    nbytes = conn_bytes(spec, len(nodes), size_bytes, channels)
    cache: dict[tuple[Fault, ...], tuple[float, np.ndarray, list[list[str]]]] = {}
    tel = Telemetry()
    t = 0.0
    ranks = [(n, k) for n in nodes for k in range(spec.gpus_per_node)]
    for it in range(n_iters):
        active = tuple(f for f in faults if f.onset <= it)
        net = tuple(f for f in active if f.kind in ("port_down", "degraded_link", "dead_link"))
        if net not in cache:
            topo = apply_faults(topo0, list(net))
            tel.probe = make_probe(topo0, topo)
            routes = ecmp_routes(topo, conns, seed) if routing == "ecmp" else plan_routes(topo, conns, seed)
            links = [route_links(topo, c, r) for c, r in zip(conns, routes, strict=True)]
            coll = float(allreduce_times(spec, conns, links, topo.capacity, [nodes], size_bytes, channels,
                                         alpha_s)[0])
            own = max_min_rates(links, topo.capacity)  # each connection's own pace (uncoupled)
            paths = [sorted({topo.physical(int(x)) for x in lk}) for lk in links]
            cache[net] = (coll, own, paths)
        coll, own, paths = cache[net]
        tel.iter_start.append(t)
        enters: dict[tuple[int, int], float | None] = {}
        for n, k in ranks:
            c = compute_s * math.exp(jitter * rng.standard_normal())
            for f in active:
                if f.kind == "slow_gpu" and (f.node, f.nic) == (n, k):
                    c *= f.factor
            hung = any(f.kind == "hung_rank" and (f.node, f.nic) == (n, k) for f in active)
            enters[(n, k)] = None if hung else t + c
        entered = [v for v in enters.values() if v is not None]
        start = max(entered)
        hang = len(entered) < len(ranks) or not math.isfinite(coll)
        end = start + (hang_timeout_s if hang else coll)
        for (n, k), e in enters.items():
            tel.collectives.append({"iter": it, "rank": f"n{n}/gpu{k}", "enter": e, "exit": None if hang else end})
        if len(entered) == len(ranks):  # connections only run once every rank is in
            for cn, rate, path in zip(conns, own, paths, strict=True):
                moved = nbytes if rate > 0 else 0.0
                tel.connections.append({"iter": it, "src": f"n{cn.src_node}/nic{cn.rail}",
                                        "dst": f"n{cn.dst_node}/nic{cn.rail}", "channel": cn.channel,
                                        "bytes": moved, "expected_bytes": nbytes,
                                        "duration": nbytes / rate if rate > 0 else None, "path": path})
        t = end
        if hang:
            break
    tel.end_time = t
    return tel


__all__ = [
    "FAULT_KINDS",
    "Connection",
    "Fault",
    "Route",
    "Telemetry",
    "allreduce_times",
    "apply_faults",
    "conn_bytes",
    "ecmp_routes",
    "ideal_links",
    "job_busbw",
    "make_probe",
    "place_jobs",
    "ring_connections",
    "route_links",
    "simulate_job",
]
