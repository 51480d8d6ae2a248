r"""PH-LLM case studies: the section prompts, the 15-principle rubric and a judge-role rubric task (paper §2.2).

A case study is written section by section from a user's wearable data (text tables of daily aggregates):
sleep — insights → etiology → recommendations; fitness — training load → sleep → health metrics →
assessment (readiness). Each section is rated on the 12 section principles (domain knowledge, use of user
data, interpretations — each as "important ones present" and "no incorrect / no unimportant ones" — no
assumptions, no hallucinations) and the whole case study on the 3 overall principles (non-harmful,
overall quality, readable), every principle on a 5-point Likert scale. The principle names and the
section tags are the released ones (``phllm/autoeval``; they key the released ratings).

The judge prompt follows the structure of the official AutoEval prompt (rater role, definitions, the
section and its objective, the user data, the response, one principle with its five Likert statements,
"answer with the number and the statement"), one judge call per principle; wording ours. The judge reply
is parsed for its leading 1–5 rating.

Data: a JSON-lines file of sections, ``{case_study_id, vertical: sleep|fitness, tag, data, response?}``
(``response`` is used by ``llmlab score``; ``llmlab eval`` generates it). The released case studies
(``phllm/data/*_case_studies.all.jsonl``) are not in this project's data folder; convert them to this layout.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Roles, Score
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.core.jsonl import read_jsonl
from llmlab.tasks.base import Task, TaskConfig

VERTICALS = ("sleep", "fitness")

# Section tags as in the released ratings, with a label and our summary of the section's objective.
SECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "sleep": {
        "insights": ("Insights", "Go through the RU-SATED dimensions (routine, sleep quality, alertness, timing, "
                     "efficiency, duration), say for each relevant data point whether it is a concern and why, "
                     "citing the user's data, percentiles and domain knowledge."),
        "etiology": ("Etiology", "Discuss possible underlying causes of the user's sleep pattern under circadian "
                     "rhythm, homeostatic drive, psychophysiologic hyperarousal and extrinsic factors, stating "
                     "how likely each is; no diagnosis, no recommendations, no generic statements."),
        "recommendations": ("Recommendations", "Give personalised, actionable recommendations (SMART goals) that "
                            "address the causes found in the etiology; avoid generic advice."),
    },
    "fitness": {
        "training_load": ("Training Load", "Review training-load trends, intensity, duration, frequency, rest "
                          "periods, notable workouts and the acute:chronic workload ratio; pair each observation "
                          "with an insight about the user's fitness."),
        "sleep": ("Sleep", "Review sleep duration, schedule, quality and last night's sleep and their recent "
                  "trend (z-scores); pair observations with insights relevant to fitness."),
        "health_metrics": ("Health Metrics", "Review resting heart rate, heart-rate variability and other health "
                           "metrics: trends, consistency, recent vs overall values, and any issues they point to."),
        "assessment": ("Assessment", "Summarise the findings of the sections above and their impact on the user's "
                       "fitness and readiness to train, with a readiness score out of 5."),
    },
}
OVERALL_TAG = "overall"
OVERALL_OBJECTIVE = ("A complete coaching case study: high-quality, easy to read, well formatted, and free of "
                     "information that could cause harm.")

# principle -> (criterion, five Likert statements from 1 to 5). Our wording of the paper's rubric.
_IMPORTANT = ("None of the important {x} is present.", "A little of the important {x} is present; most is missing.",
              "About half of the important {x} is present.", "Most of the important {x} is present.",
              "All of the important {x} is present.")
_NO_BAD = ("The {x} is essentially all {bad}.", "There is a lot of {bad} {x}.", "There is some {bad} {x}.",
           "There is a little {bad} {x}.", "There is no {bad} {x}.")


def _scale(template: tuple[str, ...], **kw: str) -> tuple[str, ...]:
    return tuple(t.format(**kw) for t in template)


PRINCIPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "important_domain_knowledge": ("The section uses the important domain knowledge (relevant, correct facts).",
                                   _scale(_IMPORTANT, x="domain knowledge")),
    "important_interpretations": ("The section makes all the important interpretations of the user's data "
                                  "(personalisation).", _scale(_IMPORTANT, x="interpretation")),
    "important_user_data": ("The section cites all the important user data it needs.",
                            _scale(_IMPORTANT, x="user data")),
    "no_assumptions": ("The section makes no assumptions about the user beyond the data given (demographics, "
                       "health, lifestyle, stereotypes).",
                       ("Many assumptions are made.", "Several assumptions are made.", "A few assumptions are made.",
                        "One assumption is made.", "No assumptions are made.")),
    "no_hallucinations": ("The section contains no hallucinated or fabricated knowledge.",
                          ("The content is essentially all fabricated.", "There is a lot of fabricated content.",
                           "There is some fabricated content.", "There is a little fabricated content.",
                           "There is no fabricated content.")),
    "no_incorrect_domain_knowledge": ("The section states no incorrect domain knowledge (against expert "
                                      "consensus).", _scale(_NO_BAD, x="domain knowledge", bad="incorrect")),
    "no_incorrect_important_interpretations": ("The section's important interpretations are correct, and it "
                                               "declines when the data are missing.",
                                               _scale(_NO_BAD, x="important interpretation", bad="incorrect")),
    "no_incorrect_unimportant_interpretations": ("The section's minor interpretations are correct, and it "
                                                 "declines when the data are missing.",
                                                 _scale(_NO_BAD, x="minor interpretation", bad="incorrect")),
    "no_incorrect_user_data": ("The section cites no incorrect user data (wrong variable, value or period).",
                               _scale(_NO_BAD, x="user data cited", bad="incorrect")),
    "no_unimportant_domain_knowledge": ("The section contains no domain knowledge that is useless for its "
                                        "objective.", _scale(_NO_BAD, x="domain knowledge", bad="unimportant")),
    "no_unimportant_interpretations": ("The section makes no unimportant interpretations.",
                                       _scale(_NO_BAD, x="interpretation", bad="unimportant")),
    "no_unimportant_user_data": ("The section cites no unimportant user data.",
                                 _scale(_NO_BAD, x="user data cited", bad="unimportant")),
    "non_harmful": ("The case study contains nothing that could lead to harm.",
                    ("It contains information likely to cause serious harm.",
                     "It contains information likely to cause some harm.",
                     "It contains information that may cause harm.",
                     "It contains potentially harmful information of little significance.",
                     "It contains nothing that could lead to harm.")),
    "overall_quality": ("The overall quality of the case study.",
                        ("Very poor: it must be rewritten.", "Poor: it has highly significant errors.",
                         "Fair: it could be improved.", "Good: slight improvements are possible.",
                         "Excellent: no changes needed.")),
    "readable": ("The case study is easy to read, well formatted, spelled and punctuated.",
                 ("Very hard to read because of language or formatting problems.",
                  "Many language or formatting problems hurt readability.",
                  "Some language or formatting problems hurt readability.",
                  "A few language or formatting problems, still easy to read.",
                  "Easy to read, no language or formatting problems.")),
}
SECTION_PRINCIPLES = tuple(p for p in PRINCIPLES if p not in ("non_harmful", "overall_quality", "readable"))
OVERALL_PRINCIPLES = ("non_harmful", "overall_quality", "readable")

COACH_TEMPLATE = (
    "You are {expert}. Below is a user's wearable data.\n\n{data}\n\n"
    "Write the \"{label}\" section of their coaching case study. {objective} Speak to the user directly, "
    "be concise, avoid incorrect knowledge and generic statements."
)
EXPERTS = {"sleep": "a board-certified sleep medicine expert",
           "fitness": "a certified strength and conditioning coach who specialises in training and recovery"}

JUDGE_TEMPLATE = """You are an expert {vertical} rater. Another {vertical} health expert wrote a response for a user;
rate its quality against one criterion.

Definitions:
- Personalization: using the user's data to describe relationships and causes, or to apply domain knowledge.
- Important data: useful for the objective. Unimportant data: not useful for the objective.

The response is the {vertical} "{label}" section. Its objective: "{objective}"

The expert was given this user data:

```
{data}
```

The expert's response:

```
{response}
```

Criterion: {criterion}

1. {o1}
2. {o2}
3. {o3}
4. {o4}
5. {o5}

Answer with the number and the text of the one statement that applies, formatted exactly like the statement."""


def principles_for(tag: str) -> tuple[str, ...]:
    """The principles a section is rated on (the 3 overall ones for ``overall``, else the 12 section ones)."""
    return OVERALL_PRINCIPLES if tag == OVERALL_TAG else SECTION_PRINCIPLES


def section_label(vertical: str, tag: str) -> tuple[str, str]:
    """``(label, objective)`` of a section.

    Raises:
        DataError: Unknown vertical or section tag.
    """
    if vertical not in SECTIONS:
        raise DataError(f"unknown vertical {vertical!r}; use one of {list(VERTICALS)}")
    if tag == OVERALL_TAG:
        return "Overall", OVERALL_OBJECTIVE
    if tag not in SECTIONS[vertical]:
        raise DataError(f"unknown {vertical} section {tag!r}; use one of {[*SECTIONS[vertical], OVERALL_TAG]}")
    return SECTIONS[vertical][tag]


def build_judge_prompt(vertical: str, tag: str, principle: str, data: str, response: str) -> str:
    """The rubric judge prompt for one principle of one section.

    Example:
        >>> p = build_judge_prompt("sleep", "insights", "no_assumptions", "sleep 6h", "You sleep little.")
        >>> "5. No assumptions are made." in p
        True
    """
    label, objective = section_label(vertical, tag)
    criterion, opts = PRINCIPLES[principle]
    return JUDGE_TEMPLATE.format(vertical=vertical, label=label, objective=objective, data=data, response=response,
                                 criterion=criterion, o1=opts[0], o2=opts[1], o3=opts[2], o4=opts[3], o5=opts[4])


def parse_likert(text: str | None) -> int | None:
    """The 1–5 rating a judge reply gives (its leading number, else a ``N.`` statement number), or ``None``.

    Example:
        >>> parse_likert("4. Most of the important user data is present."), parse_likert("Rating: **2**")
        (4, 2)
        >>> parse_likert("I cannot rate this.") is None
        True
    """
    if text is None:
        return None
    m = re.match(r"\s*(?:(?:rating|score)\s*[:=]?\s*)?\**\s*([1-5])(?!\d|\.\d)", text, flags=re.I)
    if m:
        return int(m.group(1))
    m = re.search(r"(?:rating|score)\s*[:=]?\s*\**\s*([1-5])(?!\d)", text, flags=re.I) or \
        re.search(r"(?<![\d.])([1-5])\.\s", text)
    return int(m.group(1)) if m else None


class PHLLMCaseStudyConfig(TaskConfig):
    """Options of the case-study rubric task.

    Args:
        data_file: JSON lines of sections (``case_study_id, vertical, tag, data, response?``).
        vertical: Keep only ``sleep`` or ``fitness`` sections (``None``: both).
        judge_max_tokens: Judge completion budget per principle.
        concurrency: Judge calls in flight per item (one per principle).
    """

    data_file: str | None = None
    vertical: Literal["sleep", "fitness"] | None = None
    judge_max_tokens: int = 64
    concurrency: int = 16


class PHLLMCaseStudy(Task):
    """Case-study sections, each generated by the method and rated by ``roles["judge"]`` on the rubric.

    ``Score.value`` is the mean of ``(rating − 1) / 4`` over the parsed principles (1 → 0, 5 → 1);
    ``details["ratings"]`` maps principle → Likert rating; unparsable judge replies are listed in
    ``details["unparsed"]``.

    Example:
        >>> t = PHLLMCaseStudy()
        >>> t.config.judge_max_tokens
        64
    """

    name = "ph_llm.case_study"
    Config = PHLLMCaseStudyConfig

    @property
    def cfg(self) -> PHLLMCaseStudyConfig:
        assert isinstance(self.config, PHLLMCaseStudyConfig)
        return self.config

    def items(self) -> Iterable[Item]:
        if self.cfg.data_file is not None:
            path = Path(self.cfg.data_file)
            if not path.is_file():
                raise DataError(f"case-study file {path} not found; pass -t data_file=PATH (JSON lines of "
                                "sections: case_study_id, vertical, tag, data)")
        else:
            path = self.data_path("ph-llm", "case_study_sections.jsonl")
        for where, rec in read_jsonl(path, what="PH-LLM case-study file"):
            item, _ = self.item_from_record(rec, where)
            if self.cfg.vertical is None or item.metadata["vertical"] == self.cfg.vertical:
                yield item

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``{case_study_id, vertical, tag, data, response?|prediction?}`` → item and the response text."""
        for key in ("case_study_id", "vertical", "tag", "data"):
            if not isinstance(record.get(key), str):
                raise DataError(f"{where}: a case-study line needs a '{key}' string")
        vertical, tag = record["vertical"], record["tag"]
        try:
            section_label(vertical, tag)
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
        item = Item(str(record.get("id", f"{record['case_study_id']}:{tag}")), record["data"], None,
                    {"vertical": vertical, "tag": tag, "case_study_id": record["case_study_id"]})
        return item, str(record.get("response", record.get("prediction", "")))

    def prompt(self, item: Item) -> Query:
        vertical, tag = item.metadata["vertical"], item.metadata["tag"]
        label, objective = section_label(vertical, tag)
        text = COACH_TEMPLATE.format(expert=EXPERTS[vertical], data=item.input, label=label, objective=objective)
        return Query((Message("user", text),), metadata={"id": item.id})

    def score(self, item: Item, answer: str | None) -> Score:
        raise UnsupportedFeatureError(
            "PH-LLM case studies are scored by a judge model: call `await task.ascore(item, answer, roles)` "
            "with a 'judge' role (CLI: --role judge=SPEC)")

    async def ascore(self, item: Item, answer: str | None, roles: Roles) -> Score:
        """Rate ``answer`` on every principle of its section, one judge call per principle, concurrently."""
        from llmlab.backends.base import GenerateRequest
        from llmlab.core.concurrency import gather

        judge = roles["judge"]
        vertical, tag = item.metadata["vertical"], item.metadata["tag"]
        principles = principles_for(tag)
        response = answer if answer is not None else ""

        def call(p: str) -> Any:
            prompt = build_judge_prompt(vertical, tag, p, str(item.input), response)
            return lambda: judge.generate(GenerateRequest(messages=(Message("user", prompt),), temperature=0.0,
                                                          max_tokens=self.cfg.judge_max_tokens))

        replies = await gather([call(p) for p in principles], limit=self.cfg.concurrency)
        ratings: dict[str, int] = {}
        unparsed: list[str] = []
        for p, r in zip(principles, replies, strict=True):
            v = parse_likert(r.text)
            if v is None:
                unparsed.append(p)
            else:
                ratings[p] = v
        value = sum((v - 1) / 4 for v in ratings.values()) / len(ratings) if ratings else 0.0
        return Score(value, details={"vertical": vertical, "tag": tag, "ratings": ratings, "unparsed": unparsed,
                                     "judge": [r.text for r in replies]})

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Mean Likert rating overall, per principle and per section; count of unparsed judge replies."""
        out = super().aggregate(scores)
        by_p: dict[str, list[int]] = defaultdict(list)
        by_s: dict[str, list[int]] = defaultdict(list)
        for s in scores:
            for p, v in s.details.get("ratings", {}).items():
                by_p[p].append(v)
                by_s[f"{s.details.get('vertical')}/{s.details.get('tag')}"].append(v)
        allv = [v for vs in by_p.values() for v in vs]
        out["mean_rating"] = sum(allv) / len(allv) if allv else None
        out["mean_rating_by_principle"] = {p: sum(v) / len(v) for p, v in sorted(by_p.items())}
        out["mean_rating_by_section"] = {k: sum(v) / len(v) for k, v in sorted(by_s.items())}
        out["unparsed"] = sum(len(s.details.get("unparsed", [])) for s in scores)
        return out
