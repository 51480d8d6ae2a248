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
from pydantic import BaseModel, ConfigDict, ValidationError

from llmlab.core.errors import ConfigError


class LabConfig(BaseModel):
    """Base for every method and task config: immutable and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


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
        raise ConfigError(f"{cls.__name__}: bad value for '{key}' ({got!r}): {err.get('msg')}") from None
