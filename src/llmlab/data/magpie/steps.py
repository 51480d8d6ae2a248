"""The datatrove steps of the Magpie filters (imports datatrove; loaded only when a pipeline runs).

Everything here is module level so that datatrove can pickle the steps into its worker processes (local
executor) or Ray tasks. See :mod:`llmlab.data.magpie.filters` for what each stage does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.word_tokenizers import WordTokenizer

if TYPE_CHECKING:
    from llmlab.data.magpie.filters import FilterConfig

_WORD = re.compile(r"\w+", re.UNICODE)
_SENT = re.compile(r"[^.!?\n]+[.!?\n]*")
QUALITY_LEVELS = ("very poor", "poor", "average", "good", "excellent")


class RegexWordTokenizer(WordTokenizer):
    r"""Words are ``\w+`` runs, sentences end at ``.!?`` or a newline (datatrove's English one needs spaCy)."""

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s.strip() for s in _SENT.findall(text) if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _SENT.finditer(text) if m.group().strip()]


# -- adapters ---------------------------------------------------------------------------------------------

def record_to_document(self: Any, data: dict[str, Any], path: str, id_in_file: int | str) -> dict[str, Any]:
    """Reader adapter: the instruction is the document text; the whole record rides in the metadata."""
    return {"text": str(data.get("instruction") or ""), "id": str(data.get("uuid", data.get("id", id_in_file))),
            "media": [], "metadata": {"record": data}}


def document_to_record(self: Any, document: Document) -> dict[str, Any]:
    """Writer adapter: the record as it came, with the fields the filters set (and a drop's reason)."""
    rec = dict(document.metadata["record"])
    if "filter_reason" in document.metadata:
        rec["filter_reason"] = document.metadata["filter_reason"]
    return rec


def document_to_sharegpt(self: Any, document: Document) -> dict[str, Any]:
    from llmlab.data.magpie.generate import to_sharegpt

    return to_sharegpt(document.metadata["record"])


def document_to_messages(self: Any, document: Document) -> dict[str, Any]:
    from llmlab.data.magpie.generate import to_messages

    return to_messages(document.metadata["record"])


def _passthrough_out(self: Any, document: Document) -> dict[str, Any]:
    return {"text": document.text, "id": document.id, "metadata": document.metadata}


def _passthrough_in(self: Any, data: dict[str, Any], path: str, id_in_file: int | str) -> dict[str, Any]:
    return {"text": data["text"], "id": data["id"], "media": [], "metadata": data["metadata"]}


def record_reader(folder: Path) -> JsonlReader:
    return JsonlReader(str(folder), adapter=record_to_document, compression=None, glob_pattern="*.jsonl")


def passthrough_reader(folder: Path) -> JsonlReader:
    return JsonlReader(str(folder), adapter=_passthrough_in, compression=None, glob_pattern="*.jsonl")


def passthrough_writer(folder: Path) -> JsonlWriter:
    return JsonlWriter(str(folder), output_filename="${rank}.jsonl", compression=None, adapter=_passthrough_out)


def exclusion_writer(removed: Path, stage: str) -> JsonlWriter:
    return JsonlWriter(str(removed / stage), output_filename="${rank}.jsonl", compression=None,
                       adapter=document_to_record)


def final_writers(folder: Path) -> list[JsonlWriter]:
    return [JsonlWriter(str(folder / name), output_filename="${rank}.jsonl", compression=None, adapter=a)
            for name, a in (("records", document_to_record), ("sharegpt", document_to_sharegpt),
                            ("messages", document_to_messages))]


# -- filters ----------------------------------------------------------------------------------------------

class LengthFilter(BaseFilter):
    """Instruction length in characters; an empty response (where the record has one) is dropped."""

    name = "magpie length"

    def __init__(self, min_chars: int, max_chars: int, exclusion_writer: Any = None) -> None:
        super().__init__(exclusion_writer)
        self.min_chars, self.max_chars = min_chars, max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        n = len(doc.text.strip())
        if n < self.min_chars:
            return False, "instruction_too_short"
        if n > self.max_chars:
            return False, "instruction_too_long"
        rec = doc.metadata["record"]
        if "response" in rec and not str(rec["response"] or "").strip():
            return False, "empty_response"
        return True


class ResponseRepetitionFilter(BaseFilter):
    """datatrove's Gopher repetition rules applied to the record's response."""

    name = "magpie repetition"

    def __init__(self, min_words: int, exclusion_writer: Any = None) -> None:
        super().__init__(exclusion_writer)
        self.min_words = min_words
        self.inner = GopherRepetitionFilter(language=RegexWordTokenizer())

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        response = doc.metadata["record"].get("response")
        # The Gopher rules are document statistics: on a two-sentence reply every n-gram is "frequent".
        if not response or len(_WORD.findall(str(response))) < self.min_words:
            return True
        got = self.inner.filter(Document(text=str(response), id=doc.id))
        return got if isinstance(got, tuple) else bool(got)


class ColonFilter(BaseFilter):
    """Drop an instruction that ends with ``:`` (official filter notebook)."""

    name = "magpie colon"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return (False, "ends_with_colon") if doc.text.rstrip().endswith(":") else True


class LanguageFilter(BaseFilter):
    """Set ``language``/``language_score`` (LID-176) and keep only ``languages`` (None: keep all)."""

    name = "magpie language"

    def __init__(self, languages: list[str] | None, exclusion_writer: Any = None) -> None:
        super().__init__(exclusion_writer)
        self.languages = languages

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        from llmlab.data.magpie.filters import detect_language

        lang, score = detect_language(doc.text)
        rec = doc.metadata["record"]
        rec["language"], rec["language_score"] = lang, round(score, 4)
        if self.languages is not None and lang not in self.languages:
            return False, f"language_{lang}"
        return True


class QualityFilter(BaseFilter):
    """Keep ``input_quality`` at or above ``min_quality`` (a record without the tag: kept unless required)."""

    name = "magpie quality"

    def __init__(self, min_quality: str, require: bool, exclusion_writer: Any = None) -> None:
        super().__init__(exclusion_writer)
        self.min_quality, self.require = min_quality, require

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        q = doc.metadata["record"].get("input_quality")
        if q is None:
            return (False, "no_quality_tag") if self.require else True
        if q not in QUALITY_LEVELS or QUALITY_LEVELS.index(q) < QUALITY_LEVELS.index(self.min_quality):
            return False, "low_quality"
        return True


class RewardFilter(BaseFilter):
    """Keep ``instruct_reward > min_reward`` (a record without a reward: kept unless required)."""

    name = "magpie reward"

    def __init__(self, min_reward: float, require: bool, exclusion_writer: Any = None) -> None:
        super().__init__(exclusion_writer)
        self.min_reward, self.require = min_reward, require

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        r = doc.metadata["record"].get("instruct_reward")
        if r is None:
            return (False, "no_reward") if self.require else True
        return True if float(r) > self.min_reward else (False, "low_reward")


def filter_steps(cfg: FilterConfig, removed: Path) -> list[BaseFilter]:
    """The per-record filters of ``cfg``, each with its exclusion writer under ``removed/<stage>``."""
    steps: list[BaseFilter] = [LengthFilter(cfg.min_chars, cfg.max_chars, exclusion_writer(removed, "length"))]
    if cfg.repetition:
        steps.append(ResponseRepetitionFilter(cfg.repetition_min_words, exclusion_writer(removed, "repetition")))
    if cfg.drop_colon_ending:
        steps.append(ColonFilter(exclusion_writer(removed, "colon")))
    steps.append(LanguageFilter(cfg.languages, exclusion_writer(removed, "language")))
    if cfg.min_quality is not None:
        steps.append(QualityFilter(cfg.min_quality, cfg.require_tags, exclusion_writer(removed, "quality")))
    if cfg.min_reward is not None:
        steps.append(RewardFilter(cfg.min_reward, cfg.require_tags, exclusion_writer(removed, "reward")))
    return steps
