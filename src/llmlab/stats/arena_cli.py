"""``llmlab arena``: ratings from a votes file, and the voting web page.

Heavy imports (numpy, scipy, fastapi) happen inside the commands, so ``llmlab --help`` stays fast.
"""

from __future__ import annotations

import json

import click

from llmlab.core.errors import ConfigError


def _parse_anchor(anchor: str | None) -> tuple[str, float] | None:
    if anchor is None:
        return None
    name, sep, value = anchor.rpartition("=")
    try:
        return (name, float(value)) if sep and name else _bad_anchor(anchor)
    except ValueError:
        return _bad_anchor(anchor)


def _bad_anchor(anchor: str) -> tuple[str, float]:
    raise ConfigError(f"--anchor expects MODEL=RATING (e.g. mixtral-8x7b-instruct-v0.1=1114), got {anchor!r}")


@click.group("arena")
def arena() -> None:
    """Arena ratings (Elo, Bradley–Terry, bootstrap CIs) and the anonymous voting page."""


@arena.command("ratings")
@click.argument("votes", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--rounds", type=int, default=1000, show_default=True, help="Bootstrap rounds for the BT CIs.")
@click.option("--reg", type=float, default=0.0, show_default=True,
              help="L2 strength (0 = current FastChat; 0.5 = fschat 0.2.36's sklearn objective).")
@click.option("--anchor", default=None, metavar="MODEL=RATING", help="Shift the scale so MODEL has RATING.")
@click.option("--seed", type=int, default=0, show_default=True)
def ratings_cmd(votes: str, as_json: bool, rounds: int, reg: float, anchor: str | None, seed: int) -> None:
    """Rate the models in VOTES (JSONL: model_a, model_b, winner) by BT with CIs and by online Elo."""
    from llmlab.stats.arena import Battles, battle_counts, bootstrap_bt, online_elo

    if rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {rounds}")
    battles = Battles.from_jsonl(votes)
    boot = bootstrap_bt(battles, rounds=rounds, seed=seed, reg=reg, anchor=_parse_anchor(anchor))
    elo = online_elo(battles).as_dict()
    n = battle_counts(battles)
    rows = boot.table()
    for row in rows:
        row["elo"] = elo[row["model"]]
        row["battles"] = int(n[battles.models.index(row["model"])])
    if as_json:
        click.echo(json.dumps({"n_battles": len(battles), "rounds": rounds, "reg": reg, "anchor": anchor,
                               "nonconverged_rounds": boot.nonconverged, "models": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Bradley–Terry ratings ({len(battles)} battles, {rounds} bootstrap rounds, 95% CI)")
    for col in ("rank", "model", "BT rating", "95% CI", "online Elo", "battles"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in rows:
        table.add_row(str(row["rank"]), row["model"], f"{row['rating']:.1f}",
                      f"+{row['upper'] - row['rating']:.1f}/-{row['rating'] - row['lower']:.1f}",
                      f"{row['elo']:.1f}", str(row["battles"]))
    Console().print(table)
    if boot.nonconverged:
        click.echo(f"note: {boot.nonconverged} bootstrap rounds had no finite MLE (a model never lost or never won)")


@arena.command("serve")
@click.option("--outputs", required=True, type=click.Path(dir_okay=False),
              help="JSONL of model outputs: prompt_id, prompt, model, output per line.")
@click.option("--db", default="arena.sqlite", show_default=True, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--secret", envvar="LLMLAB_ARENA_SECRET", default=None,
              help="Key that signs battle tokens (default: random per database, stored in it).")
@click.option("--rate-limit", type=int, default=30, show_default=True, help="Votes per client per minute.")
@click.option("--rounds", type=int, default=200, show_default=True, help="Bootstrap rounds on the leaderboard.")
@click.option("--model", "models", multiple=True, metavar="NAME=SPEC",
              help="Live mode: answer the prompts of --outputs with these models (repeat; at least two).")
@click.option("--trusted-proxy", "proxies", multiple=True, metavar="ADDR",
              help="A reverse proxy whose X-Forwarded-For is believed (repeat); none by default.")
def serve_cmd(outputs: str, db: str, host: str, port: int, secret: str | None, rate_limit: int, rounds: int,
              models: tuple[str, ...], proxies: tuple[str, ...]) -> None:
    """Serve the anonymous pairwise voting page and the leaderboard."""
    from llmlab.web.app import ArenaSettings, serve

    live: dict[str, str] = {}
    for m in models:
        name, sep, spec = m.partition("=")
        if not sep or not name or not spec:
            raise ConfigError(f"--model expects NAME=SPEC (e.g. small=openai:qwen@http://127.0.0.1:8001), got {m!r}")
        live[name] = spec
    serve(ArenaSettings(outputs=outputs, db=db, secret=secret, rate_limit_per_min=rate_limit,
                        bootstrap_rounds=rounds, live_models=live, trusted_proxies=tuple(proxies)),
          host=host, port=port)
