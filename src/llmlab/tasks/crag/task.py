"""The CRAG task: items with their pages (and, for task 2, the mock-API tools), judged as officially."""

from __future__ import annotations

import ast
import bz2
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.core.contracts import Item, Query, Roles, Score
from llmlab.core.errors import BackendError, ConfigError, DataError, UnsupportedFeatureError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.crag.prompts import JUDGE_EXAMPLES, JUDGE_INSTRUCTIONS, JUDGE_USER, SYSTEM_LLM_ONLY, USER_LLM_ONLY
from llmlab.tasks.crag.scoring import (
    MAX_PREDICTION_TOKENS,
    Verdict,
    crag_report,
    evaluate_prediction,
    load_tokenizer,
    tokenizer_dir,
    trim_prediction,
)

DATASET = "crag"
EXAMPLE_FILE = ("example_data", "dev_data.jsonl.bz2")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class CRAGConfig(TaskConfig):
    """Options of :class:`CRAG`.

    Attributes:
        task: 1 (answer from the 5 pages) or 2 (pages + the mock-API tools; needs ``api_url``). Task 3 (50
            pages) is task 1 on the task-3 file (pass it as ``data_file``).
        data_file: A CRAG JSONL(.bz2) file (the full dev set is user-supplied); default the 10-query example.
        max_pages: Pages per item passed to the method.
        page_text: ``html`` (full page through the HTML extractor) or ``snippet`` (the search snippet).
        api_url: Base URL of a running mock API (ours: ``llmlab crag serve``; or the official server).
        api_domains: The mock-API domains offered as tools.
        tokenizer: The Llama tokenizer folder for the 75-token trim (default ``crag/tokenizer`` in the data).
        max_prediction_tokens: The trim length (official 75).
        use_alternative_answers: Also accept the row's alternative answers (see the module docstring).
        judge_prompt_file: YAML/JSON ``{instructions, examples}`` replacing our judge wording.
        judge_json_mode: Ask the judge for a JSON object (official: yes).
    """

    split: str = "dev"
    task: Literal[1, 2] = 1
    data_file: str | None = None
    max_pages: int = 5
    page_text: Literal["html", "snippet"] = "html"
    api_url: str | None = None
    api_domains: list[str] = ["open", "movie", "finance", "music", "sports"]
    tokenizer: str | None = None
    max_prediction_tokens: int = MAX_PREDICTION_TOKENS
    use_alternative_answers: bool = True
    judge_prompt_file: str | None = None
    judge_json_mode: bool = True


def parse_alternatives(value: Any) -> list[str]:
    """``alt_ans`` / ``alternative_answers``: a list, or a string holding one (``"[]"`` in the example)."""
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return []
        try:
            value = json.loads(s)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(s)
            except (ValueError, SyntaxError):
                return [s]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def read_rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """``(where, row)`` from a CRAG JSONL file, bz2-compressed or plain."""
    opener: Any = bz2.open if path.suffix == ".bz2" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path.name}:{i}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path.name}:{i}: not valid JSON ({exc.msg})") from None
    except OSError as exc:
        raise DataError(f"CRAG file {path}: cannot read it ({exc})") from None


class CRAG(Task):
    """CRAG (Yang et al. 2024): retrieval-augmented QA scored correct / missing / hallucinated.

    The default prompt is the paper's LLM-only baseline; the RAG baselines are the methods ``crag_rag``
    (pages) and ``crag_rag_api`` (pages + mock-API tools), which read ``Query.metadata``. Scoring needs a
    judge unless the prediction is an exact match, a miss or a false-premise case: use :meth:`ascore`.

    Example:
        >>> t = CRAG()
        >>> t.config.max_prediction_tokens
        75
    """

    name = "crag"
    Config = CRAGConfig

    @property
    def cfg(self) -> CRAGConfig:
        assert isinstance(self.config, CRAGConfig)
        return self.config

    def _path(self) -> Path:
        if self.cfg.data_file is not None:
            p = Path(self.cfg.data_file)
            if not p.is_file():
                raise DataError(f"CRAG file {p} not found")
            return p
        return self.data_path(DATASET, *EXAMPLE_FILE)

    def items(self) -> Iterable[Item]:
        if self.cfg.task == 2 and self.cfg.api_url is None:
            raise ConfigError("CRAG task 2 needs the mock API: pass -t api_url=URL (start one with "
                              "`llmlab crag serve --kg DIR`)")
        for where, row in read_rows(self._path()):
            yield self._item(row, where)

    def _item(self, row: Mapping[str, Any], where: str) -> Item:
        for key in ("query", "answer"):
            if key not in row:
                raise DataError(f"{where}: CRAG row needs '{key}'")
        alts = parse_alternatives(row.get("alt_ans", row.get("alternative_answers")))
        golds = [str(row["answer"])] + (alts if self.cfg.use_alternative_answers else [])
        pages = [dict(p) for p in row.get("search_results", [])][: self.cfg.max_pages]
        meta = {"domain": str(row.get("domain", "")), "question_type": str(row.get("question_type", "")),
                "static_or_dynamic": str(row.get("static_or_dynamic", "")),
                "popularity": row.get("popularity"), "split": row.get("split")}
        inp = {"query": str(row["query"]), "query_time": str(row.get("query_time", "")), "pages": pages}
        return Item(str(row.get("interaction_id", where)), inp, golds, meta)

    def page_texts(self, item: Item) -> list[dict[str, str]]:
        """The item's pages as ``{name, url, last_modified, text}`` (HTML through the extractor)."""
        from llmlab.tasks.crag.html import html_to_text

        out = []
        for p in item.input["pages"]:
            if self.cfg.page_text == "html":
                text = html_to_text(str(p.get("page_result") or ""))
            else:
                text = str(p.get("page_snippet") or "")
            out.append({"name": str(p.get("page_name", "")), "url": str(p.get("page_url", "")),
                        "last_modified": str(p.get("page_last_modified", "")), "text": text})
        return out

    def prompt(self, item: Item) -> Query:
        from llmlab.backends.base import Message

        inp = item.input
        meta: dict[str, Any] = {"id": item.id, "query": inp["query"], "query_time": inp["query_time"],
                                "pages": self.page_texts(item)}
        if self.cfg.task == 2:
            from llmlab.tasks.crag.api import BY_NAME, crag_tools

            tools = crag_tools(self.cfg.api_domains)
            meta["tools"] = tools
            meta["api_url"] = self.cfg.api_url
            meta["tool_endpoints"] = {t.name: {"path": BY_NAME[t.name].path,
                                               "body": {p: k for p, _, k in BY_NAME[t.name].params}}
                                      for t in tools}
        user = USER_LLM_ONLY.format(query_time=inp["query_time"], query=inp["query"])
        return Query((Message("system", SYSTEM_LLM_ONLY), Message("user", user)), metadata=meta)

    # -- scoring ------------------------------------------------------------------------------------

    def trim(self, prediction: str) -> str:
        """The official 75-token trim with the Llama tokenizer."""
        if self.cfg.tokenizer is not None:
            path = tokenizer_dir(self.cfg.tokenizer)
        else:  # each file resolved (and fetched from the official source when absent)
            files = [self.data_path(DATASET, "tokenizer", f) for f in TOKENIZER_FILES]
            path = str(files[0].parent)
        return trim_prediction(prediction, load_tokenizer(path), self.cfg.max_prediction_tokens)

    def judge_system(self) -> str:
        """The judge's system message: the instructions, a newline, the in-context examples."""
        if self.cfg.judge_prompt_file is None:
            return JUDGE_INSTRUCTIONS + "\n" + JUDGE_EXAMPLES
        import yaml

        path = Path(self.cfg.judge_prompt_file)
        if not path.is_file():
            raise ConfigError(f"judge_prompt_file {path} not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not {"instructions", "examples"} <= set(data):
            raise ConfigError(f"judge_prompt_file {path}: needs keys 'instructions' and 'examples'")
        return str(data["instructions"]) + "\n" + str(data["examples"])

    def score(self, item: Item, answer: str | None) -> Score:
        raise UnsupportedFeatureError(
            "CRAG is scored with a judge model (exact matches, misses and false premises aside): call "
            "`await task.ascore(item, answer, roles)` with a 'judge' role (--role judge=SPEC)"
        )

    async def ascore(self, item: Item, answer: str | None, roles: Roles) -> Score:
        from llmlab.backends.base import GenerateRequest, Message

        roles.check_known({"judge"}, "crag")
        judge_model = roles["judge"]
        system = self.judge_system()
        fmt = {"type": "json_object"} if self.cfg.judge_json_mode else None

        async def judge(query: str, gt: str, pred: str) -> str | None:
            req = GenerateRequest(messages=(Message("system", system), Message("user", JUDGE_USER.format(
                query=query, ground_truth=gt, prediction=pred))), temperature=0.0, response_format=fmt)
            try:
                return (await judge_model.generate(req)).text
            except BackendError:
                return None  # officially: the call gave up; the item is not counted correct

        trimmed = self.trim(answer if answer is not None else "")
        verdict: Verdict = await evaluate_prediction(item.input["query"], item.target, trimmed, judge)
        details = {"label": verdict.label, "prediction": verdict.prediction, "judged": verdict.judged,
                   "judge_errors": verdict.judge_errors, "question_type": item.metadata["question_type"],
                   "domain": item.metadata["domain"], "static_or_dynamic": item.metadata["static_or_dynamic"]}
        return Score(verdict.value, correct=verdict.label == "correct", extracted=verdict.prediction,
                     details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Score / accuracy / hallucination / missing, overall and per question type, domain and dynamism."""
        report = crag_report((s.details["label"], s.details["question_type"], s.details["domain"]) for s in scores)
        dyn = crag_report((s.details["label"], s.details.get("static_or_dynamic", ""), "") for s in scores)
        report["per_dynamism"] = dyn["per_question_type"]
        report["judge_errors"] = sum(int(s.details.get("judge_errors", 0)) for s in scores)
        report["judge_parse_errors"] = sum(1 for s in scores for j in s.details.get("judged", ()) if j["score"] == -1)
        return report

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """A CRAG row (``query``, ``answer``, optional ``alt_ans``, ``question_type``, ``domain``) + ``prediction``."""
        if "prediction" not in record:
            raise DataError(f"{where}: CRAG prediction row needs 'prediction'")
        return self._item(record, where), str(record["prediction"])
