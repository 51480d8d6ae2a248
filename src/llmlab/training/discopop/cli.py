"""``llmlab lab discover`` and ``llmlab lab align``: the DiscoPOP loop and the reward-vs-KL experiment.

Paper: "Discovering Preference Optimization Algorithms with and for Large Language Models" (arXiv 2406.08414),
§3.1 (discovery loop) and Fig. 4 (reward vs KL). torch is imported only inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command("discover")
@click.option("--model", "-m", "model_spec", required=True, help="Proposer model spec (openai:…, hf:…, mock:…).")
@click.option("--generations", type=int, default=5, show_default=True)
@click.option("--fitness", type=click.Choice(["toy", "tiny_lm"]), default="toy", show_default=True,
              help="toy: seconds per candidate; tiny_lm: a short preference run on a byte LM (minutes).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per candidate.")
@click.option("--out", type=click.Path(dir_okay=False), default="runs/lab/discopop_discover.json",
              show_default=True)
def discover_cmd(model_spec: str, generations: int, fitness: str, timeout: float, out: str) -> None:
    """Run the LLM-driven loss discovery loop; writes every candidate and the best losses to --out."""
    import tempfile

    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.training.discopop import Candidate, discover

    opts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if fitness == "tiny_lm":
            from llmlab.training.dpo import save_task

            opts["task_path"] = str(Path(tmp) / "task.pt")
            click.echo("building the tiny-LM preference task once ...", err=True)
            save_task(opts["task_path"])

        def show(c: Candidate) -> None:
            status = f"fitness {c.fitness:.4f}" if c.valid and c.fitness is not None else f"rejected: {c.error}"
            click.echo(f"gen {c.generation}: {c.name}: {status}", err=True)

        res = run_sync(discover(Model(model_spec), generations=generations, fitness=fitness,
                                fitness_options=opts, timeout=timeout, on_candidate=show))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"history": [c.as_dict() for c in res.history], "archive": res.archive},
                               indent=2, default=float))
    click.echo(json.dumps({"out": str(path), "best": [{"name": c.name, "fitness": c.fitness}
                                                      for c in res.best()]}))


@click.command("align")
@click.option("--quick", is_flag=True, help="Fewer steps (about a minute).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="runs/lab/discopop_reward_kl.json",
              show_default=True)
def align_cmd(quick: bool, seed: int, out: str) -> None:
    """Reward vs KL of DPO, DiscoPOP (LRML) and hinge over β on a tiny byte LM."""
    from llmlab.training.dpo import experiment_reward_kl

    res = experiment_reward_kl(quick=quick, seed=seed)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2, default=float))
    rows = {loss: {b: f"r={v['reward']:.3f} kl={v['kl']:.2f}" for b, v in runs.items()}
            for loss, runs in res["runs"].items()}
    click.echo(json.dumps({"out": str(path), "ref_reward": round(res["ref_reward"], 4), "runs": rows,
                           "claim_direction_holds": res["claim_direction_holds"]}, indent=2))


__all__ = ["align_cmd", "discover_cmd"]
