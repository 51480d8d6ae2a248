"""Flow-level network model: leaf-spine topology with dual-port NICs, ECMP, max-min fair sharing, ring all-reduce.

Topology (2-tier Clos, the dual-plane layout of C4's clusters): nodes of ``gpus_per_node`` GPUs, one NIC per
GPU (rail) with ``ports_per_nic`` ports; port ``p`` of every NIC of leaf group ``g`` connects to leaf ``(g, p)``
(one leaf per plane), every leaf connects to every spine, uplink capacity set by the oversubscription ratio
(1:1 by default). All links are full duplex: one directed link per direction.

Bandwidth sharing is max-min fair by progressive filling. Flows can be grouped: the flows of one group (one
ring of a collective) are constrained to equal rates, because a ring's pipeline runs at the pace of its
slowest connection; singleton groups give plain per-flow max-min (what SimGrid's CM02 model computes, and
what the parity test compares).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from llmlab.core.errors import ConfigError

GBPS = 1e9 / 8  # bytes per second in one Gb/s
ROCE_DPORT = 4791  # RoCEv2 UDP destination port


@dataclass(frozen=True)
class ClusterSpec:
    """Cluster geometry.

    Attributes:
        n_nodes: Nodes.
        gpus_per_node: GPUs (= NICs, one rail each) per node.
        ports_per_nic: Ports per NIC (2: dual-port, bonded).
        port_gbps: Port speed (Gb/s).
        nodes_per_leaf: Nodes per leaf group (a group has one leaf per port plane).
        n_spines: Spines (every leaf has one uplink to each).
        oversubscription: Leaf downlink / uplink capacity.
        link_latency_s: One-way latency per hop.
    """

    n_nodes: int = 64
    gpus_per_node: int = 8
    ports_per_nic: int = 2
    port_gbps: float = 200.0
    nodes_per_leaf: int = 8
    n_spines: int = 16
    oversubscription: float = 1.0
    link_latency_s: float = 1e-6

    def __post_init__(self) -> None:
        if self.n_nodes % self.nodes_per_leaf:
            raise ConfigError(f"n_nodes={self.n_nodes} must be a multiple of nodes_per_leaf={self.nodes_per_leaf}")
        if min(self.n_nodes, self.gpus_per_node, self.ports_per_nic, self.n_spines) < 1 or self.port_gbps <= 0:
            raise ConfigError("cluster sizes and port speed must be positive")

    @property
    def n_groups(self) -> int:
        """Leaf groups."""
        return self.n_nodes // self.nodes_per_leaf

    @property
    def nic_bytes_per_s(self) -> float:
        """Bonded NIC bandwidth (all ports), bytes/s."""
        return self.ports_per_nic * self.port_gbps * GBPS


@dataclass
class Topology:
    """Directed links with capacities (bytes/s) and names; index maps for the cluster's ports and uplinks.

    ``routable`` is what routing sees (ECMP and bond failover skip links that are down); ``capacity`` is what
    traffic gets. A blackhole link is routable with capacity 0; a port that is down is neither.
    """

    spec: ClusterSpec
    capacity: np.ndarray
    names: list[str]
    index: dict[str, int] = field(default_factory=dict)
    routable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if self.routable.size != self.capacity.size:
            self.routable = np.ones(self.capacity.size, dtype=bool)

    @classmethod
    def build(cls, spec: ClusterSpec) -> Topology:
        """Create all host links (up/down per NIC port) and leaf-spine links (up/down per pair)."""
        names: list[str] = []
        caps: list[float] = []
        port = spec.port_gbps * GBPS
        uplink = spec.nodes_per_leaf * spec.gpus_per_node * port / (spec.n_spines * spec.oversubscription)
        for n in range(spec.n_nodes):
            for k in range(spec.gpus_per_node):
                for p in range(spec.ports_per_nic):
                    names += [f"n{n}/nic{k}/p{p}:up", f"n{n}/nic{k}/p{p}:down"]
                    caps += [port, port]
        for g in range(spec.n_groups):
            for p in range(spec.ports_per_nic):
                for s in range(spec.n_spines):
                    names += [f"leaf{g}.{p}->spine{s}", f"spine{s}->leaf{g}.{p}"]
                    caps += [uplink, uplink]
        return cls(spec, np.array(caps, dtype=np.float64), names, {nm: i for i, nm in enumerate(names)})

    def copy(self) -> Topology:
        """An independent copy (for fault injection)."""
        return Topology(self.spec, self.capacity.copy(), self.names, self.index, self.routable.copy())

    def host_link(self, node: int, nic: int, port: int, direction: str) -> int:
        """Index of a NIC port's link (``up``: host to leaf, ``down``: leaf to host)."""
        sp = self.spec
        return ((node * sp.gpus_per_node + nic) * sp.ports_per_nic + port) * 2 + (direction == "down")

    def fabric_link(self, group: int, plane: int, spine: int, up: bool) -> int:
        """Index of the link leaf ``(group, plane)`` -> ``spine`` (``up``) or back."""
        sp = self.spec
        base = sp.n_nodes * sp.gpus_per_node * sp.ports_per_nic * 2
        return base + ((group * sp.ports_per_nic + plane) * sp.n_spines + spine) * 2 + (not up)

    def leaf_of(self, node: int, port: int) -> tuple[int, int]:
        """(group, plane) of the leaf a node's port ``port`` connects to."""
        return node // self.spec.nodes_per_leaf, port

    def path(self, src: tuple[int, int, int], dst: tuple[int, int, int], spine: int) -> list[int]:
        """Links from NIC port ``src = (node, nic, port)`` to ``dst`` via ``spine`` (unused when same leaf)."""
        a, b = self.leaf_of(src[0], src[2]), self.leaf_of(dst[0], dst[2])
        up, down = self.host_link(*src, "up"), self.host_link(*dst, "down")
        if a == b:
            return [up, down]
        return [up, self.fabric_link(a[0], a[1], spine, True), self.fabric_link(b[0], b[1], spine, False), down]

    def physical(self, link: int) -> str:
        """Name of the full-duplex physical link (or NIC port) a directed link belongs to."""
        nm = self.names[link]
        if nm.endswith((":up", ":down")):
            return nm.rsplit(":", 1)[0]
        a, b = nm.split("->")
        return "-".join(sorted((a, b), key=lambda x: not x.startswith("leaf")))

    def alive_uplinks(self, group: int, plane: int) -> list[int]:
        """Spines reachable from leaf ``(group, plane)`` over routable uplinks (what ECMP hashes over)."""
        first = self.fabric_link(group, plane, 0, True)
        return np.flatnonzero(self.routable[first:first + 2 * self.spec.n_spines:2]).tolist()

    def alive_ports(self, node: int, nic: int) -> list[int]:
        """Ports of a NIC that are up (what bond failover uses)."""
        return [p for p in range(self.spec.ports_per_nic) if self.routable[self.host_link(node, nic, p, "up")]]


def five_tuple_hash(src: tuple[int, int, int], dst: tuple[int, int, int], sport: int, salt: int) -> int:
    """Deterministic hash of a RoCE flow's 5-tuple (src/dst port addresses, UDP ports, protocol) and a salt.

    ``salt`` stands for the switch's hash seed and its identity (each hop hashes differently).
    """
    key = f"{src}|{dst}|{sport}|{ROCE_DPORT}|17|{salt}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def ecmp_spine(topo: Topology, src: tuple[int, int, int], sport: int, dst: tuple[int, int, int], seed: int) -> int:
    """Spine an ECMP leaf picks for a flow: hash(5-tuple) mod the spines that still route to the destination leaf.

    A spine whose uplink from the source leaf or whose downlink to the destination leaf is down is not in the
    ECMP group (routing withdraws it); a blackhole (routable, carrying nothing) stays in.
    """
    g, p = topo.leaf_of(src[0], src[2])
    dg, dp = topo.leaf_of(dst[0], dst[2])
    first_down = topo.fabric_link(dg, dp, 0, False)
    down_ok = topo.routable[first_down:first_down + 2 * topo.spec.n_spines:2]
    alive = [s for s in topo.alive_uplinks(g, p) if down_ok[s]]
    if not alive:
        raise ConfigError(f"no spine routes leaf{g}.{p} to leaf{dg}.{dp}")
    return alive[five_tuple_hash(src, dst, sport, seed * 1_000_003 + g * 31 + p) % len(alive)]


def max_min_rates(group_links: list[np.ndarray], capacity: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Max-min fair rates by progressive filling; flows of one group get equal rates.

    Args:
        group_links: Per flow, the directed links it crosses.
        capacity: Link capacities (bytes/s); 0 = dead link (its flows get rate 0).
        groups: Group id per flow (None: every flow its own group).

    Returns:
        Rate per flow (bytes/s).

    Example:
        >>> max_min_rates([np.array([0]), np.array([0, 1])], np.array([10.0, 3.0])).tolist()
        [7.0, 3.0]
    """
    n = len(group_links)
    if n == 0:
        return np.zeros(0)
    gid = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(gid.max()) + 1
    flow_of = np.concatenate([np.full(len(lk), i) for i, lk in enumerate(group_links)])
    link_of = np.concatenate([np.asarray(lk, dtype=np.int64) for lk in group_links])
    g_of = gid[flow_of]
    rate = np.zeros(n_groups)
    rem = capacity.astype(np.float64).copy()
    active = np.ones(n_groups, dtype=bool)
    dead = np.zeros(n_groups, dtype=bool)
    np.logical_or.at(dead, g_of, capacity[link_of] <= 0)
    active &= ~dead
    while active.any():
        on = active[g_of]
        load = np.bincount(link_of[on], minlength=capacity.size).astype(np.float64)  # active flows per link
        used = load > 0
        share = rem[used] / load[used]
        delta = float(share.min())
        rate[active] += delta
        rem[used] -= delta * load[used]
        tight = np.zeros(capacity.size, dtype=bool)
        tight[np.flatnonzero(used)[share <= delta * (1 + 1e-12)]] = True
        frozen = np.zeros(n_groups, dtype=bool)
        np.logical_or.at(frozen, g_of[on], tight[link_of[on]])
        active &= ~frozen
    return rate[gid]


def fluid_finish_times(group_links: list[np.ndarray], sizes: np.ndarray, capacity: np.ndarray,
                       groups: np.ndarray | None = None) -> np.ndarray:
    """Completion time of flows starting together, rates re-shared (max-min) whenever a group finishes.

    Returns:
        Per flow, seconds (``inf`` for a flow crossing a dead link).
    """
    n = len(group_links)
    gid = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    size = np.asarray(sizes, dtype=np.float64)
    left = size.copy()
    done = np.full(n, np.inf)
    t = 0.0
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        r = max_min_rates([group_links[i] for i in idx], capacity, gid[idx])
        ok = r > 0
        if not ok.any():  # only flows on dead links remain: they never finish
            break
        dt = float((left[idx[ok]] / r[ok]).min())
        t += dt
        left[idx] -= r * dt
        fin = idx[ok & (left[idx] <= 1e-9 * np.maximum(size[idx], 1.0))]
        done[fin] = t
        alive[fin] = False
    return done


def busbw(size_bytes: float, seconds: float, n_ranks: int) -> float:
    """NCCL-tests bus bandwidth of an all-reduce: ``algbw · 2(n−1)/n`` with ``algbw = S / t`` (bytes/s)."""
    return size_bytes / seconds * 2 * (n_ranks - 1) / n_ranks


def ring_allreduce_closed_form(size_bytes: float, n_ranks: int, bandwidth: float, alpha: float) -> float:
    """Alpha-beta time of a ring all-reduce: ``2(n−1)·(α + S/(n·B))`` (reduce-scatter + all-gather)."""
    return 2 * (n_ranks - 1) * (alpha + size_bytes / (n_ranks * bandwidth))


def ring_allreduce_time(size_bytes: float, n_ranks: int, step_links: list[np.ndarray], capacity: np.ndarray,
                        alpha: float) -> float:
    """Simulated ring all-reduce: ``2(n−1)`` steps; in each, every rank sends ``S/n`` to its successor.

    Args:
        size_bytes: Buffer size S per rank.
        n_ranks: Ranks in the ring.
        step_links: Per ring connection (rank i -> i+1), its links.
        capacity: Link capacities.
        alpha: Per-step latency (software + path latency).

    Returns:
        Seconds (the steps are identical: one fluid simulation of a step, times 2(n−1)).
    """
    chunk = size_bytes / n_ranks
    step = float(fluid_finish_times(step_links, np.full(len(step_links), chunk), capacity).max())
    return 2 * (n_ranks - 1) * (alpha + step) if math.isfinite(step) else math.inf


__all__ = [
    "GBPS",
    "ClusterSpec",
    "Topology",
    "busbw",
    "ecmp_spine",
    "five_tuple_hash",
    "fluid_finish_times",
    "max_min_rates",
    "ring_allreduce_closed_form",
    "ring_allreduce_time",
]
