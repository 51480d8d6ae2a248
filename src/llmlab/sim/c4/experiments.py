"""The paper's two experiments at simulator scale: the ECMP gap and how much C4P closes; C4D attribution.

* :func:`experiment_planning` (C4 §4 / the "ECMP leaves ~30% to ideal" result): all jobs all-reduce at once;
  mean per-job bus bandwidth under random ECMP (many hash seeds), under C4P's plan and on a collision-free
  fabric; then the same with failed leaf-spine links (ECMP rehashes over the live uplinks, C4P re-plans).
* :func:`experiment_diagnosis` (C4 §3): many injected faults per class on random jobs; syndrome accuracy,
  precision and recall of the named culprit, detection latency; plus fault-free runs for false alarms.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from llmlab.sim.c4.c4d import diagnose
from llmlab.sim.c4.c4p import max_link_load, plan_routes
from llmlab.sim.c4.cluster import (
    FAULT_KINDS,
    Fault,
    allreduce_times,
    ecmp_routes,
    ideal_links,
    job_busbw,
    place_jobs,
    ring_connections,
    route_links,
    simulate_job,
)
from llmlab.sim.c4.network import ClusterSpec, Topology, ecmp_spine


def _stats(v: list[float]) -> dict[str, float]:
    a = np.asarray(v)
    return {"mean": float(a.mean()), "p10": float(np.percentile(a, 10)), "p50": float(np.median(a)),
            "p90": float(np.percentile(a, 90)), "min": float(a.min()), "max": float(a.max())}


def experiment_planning(spec: ClusterSpec, n_jobs: int = 8, nodes_per_job: int = 8, seeds: int = 100,
                        size_bytes: float = 256 * 2**20, channels: int = 2, placement_seed: int = 0,
                        failures: int = 4, alpha_s: float = 5e-6) -> dict[str, Any]:
    """ECMP (``seeds`` hash seeds) vs C4P vs ideal bus bandwidth, healthy and with ``failures`` dead uplinks.

    Returns:
        Bus bandwidths in GB/s (mean over jobs per seed, then statistics over seeds), gaps to ideal and the
        share of the ECMP gap closed by planning.
    """
    t0 = time.perf_counter()
    topo = Topology.build(spec)
    jobs = place_jobs(spec, n_jobs, nodes_per_job, placement_seed)
    conns = ring_connections(spec, jobs, channels)

    def bw(t: Topology, routes: list[Any]) -> tuple[float, float]:
        links = [route_links(t, c, r) for c, r in zip(conns, routes, strict=True)]
        times = allreduce_times(spec, conns, links, t.capacity, jobs, size_bytes, channels, alpha_s)
        return float(job_busbw(spec, jobs, times, size_bytes).mean() / 1e9), max_link_load(t, links)

    ecmp, ecmp_load = zip(*(bw(topo, ecmp_routes(topo, conns, s)) for s in range(seeds)), strict=True)
    plan = plan_routes(topo, conns, seed=0)
    steered = all(r.spine < 0 or ecmp_spine(topo, (c.src_node, c.rail, r.src_port), r.sport,
                                            (c.dst_node, c.rail, r.dst_port), 0) == r.spine
                  for c, r in zip(conns, plan, strict=True))
    planned, planned_load = bw(topo, plan)
    il, ic = ideal_links(spec, conns)
    ideal = float(job_busbw(spec, jobs, allreduce_times(spec, conns, il, ic, jobs, size_bytes, channels, alpha_s),
                            size_bytes).mean() / 1e9)
    # failures: dead uplinks used by the plan (both directions down: routing sees them)
    rng = np.random.default_rng(placement_seed + 7)
    used = sorted({(c.src_node // spec.nodes_per_leaf, r.src_port, r.spine) for c, r in zip(conns, plan, strict=True)
                   if r.spine >= 0})
    failed = [used[i] for i in rng.choice(len(used), size=min(failures, len(used)), replace=False)]
    ftopo = topo.copy()
    for g, p, s in failed:
        for up in (True, False):
            i = ftopo.fabric_link(g, p, s, up)
            ftopo.capacity[i], ftopo.routable[i] = 0.0, False
    stale_links = [route_links(ftopo, c, r) for c, r in zip(conns, plan, strict=True)]
    stale = allreduce_times(spec, conns, stale_links, ftopo.capacity, jobs, size_bytes, channels, alpha_s)
    f_ecmp = [bw(ftopo, ecmp_routes(ftopo, conns, s))[0] for s in range(max(seeds // 4, 1))]
    replanned, _ = bw(ftopo, plan_routes(ftopo, conns, seed=0))
    e = _stats(list(ecmp))
    fe = _stats(f_ecmp)
    return {
        "experiment": "c4_planning", "spec": spec.__dict__, "n_jobs": n_jobs, "nodes_per_job": nodes_per_job,
        "channels": channels, "size_bytes": size_bytes, "seeds": seeds, "units": "GB/s per job (busbw, per rail)",
        "ecmp": e, "ecmp_values": list(ecmp), "planned": planned, "ideal": ideal, "plan_steered_by_sport": steered,
        "max_link_load": {"ecmp_mean": float(np.mean(ecmp_load)), "planned": planned_load},
        "gap_ecmp": 1 - e["mean"] / ideal, "gap_planned": 1 - planned / ideal,
        "closed_fraction": (planned - e["mean"]) / (ideal - e["mean"]) if ideal > e["mean"] else 1.0,
        "with_failures": {"failed_links": [f"leaf{g}.{p}-spine{s}" for g, p, s in failed],
                          "stale_plan_hangs": bool(np.isinf(stale).any()), "ecmp": fe,
                          "ecmp_values": f_ecmp, "replanned": replanned},
        "seconds": time.perf_counter() - t0,
    }


def _random_fault(kind: str, spec: ClusterSpec, nodes: list[int], rng: np.random.Generator, onset: int,
                  used_links: list[tuple[int, int, int]]) -> Fault:
    node = int(rng.choice(nodes))
    nic = int(rng.integers(spec.gpus_per_node))
    if kind == "port_down":
        return Fault(kind, onset, node=node, nic=nic, port=int(rng.integers(spec.ports_per_nic)))
    if kind in ("degraded_link", "dead_link"):
        g, p, s = used_links[int(rng.integers(len(used_links)))]
        return Fault(kind, onset, group=g, plane=p, spine=s, factor=0.1 if kind == "degraded_link" else 0.0)
    return Fault(kind, onset, node=node, nic=nic, factor=1.5 if kind == "slow_gpu" else 1.0)


def experiment_diagnosis(spec: ClusterSpec, trials: int = 30, nodes_per_job: int = 8, n_iters: int = 20,
                         seed: int = 0, channels: int = 2) -> dict[str, Any]:
    """Inject ``trials`` faults per class (plus fault-free runs) and score C4D's verdicts.

    Returns:
        Per class: syndrome accuracy, culprit precision and recall, mean detection latency (simulated
        seconds and iterations after onset); false alarms on fault-free runs.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    topo = Topology.build(spec)
    per: dict[str, Any] = {}
    for kind in (*FAULT_KINDS, "none"):
        tp = predicted = syndrome_ok = 0
        lat_s: list[float] = []
        lat_it: list[int] = []
        alarms = 0
        for _ in range(trials):
            nodes = place_jobs(spec, 1, nodes_per_job, int(rng.integers(1 << 30)))[0]
            conns = ring_connections(spec, [nodes], channels)
            plan = plan_routes(topo, conns, seed=0)
            used = sorted({(c.src_node // spec.nodes_per_leaf, r.src_port, r.spine)
                           for c, r in zip(conns, plan, strict=True) if r.spine >= 0})
            onset = int(rng.integers(3, 9))
            faults = [] if kind == "none" else [_random_fault(kind, spec, nodes, rng, onset, used)]
            tel = simulate_job(spec, nodes, n_iters, faults, seed=0, channels=channels)
            verdicts = diagnose(tel)
            if kind == "none":
                alarms += bool(verdicts)
                continue
            f = faults[0]
            if not verdicts:
                continue
            v = verdicts[0]
            predicted += len(v.culprits)
            tp += f.culprit in v.culprits
            syndrome_ok += v.syndrome == f.syndrome
            lat_s.append(v.time - tel.iter_start[onset])
            lat_it.append(v.iteration - onset)
        if kind == "none":
            per[kind] = {"trials": trials, "false_alarms": alarms}
            continue
        per[kind] = {"trials": trials, "detected": len(lat_s), "syndrome_accuracy": syndrome_ok / trials,
                     "precision": tp / predicted if predicted else 0.0, "recall": tp / trials,
                     "latency_s_mean": float(np.mean(lat_s)) if lat_s else None,
                     "latency_iters_mean": float(np.mean(lat_it)) if lat_it else None}
    return {"experiment": "c4_diagnosis", "spec": spec.__dict__, "trials_per_class": trials,
            "nodes_per_job": nodes_per_job, "iterations": n_iters, "classes": per,
            "seconds": time.perf_counter() - t0}


def plot_planning(res: dict[str, Any], path: Any) -> None:
    """Histogram of ECMP bus bandwidth over hash seeds, with the planned and ideal values (healthy, failed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, vals, planned, title in (
        (axes[0], res["ecmp_values"], res["planned"], "healthy fabric"),
        (axes[1], res["with_failures"]["ecmp_values"], res["with_failures"]["replanned"],
         f"{len(res['with_failures']['failed_links'])} failed uplinks (C4P re-planned)"),
    ):
        ax.hist(vals, bins=20, color="#999", label=f"ECMP, {len(vals)} hash seeds")
        ax.axvline(planned, color="C0", lw=2, label=f"C4P {planned:.1f}")
        ax.axvline(res["ideal"], color="C2", ls="--", lw=2, label=f"ideal {res['ideal']:.1f}")
        ax.set_xlabel("bus bandwidth per job (GB/s, per rail)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("seeds")
    fig.suptitle(f"C4P vs ECMP: {res['n_jobs']} jobs x {res['nodes_per_job']} nodes on {res['spec']['n_nodes']} "
                 f"nodes; ECMP gap {100 * res['gap_ecmp']:.0f}%, closed {100 * res['closed_fraction']:.0f}%")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_diagnosis(res: dict[str, Any], path: Any) -> None:
    """Precision, recall and syndrome accuracy per fault class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in res["classes"] if k != "none"]
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (key, label) in enumerate((("syndrome_accuracy", "syndrome"), ("precision", "culprit precision"),
                                      ("recall", "culprit recall"))):
        ax.bar(x + (i - 1) * 0.27, [res["classes"][k][key] for k in kinds], 0.27, label=label)
    ax.set_xticks(x, kinds)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    ax.set_title(f"C4D on {res['trials_per_class']} injected faults per class; false alarms on fault-free runs: "
                 f"{res['classes']['none']['false_alarms']}/{res['classes']['none']['trials']}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["experiment_diagnosis", "experiment_planning", "plot_diagnosis", "plot_planning"]
