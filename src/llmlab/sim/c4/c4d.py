"""C4D: classify the four syndromes from the agents' telemetry and name the culprit component.

1. Communication hang: every rank entered, the collective does not finish within the timeout; the stalled
   connections (no progress) are localised like slow ones (below).
2. Non-communication hang: some ranks never entered while the others wait; those ranks are the culprits.
3. Communication slow: per-connection throughput far below the job's median for ``persist`` iterations in a
   row; the source x destination delay matrix localises it: a NIC whose row (as sender) and column (as
   receiver) are all slow is the culprit (a port down halves a NIC both ways); otherwise a row-only or
   column-only NIC; the remaining slow cells are explained by the physical link that all of them cross and
   no healthy connection crosses (path knowledge from C4P).
4. Non-communication slow: the same rank arrives last at the collective in most of a window of iterations,
   by far more than the jitter; it is the straggler.

Thresholds are ours (the paper gives the mechanism, not the constants) and are arguments.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmlab.sim.c4.cluster import Telemetry


@dataclass(frozen=True)
class Diagnosis:
    """One C4D verdict: syndrome, culprit components, iteration and simulated time of detection."""

    syndrome: str
    culprits: tuple[str, ...]
    iteration: int
    time: float


def _localise(bad: list[dict[str, Any]], good: list[dict[str, Any]],
              probe: Callable[[str], float] | None = None) -> tuple[str, ...]:
    """Delay-matrix attribution of a set of bad connections (NIC row/column first, then a common link).

    Several candidate links (those all bad connections cross and no healthy one does) are narrowed by
    probing each (``probe(link) < 0.5`` keeps it), when a probe is given.
    """
    rows: dict[str, list[bool]] = defaultdict(list)
    cols: dict[str, list[bool]] = defaultdict(list)
    bad_ids = {id(c) for c in bad}
    for c in bad + good:
        rows[c["src"]].append(id(c) in bad_ids)
        cols[c["dst"]].append(id(c) in bad_ids)
    both = [n for n in rows if all(rows[n]) and all(cols.get(n, [False]))]
    if both:
        nics = both
    else:
        nics = []
        for n, v in rows.items():
            if all(v) and len(v) > 1:
                nics.append(n)
        for n, v in cols.items():
            if all(v) and len(v) > 1 and n not in nics:
                nics.append(n)
        if nics:  # a lone all-slow row or column explains only if it explains every bad cell
            explained = [c for c in bad if c["src"] in nics or c["dst"] in nics]
            if len(explained) < len(bad):
                nics = []
    rest = [c for c in bad if c["src"] not in nics and c["dst"] not in nics]
    links: list[str] = []
    if rest:
        common = set(rest[0]["path"])
        for c in rest[1:]:
            common &= set(c["path"])
        healthy = {x for c in good for x in c["path"]}
        cand = sorted(x for x in common - healthy if "spine" in x)  # fabric links first
        if not cand:
            cand = sorted(common - healthy)
        if len(cand) > 1 and probe is not None:
            probed = [x for x in cand if probe(x) < 0.5]
            cand = probed if probed else cand
        links = cand
    return tuple(nics) + tuple(links)


def diagnose(tel: Telemetry, *, slow_ratio: float = 0.7, persist: int = 3, window: int = 5,
             straggler_share: float = 0.8, straggler_lateness: float = 0.2, hang_timeout_s: float = 30.0
             ) -> list[Diagnosis]:
    """Run C4D over a telemetry stream, iteration by iteration; each syndrome is reported once (first time).

    Args:
        tel: The stream.
        slow_ratio: A connection is slow below this fraction of the job's median throughput.
        persist: Consecutive slow iterations before reporting communication slow.
        window: Iterations looked at for stragglers.
        straggler_share: Share of the window in which the same rank must arrive last.
        straggler_lateness: ... by at least this fraction of the median compute interval.
        hang_timeout_s: A collective not finished this long after the last arrival is a hang.

    Returns:
        The verdicts, in detection order.
    """
    by_iter_coll: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_iter_conn: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in tel.collectives:
        by_iter_coll[r["iter"]].append(r)
    for r in tel.connections:
        by_iter_conn[r["iter"]].append(r)
    out: list[Diagnosis] = []
    seen: set[str] = set()
    slow_run: dict[tuple[str, str, int], int] = defaultdict(int)
    last: list[tuple[str, float]] = []
    for it in sorted(by_iter_coll):
        coll = by_iter_coll[it]
        start = tel.iter_start[it]
        entered = [r for r in coll if r["enter"] is not None]
        conns = by_iter_conn.get(it, [])
        if any(r["exit"] is None for r in coll):  # hang: decided at the timeout
            t_det = max(r["enter"] for r in entered) + hang_timeout_s
            if len(entered) < len(coll):
                out.append(Diagnosis("noncomm_hang", tuple(sorted(r["rank"] for r in coll if r["enter"] is None)),
                                     it, t_det))
            else:
                stalled = [c for c in conns if c["bytes"] < c["expected_bytes"]]
                moving = [c for c in conns if c["bytes"] >= c["expected_bytes"]]
                out.append(Diagnosis("comm_hang", _localise(stalled, moving, tel.probe), it, t_det))
            break
        end = max(r["exit"] for r in coll)
        # communication slow: per-connection throughput vs the job median, persistent
        thr = {(c["src"], c["dst"], c["channel"]): c["bytes"] / c["duration"] for c in conns}
        if thr and "comm_slow" not in seen:
            med = statistics.median(thr.values())
            bad: list[dict[str, Any]] = []
            good: list[dict[str, Any]] = []
            for c in conns:
                key = (c["src"], c["dst"], c["channel"])
                slow = thr[key] < slow_ratio * med
                slow_run[key] = slow_run[key] + 1 if slow else 0
                (bad if slow_run[key] >= persist else good).append(c)
            if bad:
                seen.add("comm_slow")
                healthy = [c for c in good if thr[(c["src"], c["dst"], c["channel"])] >= slow_ratio * med]
                out.append(Diagnosis("comm_slow", _localise(bad, healthy, tel.probe), it, end))
        # non-communication slow: who arrives last, and by how much
        enters = sorted(entered, key=lambda r: r["enter"])
        offs = [r["enter"] - start for r in enters]
        lateness = (enters[-1]["enter"] - start - statistics.median(offs)) / max(statistics.median(offs), 1e-12)
        last.append((enters[-1]["rank"], lateness))
        recent = last[-window:]
        if len(recent) == window and "noncomm_slow" not in seen:
            top = max({r for r, _ in recent}, key=lambda r: sum(1 for x, _ in recent if x == r))
            hits = [lt for r, lt in recent if r == top]
            if len(hits) >= straggler_share * window and min(hits) > straggler_lateness:
                seen.add("noncomm_slow")
                out.append(Diagnosis("noncomm_slow", (top,), it, end))
    return out


__all__ = ["Diagnosis", "diagnose"]
