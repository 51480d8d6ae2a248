"""``llmlab sim``: cluster simulators. ``llmlab sim c4`` runs C4's planning and diagnosis experiments."""

from __future__ import annotations

import json
from pathlib import Path

import click

from llmlab.core.errors import ConfigError


@click.group("sim")
def sim() -> None:
    """Cluster simulators (C4: collective-communication diagnosis and path planning)."""


@sim.command("c4")
@click.option("--nodes", type=int, default=64, show_default=True, help="Nodes (8 GPUs, 8 dual-port NICs each).")
@click.option("--jobs", type=int, default=8, show_default=True, help="Concurrent jobs (planning experiment).")
@click.option("--nodes-per-job", type=int, default=8, show_default=True)
@click.option("--nodes-per-leaf", type=int, default=8, show_default=True)
@click.option("--spines", type=int, default=16, show_default=True)
@click.option("--oversubscription", type=float, default=1.0, show_default=True)
@click.option("--channels", type=int, default=2, show_default=True, help="Connections per rail and ring hop.")
@click.option("--seeds", type=int, default=100, show_default=True, help="ECMP hash seeds.")
@click.option("--failures", type=int, default=4, show_default=True, help="Uplinks failed in the re-planning case.")
@click.option("--trials", type=int, default=30, show_default=True, help="Injected faults per class (diagnosis).")
@click.option("--size-mib", type=float, default=256.0, show_default=True, help="All-reduce size per GPU.")
@click.option("--experiment", type=click.Choice(["planning", "diagnosis", "all"]), default="all", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/sim/c4", show_default=True)
def c4_cmd(nodes: int, jobs: int, nodes_per_job: int, nodes_per_leaf: int, spines: int, oversubscription: float,
           channels: int, seeds: int, failures: int, trials: int, size_mib: float, experiment: str, seed: int,
           out: str) -> None:
    """C4P (planned vs ECMP vs ideal busbw) and C4D (attribution per fault class); result.json and plots."""
    from llmlab.sim.c4.experiments import experiment_diagnosis, experiment_planning, plot_diagnosis, plot_planning
    from llmlab.sim.c4.network import ClusterSpec

    if channels < 1 or seeds < 1 or trials < 1:
        raise ConfigError("--channels, --seeds and --trials must be >= 1")
    spec = ClusterSpec(n_nodes=nodes, nodes_per_leaf=nodes_per_leaf, n_spines=spines,
                       oversubscription=oversubscription)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    res: dict[str, object] = {}
    summary: dict[str, object] = {}
    if experiment in ("planning", "all"):
        p = experiment_planning(spec, jobs, nodes_per_job, seeds, size_mib * 2**20, channels, seed, failures)
        res["planning"] = p
        plot_planning(p, folder / "planning.png")
        summary["planning"] = {k: p[k] for k in ("ideal", "planned", "gap_ecmp", "gap_planned", "closed_fraction")}
        summary["planning"]["ecmp_mean"] = p["ecmp"]["mean"]  # type: ignore[index]
        summary["planning"]["with_failures"] = {"ecmp_mean": p["with_failures"]["ecmp"]["mean"],  # type: ignore[index]
                                                "replanned": p["with_failures"]["replanned"]}
    if experiment in ("diagnosis", "all"):
        d = experiment_diagnosis(spec, trials, nodes_per_job, seed=seed, channels=channels)
        res["diagnosis"] = d
        plot_diagnosis(d, folder / "diagnosis.png")
        summary["diagnosis"] = {k: {m: v.get(m) for m in ("syndrome_accuracy", "precision", "recall",
                                                           "latency_s_mean", "false_alarms") if m in v}
                                for k, v in d["classes"].items()}
    (folder / "result.json").write_text(json.dumps(res, indent=2, default=float))
    click.echo(json.dumps({"out": str(folder), **summary}, indent=2, default=float))


__all__ = ["c4_cmd", "sim"]
