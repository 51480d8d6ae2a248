"""One lazy registry for methods, tasks and backends.

Entries are ``"module:attr"`` strings; nothing is imported until an entry is used, so ``llmlab list`` and
``llmlab --help`` stay fast and never import torch or transformers. Third-party packages add entries
through the entry-point groups ``llmlab.methods``, ``llmlab.tasks`` and ``llmlab.backends``
(pattern from EleutherAI/lm-evaluation-harness ``lm_eval/api/registry.py``).

Example:
    >>> from llmlab.core.registry import METHODS
    >>> "self_consistency" in METHODS.names()
    True
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any

from llmlab.core.errors import ConfigError, UnknownNameError


class Registry:
    """Name → lazily imported object.

    Args:
        kind: Singular noun used in error messages ("method", "task", "backend").
        group: Entry-point group scanned once, on first lookup, for plugins.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}
        self._plugins_scanned = False

    def register(self, name: str, target: str | Any) -> None:
        """Register ``name`` as a ``"module:attr"`` string (lazy) or an object (eager)."""
        if isinstance(target, str):
            if ":" not in target:
                raise ConfigError(f"registry entry for {self.kind} '{name}' must look like 'module:attr'")
            self._entries[name] = target
            self._loaded.pop(name, None)
        else:
            self._entries[name] = f"<object {target!r}>"
            self._loaded[name] = target

    def _scan_plugins(self) -> None:
        if self._plugins_scanned:
            return
        self._plugins_scanned = True
        for ep in metadata.entry_points(group=self.group):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._scan_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._scan_plugins()
        return name in self._entries

    def get(self, name: str) -> Any:
        """Import and return the object registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered (the message lists what is, and a close match).
        """
        self._scan_plugins()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(self.names())}"
            )
        module_name, _, attr = self._entries[name].partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        self._loaded[name] = obj
        return obj


METHODS = Registry("method", "llmlab.methods")
TASKS = Registry("task", "llmlab.tasks")
BACKENDS = Registry("backend", "llmlab.backends")

# Built-in entries. Keep this list in step with docs/systems.md.
BACKENDS.register("openai", "llmlab.backends.openai_compat:OpenAIBackend")
BACKENDS.register("hf", "llmlab.backends.hf:HFBackend")
BACKENDS.register("mock", "llmlab.backends.mock:MockBackend")

METHODS.register("direct", "llmlab.methods.base:Direct")
METHODS.register("self_consistency", "llmlab.methods.self_consistency:SelfConsistency")
METHODS.register("moa", "llmlab.methods.moa:MixtureOfAgents")
METHODS.register("moa_lite", "llmlab.methods.moa:MixtureOfAgentsLite")
METHODS.register("self_moa", "llmlab.methods.moa:SelfMixtureOfAgents")
METHODS.register("mcts_sr", "llmlab.methods.mcts_sr:MCTSr")

TASKS.register("gsm8k", "llmlab.tasks.gsm8k:GSM8K")
TASKS.register("natural_plan.trip", "llmlab.tasks.natural_plan:TripPlanning")
TASKS.register("natural_plan.meeting", "llmlab.tasks.natural_plan:MeetingPlanning")
TASKS.register("natural_plan.calendar", "llmlab.tasks.natural_plan:CalendarScheduling")
TASKS.register("tot_arithmetic", "llmlab.tasks.test_of_time:ToTArithmetic")
TASKS.register("tot_semantic", "llmlab.tasks.test_of_time:ToTSemantic")
TASKS.register("mmlu_redux", "llmlab.tasks.mmlu_redux:MMLURedux")
TASKS.register("wildbench", "llmlab.tasks.wildbench:WildBench")
