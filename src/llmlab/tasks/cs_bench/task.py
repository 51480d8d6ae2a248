"""The CS-Bench task: items in four formats and four languages, scored as official (and fixed)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.core.contracts import Item, Query, Roles, Score
from llmlab.core.errors import ConfigError, DataError, UnsupportedFeatureError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.cs_bench.prompts import JUDGE_PROMPTS, PROMPTS
from llmlab.tasks.cs_bench.scoring import (
    assertion_verdict,
    fill_judge_score,
    gold_letter,
    gold_truth,
    mc_choice,
    mc_choice_official,
    open_judge_score,
)

DATASET = "cs-bench"
LANGUAGES = {"EN": "English", "CN": "Chinese", "DE": "German", "FR": "French"}
FORMATS = ("Multiple-choice", "Assertion", "Fill-in-the-blank", "Open-ended")
TAGS = ("Knowledge", "Reasoning")
DOMAINS = ("Computer Organization", "Data Structure and Algorithm", "Operating System", "Computer Network")
JUDGED = ("Fill-in-the-blank", "Open-ended")
Format = Literal["Multiple-choice", "Assertion", "Fill-in-the-blank", "Open-ended"]


class CSBenchConfig(TaskConfig):
    """Options of :class:`CSBench`.

    Attributes:
        languages: Which language sets (``EN``, ``CN``, ``DE``, ``FR``).
        split: ``test`` (2183 items per language) or ``valid`` (236).
        formats: Only these formats (default all four).
        templates: A YAML/JSON file ``{format: template}`` replacing our prompt wording (e.g. the official
            wording); templates use ``{question}`` and, for multiple choice, ``{A}``..``{D}``.
        data_file: One JSON list of rows to use instead of the dataset folder.
        judge_max_tokens: Judge completion budget for fill-in-the-blank and open-ended.
    """

    languages: list[Literal["EN", "CN", "DE", "FR"]] = ["EN"]
    split: Literal["test", "valid"] = "test"
    formats: list[Format] | None = None
    templates: str | None = None
    data_file: str | None = None
    judge_max_tokens: int = 1024


class CSBench(Task):
    """CS-Bench (Song et al. 2024): computer-science knowledge and reasoning in four formats.

    ``score`` handles multiple choice and assertions; fill-in-the-blank and open-ended are judged by
    ``roles["judge"]`` in :meth:`ascore`. Each score's ``details`` carries ``score_official``.

    Example:
        >>> t = CSBench()
        >>> rec = {"ID": 1, "Format": "Multiple-choice", "Tag": "Knowledge", "Domain": "Operating System",
        ...        "Language": "English", "Question": "Q", "A": "a", "B": "b", "C": "c", "D": "d",
        ...        "Answer": "C", "output": "The answer is a stack: C"}
        >>> item, pred = t.item_from_record(rec, "f:1")
        >>> s = t.score(item, pred)
        >>> (s.value, s.details["score_official"])
        (1.0, 0.0)
    """

    name = "cs_bench"
    Config = CSBenchConfig

    @property
    def cfg(self) -> CSBenchConfig:
        assert isinstance(self.config, CSBenchConfig)
        return self.config

    def _templates(self) -> dict[str, str]:
        if self.cfg.templates is None:
            return {}
        import yaml

        path = Path(self.cfg.templates)
        if not path.is_file():
            raise ConfigError(f"templates file {path} not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not set(data) <= set(FORMATS):
            raise ConfigError(f"templates file {path}: expected a mapping with keys among {', '.join(FORMATS)}")
        return {str(k): str(v) for k, v in data.items()}

    def rows(self) -> list[tuple[str, dict[str, Any]]]:
        """``(where, row)`` for every row of the configured language files."""
        out: list[tuple[str, dict[str, Any]]] = []
        cfg = self.cfg
        sources = ([Path(cfg.data_file)] if cfg.data_file is not None else
                   [self.data_path(DATASET, f"CSBench-{lang}", f"{cfg.split}.json") for lang in cfg.languages])
        for path in sources:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"CS-Bench file {path}: cannot read it ({exc})") from None
            if not isinstance(data, list):
                raise DataError(f"CS-Bench file {path}: expected a JSON list of rows")
            out.extend((f"{path}:{i + 1}", r) for i, r in enumerate(data))
        return out

    def items(self) -> Iterable[Item]:
        formats = set(self.cfg.formats) if self.cfg.formats is not None else set(FORMATS)
        for where, row in self.rows():
            item = self._item(row, where)
            if item.metadata["format"] in formats:
                yield item

    def _item(self, row: Mapping[str, Any], where: str) -> Item:
        for key in ("ID", "Format", "Question", "Answer"):
            if key not in row:
                raise DataError(f"{where}: CS-Bench row needs '{key}'")
        fmt = str(row["Format"])
        if fmt not in FORMATS:
            raise DataError(f"{where}: unknown Format {fmt!r}; expected one of {', '.join(FORMATS)}")
        language = str(row.get("Language", "English"))
        if fmt == "Multiple-choice":
            missing = [k for k in ("A", "B", "C", "D") if k not in row]
            if missing:
                raise DataError(f"{where}: multiple-choice row lacks option(s) {', '.join(missing)}")
            target: Any = gold_letter(row["Answer"])
        elif fmt == "Assertion":
            target = gold_truth(row["Answer"])
        else:
            target = str(row["Answer"])
        meta = {"format": fmt, "tag": str(row.get("Tag", "")), "domain": str(row.get("Domain", "")),
                "subdomain": str(row.get("SubDomain", "")), "language": language, "raw_answer": row["Answer"],
                "gold_invalid": target is None}
        lang_code = next((k for k, v in LANGUAGES.items() if v == language), language)
        return Item(f"{lang_code}/{row['ID']}", dict(row), target, meta)

    def prompt(self, item: Item) -> Query:
        from llmlab.backends.base import Message

        row, fmt = item.input, item.metadata["format"]
        lang = item.metadata["language"]
        # the official repo has English and Chinese templates only; DE/FR use the English ones
        template = self._templates().get(fmt, PROMPTS["Chinese" if lang == "Chinese" else "English"][fmt])
        fields = {"question": row["Question"], **{k: row.get(k, "") for k in ("A", "B", "C", "D")}}
        text = template.format(**fields)
        # No extractor: the fixed and the official rules must both see the model's raw text (an extracted
        # letter would hide the official regex's article-"a" bug and make score_official meaningless).
        return Query((Message("user", text),), metadata={"id": item.id, "format": fmt})

    def _base_details(self, item: Item) -> dict[str, Any]:
        md = item.metadata
        return {"format": md["format"], "tag": md["tag"], "domain": md["domain"], "language": md["language"],
                "gold_invalid": md["gold_invalid"]}

    def score(self, item: Item, answer: str | None) -> Score:
        text = answer if answer is not None else ""
        fmt = item.metadata["format"]
        details = self._base_details(item)
        raw = str(item.metadata["raw_answer"]).upper()
        if fmt == "Multiple-choice":
            choice, official = mc_choice(text), mc_choice_official(text)
            ok = choice is not None and choice == item.target
            details["score_official"] = float(official is not None and official == raw)
            details["official_choice"] = official
            return Score(float(ok), correct=ok, extracted=choice, details=details)
        if fmt == "Assertion":
            verdict = assertion_verdict(text)
            ok = verdict is not None and item.target is not None and verdict == item.target
            # the official compare "true" == "TRUE" never holds; score_official keeps the evident intent
            details["score_official"] = float(ok)
            details["score_official_literal"] = 0.0
            return Score(float(ok), correct=ok, extracted=None if verdict is None else str(verdict).lower(),
                         details=details)
        raise UnsupportedFeatureError(
            f"CS-Bench {fmt} answers are scored by a judge model: call `await task.ascore(item, answer, roles)` "
            "with a 'judge' role (llmlab eval/score --role judge=SPEC)"
        )

    def judge_prompt(self, item: Item, answer: str) -> str:
        """The judge prompt for a fill-in-the-blank or open-ended answer."""
        lang = "Chinese" if item.metadata["language"] == "Chinese" else "English"
        template = JUDGE_PROMPTS[lang][item.metadata["format"]]
        return template.format(question=item.input["Question"], answer=item.input["Answer"], output=answer)

    async def ascore(self, item: Item, answer: str | None, roles: Roles) -> Score:
        fmt = item.metadata["format"]
        if fmt not in JUDGED:
            return self.score(item, answer)
        from llmlab.backends.base import GenerateRequest, Message

        roles.check_known({"judge"}, "cs_bench")
        text = answer if answer is not None else ""
        resp = await roles["judge"].generate(GenerateRequest(
            messages=(Message("user", self.judge_prompt(item, text)),), temperature=0.0,
            max_tokens=self.cfg.judge_max_tokens))
        value = float(fill_judge_score(resp.text) if fmt == "Fill-in-the-blank" else open_judge_score(resp.text))
        details = {**self._base_details(item), "score_official": value, "judge": resp.text}
        return Score(value, correct=value >= 1.0 if fmt == "Fill-in-the-blank" else None, details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Means like ``show_result.py``: Tag × Format and Domain × Tag, for ``score`` and ``score_official``.

        Items whose gold answer is unknown (translation debris in DE/FR) are left out of ``score`` and
        counted in ``n_gold_invalid``; ``score_official`` keeps them (scored 0, as officially).
        """
        valid = [s for s in scores if not s.details.get("gold_invalid")]
        fixed = show_result([(s.details["format"], s.details["tag"], s.details["domain"], s.value) for s in valid])
        official = show_result([(s.details["format"], s.details["tag"], s.details["domain"],
                                 float(s.details["score_official"])) for s in scores])
        return {
            "n": len(scores),
            "n_gold_invalid": len(scores) - len(valid),
            "score": fixed["by_format_and_tag"]["Overall"]["All"],
            "score_official": official["by_format_and_tag"]["Overall"]["All"],
            "mc_disagreements": sum(1 for s in scores if s.details["format"] == "Multiple-choice"
                                    and s.value != s.details["score_official"]),
            "fixed": fixed,
            "official": official,
        }

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """A row of the official judging input: the dataset row plus ``output`` (the model's answer)."""
        if "output" not in record:
            raise DataError(f"{where}: CS-Bench prediction row needs 'output' (the model's answer)")
        return self._item(record, where), str(record["output"])


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def show_result(rows: Iterable[tuple[str, str, str, float]]) -> dict[str, Any]:
    """The two tables of the official ``show_result.py`` from ``(format, tag, domain, score)`` rows.

    Rows with a tag outside Knowledge/Reasoning (or, for the domain table, a domain outside the four) are
    left out as officially; an empty cell is 0 as officially. Values are fractions (official prints %.2f
    of the same means).

    Example:
        >>> t = show_result([("Assertion", "Knowledge", "Operating System", 1.0),
        ...                  ("Assertion", "Reasoning", "Operating System", 0.0)])
        >>> t["by_format_and_tag"]["Overall"]["All"], t["by_domain_and_tag"]["Knowledge"]["Operating System"]
        (0.5, 1.0)
    """
    by_ft: dict[str, dict[str, list[float]]] = {t: defaultdict(list) for t in (*TAGS, "Overall")}
    by_dt: dict[str, dict[str, list[float]]] = {t: defaultdict(list) for t in (*TAGS, "Overall")}
    for fmt, tag, domain, value in rows:
        if tag not in TAGS:
            continue
        if fmt in FORMATS:
            for t in (tag, "Overall"):
                by_ft[t][fmt].append(value)
                by_ft[t]["All"].append(value)
        if domain in DOMAINS:
            for t in (tag, "Overall"):
                by_dt[t][domain].append(value)
                by_dt[t]["All"].append(value)
    return {
        "by_format_and_tag": {t: {k: _mean(by_ft[t][k]) for k in (*FORMATS, "All")} for t in by_ft},
        "by_domain_and_tag": {t: {k: _mean(by_dt[t][k]) for k in (*DOMAINS, "All")} for t in by_dt},
        "counts": {t: {k: len(by_ft[t][k]) for k in (*FORMATS, "All")} for t in by_ft},
    }
