"""One lazy registry: every method, task, backend, command group, experiment, generator and dataset.

Entries are ``"module:attr"`` strings; nothing is imported until an entry is used, so ``llmlab list`` and
``llmlab --help`` stay fast and never import torch or transformers (pattern from
EleutherAI/lm-evaluation-harness ``lm_eval/api/registry.py``).

Everything registered comes from :class:`System` records: each system of :mod:`llmlab.systems` declares,
once, its paper metadata and what it provides (``Provide(kind, name, target)``). The per-kind registries
(:data:`METHODS`, :data:`TASKS`, :data:`BACKENDS`, :data:`COMMANDS`, ...) are views of those records, and
so are ``llmlab list`` and ``docs/systems.md``.

Third-party packages plug in through the entry-point group ``llmlab.plugins``: an entry point names a
:class:`System`, a sequence of them, or a callable returning either. Example ``pyproject.toml``::

    [project.entry-points."llmlab.plugins"]
    my_method = "my_pkg.llmlab_plugin:SYSTEM"

Example:
    >>> from llmlab.core.registry import METHODS
    >>> "self_consistency" in METHODS.names()
    True
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any, NamedTuple

from llmlab.core.errors import ConfigError, UnknownNameError

log = logging.getLogger(__name__)

PLUGIN_GROUP = "llmlab.plugins"
KINDS = ("method", "task", "backend", "command", "lab_command", "experiment", "generator", "dataset", "list_view",
         "recipe")


class Provide(NamedTuple):
    """One registry entry a system provides.

    ``target`` is ``"module:attr"`` (imported on first use), or for ``dataset`` a source table (see
    :mod:`llmlab.core.data`); ``help`` is the one-line help of a command. A ``list_view`` is a function
    returning the text ``llmlab list NAME`` prints (e.g. the Prompt Report's taxonomy). A ``recipe`` is a
    fine-tuning recipe of ``llmlab lab finetune --recipe NAME``: a callable
    ``(model, data_dir, params, out, on_log) -> result dict`` (see :mod:`llmlab.training.cli`).
    """

    kind: str
    name: str
    target: Any
    help: str = ""


class System(NamedTuple):
    """A system with its paper metadata and what it provides."""

    name: str
    arxiv: str
    kind: str  # method | task | model | core
    official_code: str
    module: str
    status: str  # works | partial | planned
    note: str = ""
    provides: tuple[Provide, ...] = ()


class Registry:
    """Name → lazily imported object, for one ``kind``.

    Args:
        kind: Singular noun used in error messages ("method", "task", "backend").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._help: dict[str, str] = {}
        self._owner: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, target: str | Any, *, help: str = "", owner: str = "") -> None:
        """Register ``name`` as a ``"module:attr"`` string (lazy) or an object (eager)."""
        if isinstance(target, str):
            if ":" not in target:
                raise ConfigError(f"registry entry for {self.kind} '{name}' must look like 'module:attr'")
            self._loaded.pop(name, None)
        elif self.kind != "dataset":
            self._loaded[name] = target
        self._entries[name] = target
        self._help[name] = help
        self._owner[name] = owner

    def _ready(self) -> None:
        _populate()

    def names(self) -> list[str]:
        self._ready()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, str]]:
        """``(name, help)`` pairs, sorted by name."""
        self._ready()
        return [(n, self._help[n]) for n in sorted(self._entries)]

    def owner(self, name: str) -> str:
        """The system that registered ``name`` ("" for none)."""
        self._ready()
        return self._owner.get(name, "")

    def __contains__(self, name: object) -> bool:
        self._ready()
        return name in self._entries

    def raw(self, name: str) -> Any:
        """The registered target without importing it (a dataset's source table, a "module:attr")."""
        self._ready()
        if name not in self._entries:
            self._unknown(name)
        return self._entries[name]

    def _unknown(self, name: str) -> None:
        close = difflib.get_close_matches(name, self._entries, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownNameError(f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(self.names())}")

    def get(self, name: str) -> Any:
        """Import and return the object registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered (the message lists what is, and a close match).
        """
        self._ready()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._entries:
            self._unknown(name)
        target = self._entries[name]
        if not isinstance(target, str):
            return target
        obj = load_target(target)
        self._loaded[name] = obj
        return obj


def load_target(target: str) -> Any:
    """Import ``"module:attr.sub"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


REGISTRIES: dict[str, Registry] = {k: Registry(k) for k in KINDS}
METHODS = REGISTRIES["method"]
TASKS = REGISTRIES["task"]
BACKENDS = REGISTRIES["backend"]
COMMANDS = REGISTRIES["command"]
LAB_COMMANDS = REGISTRIES["lab_command"]
EXPERIMENTS = REGISTRIES["experiment"]
GENERATORS = REGISTRIES["generator"]
DATASETS = REGISTRIES["dataset"]
RECIPES = REGISTRIES["recipe"]  # fine-tuning recipes of ``llmlab lab finetune --recipe NAME``

_state: dict[str, Any] = {"populated": False, "systems": []}


def add_system(system: System) -> None:
    """Register everything ``system`` provides (used for the built-ins, plugins and tests)."""
    if not isinstance(system, System):
        raise ConfigError(f"a plugin must provide llmlab.core.registry.System records, got {type(system).__name__}")
    for p in system.provides:
        if p.kind not in REGISTRIES:
            raise ConfigError(f"system '{system.name}' provides unknown kind '{p.kind}'; kinds: {', '.join(KINDS)}")
        REGISTRIES[p.kind].register(p.name, p.target, help=p.help, owner=system.name)
    _state["systems"].append(system)


def _plugin_systems(value: Any) -> Iterable[System]:
    if callable(value) and not isinstance(value, System):
        value = value()
    if isinstance(value, System):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    raise ConfigError(f"plugin object must be a System or a list of them, got {type(value).__name__}")


def _populate() -> None:
    if _state["populated"]:
        return
    _state["populated"] = True
    from llmlab.systems import CORE, SYSTEMS

    for s in (*CORE, *SYSTEMS):
        add_system(s)
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        try:
            for s in _plugin_systems(ep.load()):
                add_system(s)
        except Exception as exc:  # a broken plugin must not break llmlab; say which one
            log.warning("llmlab plugin '%s' (%s) not loaded: %s", ep.name, ep.value, exc)


def all_systems() -> list[System]:
    """Every registered system: the 31 of the catalogue, core infrastructure, then plugins."""
    _populate()
    return list(_state["systems"])
