"""C4P: plan the paths of all jobs' connections, then steer each one there through ECMP.

The master knows every connection (collective traffic is a few long-lived, predictable elephant flows). For
each connection it picks the sending NIC port, the receiving NIC port (dual-port balance) and the spine,
greedily minimising the most loaded link on the path (load = connections / capacity), then improves the
assignment by re-placing connections one at a time until no move lowers that link's load. It then searches
for a UDP source port whose 5-tuple hash makes the leaf's ECMP choose the planned spine, so the switches
need no new configuration. Links that are down (not routable) are left out, so re-planning after a failure
is running the planner again on the faulty topology; damage that routing cannot see (a degraded link, a blackhole) is
invisible to it too, as in a real fabric.
"""

from __future__ import annotations

import numpy as np

from llmlab.core.errors import ConfigError
from llmlab.sim.c4.cluster import Connection, Route
from llmlab.sim.c4.network import Topology, ecmp_spine


def _options(topo: Topology, c: Connection) -> tuple[np.ndarray, np.ndarray]:
    """Every routable path of a connection.

    Returns:
        ``(p, q, spine)`` rows (spine -1: same leaf) and their links ``(options, 4)`` (same-leaf paths padded
        with the dummy index ``n_links``).
    """
    n_links = topo.capacity.size
    meta, mats = [], []
    for p in topo.alive_ports(c.src_node, c.rail):
        for q in topo.alive_ports(c.dst_node, c.rail):
            up, down = topo.host_link(c.src_node, c.rail, p, "up"), topo.host_link(c.dst_node, c.rail, q, "down")
            a, b = topo.leaf_of(c.src_node, p), topo.leaf_of(c.dst_node, q)
            if a == b:
                meta.append((p, q, -1))
                mats.append(np.array([[up, down, n_links, n_links]]))
                continue
            s = np.array(topo.alive_uplinks(*a), dtype=np.int64)
            f_up = topo.fabric_link(a[0], a[1], 0, True) + 2 * s
            f_down = topo.fabric_link(b[0], b[1], 0, False) + 2 * s
            ok = topo.routable[f_down]
            s, f_up, f_down = s[ok], f_up[ok], f_down[ok]
            meta += [(p, q, int(x)) for x in s]
            mats.append(np.stack([np.full(s.size, up), f_up, f_down, np.full(s.size, down)], axis=1))
    if not meta:
        raise ConfigError(f"no usable path for {c}")
    return np.array(meta), np.concatenate(mats)


def find_sport(topo: Topology, c: Connection, route: tuple[int, int, int], seed: int,
               start: int = 49152) -> int:
    """A UDP source port whose ECMP hash at the source leaf lands on the planned spine."""
    p, q, s = route
    if s < 0:
        return start
    src, dst = (c.src_node, c.rail, p), (c.dst_node, c.rail, q)
    for sport in range(start, 65536):
        if ecmp_spine(topo, src, sport, dst, seed) == s:
            return sport
    raise ConfigError(f"no source port steers {c} to spine {s}")


def plan_routes(topo: Topology, conns: list[Connection], seed: int, passes: int = 3) -> list[Route]:
    """Min-max-link-load path allocation for all connections (greedy, then single-move improvement).

    Args:
        topo: Topology (faults applied; unroutable or dead links are avoided).
        conns: Every job's connections.
        seed: The switches' ECMP hash seed (known to the planner, as C4 probes the hash mapping).
        passes: Improvement passes.

    Returns:
        One route per connection, with the source port that realises it.
    """
    n_links = topo.capacity.size
    nominal = Topology.build(topo.spec).capacity  # the planner sees link state (routable), not hidden damage
    inv_cap = np.append(1.0 / nominal, 0.0)
    load = np.zeros(n_links + 1)  # the extra entry pads 2-link (same-leaf) paths; its cost is 0
    opts = [_options(topo, c) for c in conns]
    mats = [m for _, m in opts]  # per connection (options, 4) link indices
    choice = np.zeros(len(conns), dtype=np.int64)

    def best(i: int) -> int:
        after = (load[mats[i]] + 1) * inv_cap[mats[i]]  # (options, 4) load per capacity if placed there
        return int(np.lexsort((after.sum(1), after.max(1)))[0])

    for i in range(len(conns)):
        choice[i] = best(i)
        load[mats[i][choice[i]]] += 1
    for _ in range(passes):
        moved = False
        for i in range(len(conns)):
            load[mats[i][choice[i]]] -= 1
            j: int = best(i)
            moved |= j != choice[i]
            choice[i] = j
            load[mats[i][j]] += 1
        if not moved:
            break
    out = []
    for c, (meta, _), jj in zip(conns, opts, choice.tolist(), strict=True):
        p, q, s = (int(x) for x in meta[jj])
        out.append(Route(find_sport(topo, c, (p, q, s), seed), p, q, s))
    return out


def max_link_load(topo: Topology, links: list[np.ndarray]) -> float:
    """Most loaded link's connections per nominal capacity, in port units (1.0: one connection per port's worth)."""
    load = np.zeros(topo.capacity.size)
    for lk in links:
        load[lk] += 1
    used = load > 0
    nominal = Topology.build(topo.spec).capacity
    return float((load[used] / nominal[used]).max() * topo.spec.port_gbps * 1e9 / 8)


__all__ = ["find_sport", "max_link_load", "plan_routes"]
