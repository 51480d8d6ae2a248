"""``llmlab generate NAME --n N --seed S --out F [-p knob=value ...]``: write generated benchmark instances.

Generators are ``"module:attr"`` strings imported only when used; each is a function
``generate(n: int, seed: int, **knobs) -> list[dict]``. NATURAL PLAN files are written in the official
layout (a JSON object keyed by example id, so the official evaluation scripts read them); other
generators' records are written as a JSON list.

Example:
    $ llmlab generate natural_plan.trip --n 100 --seed 1 --out trips.json -p cities=[3,6]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from llmlab.core.config import parse_params
from llmlab.core.errors import ConfigError, DataError

# Written as {id: record} (the official NATURAL PLAN layout) rather than as a list.
KEYED_BY_ID = {"natural_plan.trip", "natural_plan.meeting", "natural_plan.calendar"}


def load_generator(name: str) -> Callable[..., list[dict[str, Any]]]:
    """Import the generator registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not a generator (the message lists the available ones).
        ConfigError: Its module cannot be imported.
    """
    from llmlab.core.registry import GENERATORS

    GENERATORS.raw(name)  # UnknownNameError with the available names
    try:
        fn: Callable[..., list[dict[str, Any]]] = GENERATORS.get(name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"generator '{name}' is not available ({exc})") from None
    return fn


def generate_records(name: str, n: int, seed: int, params: list[str] | tuple[str, ...] = ()) -> Any:
    """Run generator ``name`` and shape its output as it is written (object keyed by id, or list).

    Raises:
        ConfigError: Unknown generator or knob, or a bad value.
    """
    if n < 0:
        raise ConfigError(f"--n must be >= 0, got {n}")
    records = load_generator(name)(n, seed, **parse_params(params))
    if name in KEYED_BY_ID:
        return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in records}
    return records


@click.command("generate")
@click.argument("name")
@click.option("--n", "n", type=int, default=100, show_default=True, help="Number of instances.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed and knobs, same file.")
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="Output JSON file ('-' for stdout).")
@click.option("-p", "params", multiple=True, metavar="KNOB=VALUE",
              help="Difficulty knobs (YAML values), e.g. -p cities=[3,6] -p people=4 -p days=2.")
def generate(name: str, n: int, seed: int, out: str, params: tuple[str, ...]) -> None:
    """Generate N benchmark instances of NAME (natural_plan.trip|meeting|calendar, tot_semantic)."""
    data = generate_records(name, n, seed, params)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if out == "-":
        sys.stdout.write(text)
        return
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write {path} ({exc.strerror}); choose another --out") from None
    click.echo(f"wrote {len(data)} {name} instances to {path}", err=True)
