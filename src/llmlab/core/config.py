"""Configs: pydantic models (frozen, ``extra="forbid"``) fed from ``-p key=value`` pairs.

Values are YAML-parsed (``-p n=5`` is an int, ``-p models=[a,b]`` a list), except that a value starting
with ``@`` (``-p system_prompt=@prompt.txt``) stays text for the config to read as a file; dotted keys nest
(``-p judge.temperature=0``). A bad key or value becomes one :class:`ConfigError` line naming the key and
what is allowed — never a pydantic traceback.

Example:
    >>> class C(LabConfig):
    ...     n: int = 5
    >>> build_config(C, ["n=7"]).n
    7
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from llmlab.core.errors import ConfigError

# Generic bounds every config gets, by field name, on top of its own Field constraints: counts that would
# make a run silently huge (``-p k=100000000``), sampling values no server accepts, probabilities above 1.
MAX_COUNT = 100_000
_COUNT_NAMES = frozenset({"k", "n", "rollouts", "layers", "iterations", "rounds", "steps", "epochs", "shots",
                          "batch_size", "concurrency", "max_children", "samples_per_model", "num_samples"})
_COUNT_SUFFIXES = ("_retries", "_samples", "_steps", "_iterations", "_rounds", "_epochs")


def _generic_bound(name: str, value: Any) -> str | None:
    """Why ``value`` is out of range for a field called ``name`` (None when fine)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if name.endswith("temperature") and not 0.0 <= value <= 5.0:
        return "between 0 and 5"
    if name in ("top_p",) and not 0.0 < value <= 1.0:
        return "in (0, 1]"
    if name.endswith("max_tokens") and not 1 <= value <= 10_000_000:
        return "between 1 and 10000000"
    if (name.endswith(("_rate", "_prob", "_probability")) or name == "probability") and not 0.0 <= value <= 1.0:
        return "a probability in [0, 1]"
    if isinstance(value, int) and (name in _COUNT_NAMES or name.endswith(_COUNT_SUFFIXES)) \
            and not 0 <= value <= MAX_COUNT:
        return f"between 0 and {MAX_COUNT}"
    return None


class LabConfig(BaseModel):
    """Base for every method and task config: immutable and strict about unknown keys.

    Besides each field's own constraints, counts (``k``, ``n``, ``rollouts``, ``*_retries``, ...) are capped at
    :data:`MAX_COUNT`, temperatures, ``top_p``, ``max_tokens`` and probabilities (``*_rate``, ``*_prob``)
    must be in range: a value no run can use is one line, not a silently unbounded run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _generic_bounds(self) -> LabConfig:
        for name in type(self).model_fields:
            why = _generic_bound(name, getattr(self, name))
            if why is not None:
                raise ValueError(f"{name} must be {why}, got {getattr(self, name)!r}")
        return self


C = TypeVar("C", bound=BaseModel)


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``["a=1", "b.c=x"]`` into ``{"a": 1, "b": {"c": "x"}}`` (values YAML-parsed).

    Raises:
        ConfigError: A pair has no ``=``, an empty key, or a value YAML cannot read.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"-p expects key=value, got '{pair}'")
        try:
            # "@file" (YAML reserves "@", so no YAML value starts with it) stays text for the config to read
            value = raw.strip() if raw.strip().startswith("@") else yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"-p {key}: value '{raw}' is not valid YAML ({first})") from None
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"-p {key}: '{part}' was already given a plain value")
            node = nxt
        node[parts[-1]] = value
    return out


def _allowed(cls: type[BaseModel], loc: tuple[Any, ...]) -> str:
    model: Any = cls
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        model = field.annotation if field is not None else None
    fields = getattr(model, "model_fields", None)
    return ", ".join(sorted(fields)) if fields else "(none)"


def build_config(cls: type[C], params: Mapping[str, Any] | Iterable[str] | None = None) -> C:
    """Validate ``params`` (a mapping, or ``key=value`` strings) into ``cls``.

    Raises:
        ConfigError: One line naming the first bad key and what is allowed there.
    """
    if params is None:
        data: Mapping[str, Any] = {}
    elif isinstance(params, Mapping):
        data = params
    else:
        data = parse_params(params)
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "(config)"
        if err.get("type") == "extra_forbidden":
            raise ConfigError(
                f"{cls.__name__}: unknown key '{key}'. Allowed: {_allowed(cls, loc)}"
            ) from None
        got = err.get("input")
        msg = str(err.get("msg", ""))
        if not loc and msg.startswith("Value error, "):  # a whole-config check: its message names the key
            raise ConfigError(f"{cls.__name__}: {msg.removeprefix('Value error, ')}") from None
        raise ConfigError(f"{cls.__name__}: bad value for '{key}' ({got!r}): {msg}") from None
