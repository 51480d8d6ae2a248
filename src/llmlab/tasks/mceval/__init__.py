"""McEval: massively multilingual code evaluation, executed in :mod:`llmlab.sandbox`.

Paper: "McEval: Massively Multilingual Code Evaluation", Chai et al., 2024, arXiv 2406.07436 (ICLR 2025).
Official code: MCEVAL/McEval (``eval/eval_all.py``, ``eval/extract/``, ``eval/save2file.py``,
``eval/excute.py``; commit 09dec12 read). Data: ``generation/<Language>.jsonl`` (40 languages, 2007 items),
``generation/{HTML,JSON,Markdown}/<N>.*`` reference outputs, ``generation/{AWK,Common Lisp}/*`` inputs.

Implemented: the generation task (§3; the data has no completion split here), prompt = the item's
``instruction`` as the user turn (the official chat inference), the per-language answer extraction
(:mod:`llmlab.tasks.mceval.extract`, our own code of the official recipe), the per-language build/run
commands and pass rules (:mod:`llmlab.tasks.mceval.languages`), pass@1 and the unbiased pass@k of Chen et al.
(2021) from ``n`` samples (``raw_generation`` lists), and the canonical-solution positive control.

Deliberate deviations from the official harness (each one a bug not copied, or the machine's limits):

- A TIMEOUT IS ALWAYS A FAILURE. ``excute.py`` returns True on timeout for Common Lisp and Shell.
- NO CODE IS A FAILURE. When extraction fails the official harness runs the placeholder program ``1234``,
  which exits 0 — a pass — in Python, Ruby, Perl, R and JavaScript; here it fails ("no code extracted").
- Every run is sandboxed (fresh directory, no network, limits), with one wall clock over compile + run;
  the official ``time_limit`` skips the compile of C/C++/Pascal and runs everything in one shared folder.
- Rust: ``rustc --edition 2021 --test`` on one file instead of ``cargo test`` in a project whose
  ``Cargo.toml`` pulls ``rand``, ``regex`` and ``md5`` from crates.io (no network here). The prompts'
  boilerplate ``use rand::Rng; use regex::Regex; use md5;`` lines are dropped when the program does not
  use those crates; a program that does fails ("harness limit", see docs/mceval.md).
- Go: ``go test`` in GOPATH mode against Debian's testify package instead of a module download.
- PHP runs with ``zend.assertions=1`` so ``assert()`` executes (Debian's CLI default of -1 skips every assert,
  which would pass any program).
- TypeScript: like the official harness, ``tsc`` type errors do not fail an item (it emits JS anyway and
  ``node`` decides); Scala runs with Debian's Scala 2.11 (``-explain`` is a Scala 3 flag), Kotlin with Debian's
  1.3 ``kotlinc -script``; VimScript runs ``vim -es`` (no terminal in a sandbox).
- Kotlin, Scala and Groovy run their JVM with ``-XX:TieredStopAtLevel=1 -XX:+UseSerialGC`` (speed only; same
  verdict on every canonical item), and Groovy with ``--add-opens java.base/java.util=ALL-UNNAMED``: Groovy
  reads ``list.size`` as ArrayList's private field, which JDK 17 (Debian's) forbids and JDK <= 15 allowed.
- Markdown compares text with trailing newlines ignored (a fenced answer cannot carry them); the official
  harness compares bytes.
- C#, F#, VB (dotnet), Julia, Swift, Dart and PowerShell have no Debian package: reported "not run".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import Field

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Roles, Score
from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.mceval.execute import Outcome, compare_reference, execute
from llmlab.tasks.mceval.extract import PLACEHOLDER, canonical_answer, extract_program
from llmlab.tasks.mceval.languages import LANGS, Lang

SYSTEM_PROMPT = "You are a helpful assistant."  # the official Qwen-style chat inference's system turn
INPUT_FILES = ("AWK/9_1.txt", "AWK/9_2.txt", "AWK/contribution.txt", "AWK/url.txt", "Common Lisp/file.txt")
MARKUP_EXT = {"JSON": "json", "HTML": "html", "Markdown": "md"}
_RUST_CRATES = {"rand": r"\brand::|\bRng\b|thread_rng", "regex": r"\bRegex\b", "md5": r"\bmd5::"}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)`` (stable product form).

    Example:
        >>> round(pass_at_k(10, 3, 1), 3), pass_at_k(5, 0, 2), pass_at_k(5, 4, 2)
        (0.3, 0.0, 1.0)
    """
    if k > n:
        raise ConfigError(f"pass@{k} needs at least {k} samples per item, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def fix_rust_crates(program: str) -> str:
    """Drop ``use`` lines of crates the program does not use (no crates.io here; see the module docstring)."""
    lines = program.split("\n")
    body = "\n".join(ln for ln in lines if not ln.strip().startswith("use "))
    out = []
    for ln in lines:
        s = ln.strip()
        crate = next((c for c in _RUST_CRATES if re.match(rf"use\s+{c}\b", s)), None)
        if crate is not None and not re.search(_RUST_CRATES[crate], body):
            continue
        out.append(ln)
    return "\n".join(out)


class McEvalConfig(TaskConfig):
    """Options of the McEval task.

    Args:
        data_dir: A folder holding ``mceval/generation/<Language>.jsonl`` (default: the usual search order).
        language: One McEval language (``Python``, ``Rust``, ``Common Lisp``...) or ``all``.
        limit: At most this many items per language (``None``: all).
        system: System turn (default: the official chat inference's "You are a helpful assistant.").
        timeout_scale: Multiplies each language's wall-clock limit (a loaded machine).
        k: pass@k values reported when items carry several samples.
    """

    language: str = "Python"
    limit: int | None = Field(default=None, ge=1)
    system: str | None = SYSTEM_PROMPT
    timeout_scale: float = Field(default=1.0, gt=0)
    k: tuple[int, ...] = (1,)


class McEval(Task):
    """McEval generation, executed.

    Example:
        >>> task = McEval({"language": "Python"})
        >>> task.cfg.language
        'Python'
    """

    name = "mceval"
    Config = McEvalConfig

    def __init__(self, config: McEvalConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        if self.cfg.language != "all" and self.cfg.language not in LANGS:
            raise ConfigError(f"unknown McEval language {self.cfg.language!r}; use one of: {', '.join(LANGS)}, all")
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._refs: dict[str, str] = {}
        self._data_files: dict[str, bytes] | None = None
        self._awk_expected: dict[str, str] = {}

    @property
    def cfg(self) -> McEvalConfig:
        assert isinstance(self.config, McEvalConfig)
        return self.config

    def languages(self) -> list[str]:
        return list(LANGS) if self.cfg.language == "all" else [self.cfg.language]

    def rows(self, language: str) -> list[dict[str, Any]]:
        """The data rows of one language (read once)."""
        if language not in self._rows:
            path = self.data_path("mceval", "generation", f"{language}.jsonl")
            rows = []
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{i}: not JSON ({exc.msg})") from None
            self._rows[language] = rows[: self.cfg.limit] if self.cfg.limit is not None else rows
        return self._rows[language]

    def reference(self, lang: str, task_id: str) -> str:
        """The reference output of a JSON/HTML/Markdown item (``<N>.<ext>``, N before any ``-``)."""
        key = f"{lang}/{task_id}"
        if key not in self._refs:
            n = task_id.split("/")[-1].split("-")[0]
            path = self.data_path("mceval", "generation", lang, f"{n}.{MARKUP_EXT[lang]}")
            self._refs[key] = path.read_text(encoding="utf-8")
        return self._refs[key]

    def data_files(self) -> dict[str, bytes]:
        """Input files some tests read, at ``data/<Lang>/<file>`` (see :func:`data_files_for`)."""
        if self._data_files is None:
            files: dict[str, bytes] = {}
            for rel in INPUT_FILES:
                try:
                    path = self.data_path("mceval", "generation", *rel.split("/"))
                except DataError:
                    continue
                files[f"data/{rel}"] = path.read_bytes()
            self._data_files = files
        return self._data_files

    def items(self) -> Iterable[Item]:
        for lang in self.languages():
            for row in self.rows(lang):
                yield self.item_for(lang, row)

    def item_for(self, lang: str, row: Mapping[str, Any]) -> Item:
        task_id = str(row["task_id"])
        return Item(id=task_id, input=str(row.get("instruction", row.get("prompt", ""))),
                    target=str(row.get("canonical_solution") or ""),
                    metadata={"language": lang, "row": dict(row), "level": row.get("level")})

    def prompt(self, item: Item) -> Query:
        messages = [] if self.cfg.system is None else [Message("system", self.cfg.system)]
        messages.append(Message("user", item.input))
        return Query(tuple(messages), metadata={"item_id": item.id})

    def lang_of(self, item: Item) -> Lang:
        name = item.metadata.get("language") if item.metadata else None
        if not isinstance(name, str):
            name = item.id.split("/")[0]
        if name not in LANGS:
            raise DataError(f"item {item.id}: unknown McEval language {name!r}")
        return LANGS[name]

    def program(self, item: Item, reply: str | None) -> str:
        lang = self.lang_of(item)
        program = extract_program(reply, item.metadata["row"], lang)
        return fix_rust_crates(program) if lang.name == "Rust" else program

    def canonical_reply(self, item: Item) -> str:
        """The item's canonical solution shaped as a model answer (the positive control)."""
        lang = self.lang_of(item)
        ref = self.reference(lang.name, item.id) if lang.kind in MARKUP_EXT.values() or lang.name in MARKUP_EXT \
            else None
        return canonical_answer(item.metadata["row"], lang, ref)

    async def awk_expected(self, item: Item) -> str | None:
        """The canonical AWK command's output, which the official harness compares answers with."""
        if item.id not in self._awk_expected:
            row = item.metadata["row"]
            out = await execute(LANGS["AWK"], str(row["canonical_solution"]), row, data_files=self.data_files(),
                                timeout_scale=self.cfg.timeout_scale, expected_output=None)
            self._awk_expected[item.id] = out.stdout
        return self._awk_expected[item.id]

    async def run_one(self, item: Item, reply: str | None) -> Outcome:
        """Extract, run and judge one reply."""
        lang = self.lang_of(item)
        program = self.program(item, reply)
        if program == PLACEHOLDER:
            return Outcome(False, "no code extracted")  # official: runs "1234", which PASSES in Python/Ruby/R/JS
        if lang.kind in ("json", "html", "markdown"):
            ok = compare_reference(lang.kind, program, self.reference(lang.name, item.id))
            return Outcome(ok, "passed" if ok else "mismatch")
        expected = await self.awk_expected(item) if lang.kind == "awk" else None
        return await execute(lang, program, item.metadata["row"], data_files=self.data_files(),
                             timeout_scale=self.cfg.timeout_scale, expected_output=expected)

    async def ascore(self, item: Item, answer: str | None, roles: Roles | None = None) -> Score:
        """Run every sample of ``item`` (``metadata["samples"]`` when scoring a file, else ``answer``)."""
        samples = item.metadata.get("samples") if item.metadata else None
        replies: list[str | None] = list(samples) if isinstance(samples, list) else [answer]
        outcomes = [await self.run_one(item, r) for r in replies]
        return self._score(item, outcomes)

    def score(self, item: Item, answer: str | None) -> Score:
        from llmlab.core.concurrency import run_sync

        return run_sync(self.ascore(item, answer))

    def _score(self, item: Item, outcomes: Sequence[Outcome]) -> Score:
        lang = self.lang_of(item)
        ran = [o for o in outcomes if o.ran]
        if not ran:
            status = outcomes[0].status if outcomes else "not run"
            return Score(value=0.0, correct=None, extracted=None,
                         details={"language": lang.name, "status": status, "not_run": True}, cluster=lang.name)
        c = sum(o.passed for o in ran)
        n = len(ran)
        details: dict[str, Any] = {"language": lang.name, "n": n, "c": c, "status": ran[0].status,
                                   "wall_s": ran[0].wall_s, "outcomes": [o.as_dict() for o in ran]}
        for k in self.cfg.k:
            if k <= n:
                details[f"pass@{k}"] = pass_at_k(n, c, k)
        return Score(value=c / n, correct=ran[0].passed if n == 1 else c > 0, extracted=None, details=details,
                     cluster=lang.name)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """pass@1 (and pass@k) per language over the items that ran; languages not run are named as such."""
        per: dict[str, dict[str, Any]] = {}
        for s in scores:
            lang = str(s.details.get("language", s.cluster))
            entry = per.setdefault(lang, {"n": 0, "ran": 0, "sum": 0.0, "k": {}, "not_run": None})
            entry["n"] += 1
            if s.details.get("not_run"):
                entry["not_run"] = s.details.get("status")
                continue
            entry["ran"] += 1
            entry["sum"] += s.value
            for key, v in s.details.items():
                if key.startswith("pass@"):
                    entry["k"].setdefault(key, []).append(v)
        out: dict[str, Any] = {"n": len(scores)}
        for lang, e in per.items():
            if e["ran"] == 0:
                out[lang] = str(e["not_run"])
                continue
            row: dict[str, Any] = {"items": e["ran"], "pass@1": e["sum"] / e["ran"]}
            for key, vals in e["k"].items():
                if key != "pass@1":
                    row[key] = sum(vals) / len(vals)
            if e["ran"] < e["n"]:
                row["not_run"] = e["n"] - e["ran"]
            out[lang] = row
        ran = [s for s in scores if not s.details.get("not_run")]
        out["pass@1"] = sum(s.value for s in ran) / len(ran) if ran else None
        return out

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """One line of the official evaluation input: the data fields plus ``raw_generation: [str, ...]``."""
        task_id = record.get("task_id")
        gens = record.get("raw_generation")
        if not isinstance(task_id, str) or "/" not in task_id:
            raise DataError(f"{where}: 'task_id' must be '<Language>/<N>'")
        if isinstance(gens, str):
            gens = [gens]
        if not isinstance(gens, list) or not gens or not all(isinstance(g, str) for g in gens):
            raise DataError(f"{where}: 'raw_generation' must be a non-empty list of strings")
        lang = task_id.split("/")[0]
        if lang not in LANGS:
            raise DataError(f"{where}: unknown McEval language {lang!r}")
        row = dict(record)
        if "prompt" not in row or ("test" not in row and LANGS[lang].kind == "exec"):
            found = {str(r["task_id"]): r for r in self.rows(lang)}.get(task_id)
            if found is None:
                raise DataError(f"{where}: {task_id} is not in the McEval data and the line lacks 'prompt'/'test'")
            row = {**found, **row}
        item = self.item_for(lang, row)
        return Item(item.id, item.input, item.target, {**item.metadata, "samples": list(gens)}), gens[0]


__all__ = ["LANGS", "McEval", "McEvalConfig", "pass_at_k"]
