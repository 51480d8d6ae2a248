"""Magpie's tagging: a judge LLM labels each instruction; a guard model and a reward model score the pair.

Missions (official ``unitag.py``): ``difficulty`` (intent, knowledge, difficulty), ``quality``
(explanation, input_quality), ``classification`` (task_category = primary tag, other_task_category),
``safety`` (the guard model's verdict on the (instruction, response) chat, ``llama_guard_2``), ``reward``
(a reward model's score of the pair, ``instruct_reward``). The judge is a role: any model spec; the
prompts are the module constants below. A reply that is not the JSON asked for leaves the mission's
fields as ``None`` (as official).

Tags are appended to ``DIR/tags.jsonl`` as they come (``{"uuid", "mission", "fields"}``), so a rerun tags
only what is missing; ``llmlab magpie filter`` merges them into the records.

Deviations: the official judge prompt is prefilled with ``{`` through the raw template; here it is a plain
chat request (so the judge can be any chat endpoint) and the reply's outermost ``{...}`` is parsed, text
around it ignored, as official.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from llmlab.backends.base import GenerateRequest
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.errors import ConfigError, MissingExtraError
from llmlab.data.magpie.prompts import CLASSIFICATION_PROMPT, DIFFICULTY_PROMPT, QUALITY_PROMPT

# mission -> (prompt, {record field: JSON key})
JUDGE_MISSIONS: dict[str, tuple[str, dict[str, str]]] = {
    "difficulty": (DIFFICULTY_PROMPT, {"intent": "intent", "knowledge": "knowledge", "difficulty": "difficulty"}),
    "quality": (QUALITY_PROMPT, {"input_quality": "input_quality", "quality_explanation": "explanation"}),
    "classification": (CLASSIFICATION_PROMPT, {"task_category": "primary_tag", "other_task_category": "other_tags"}),
}
MISSIONS = (*JUDGE_MISSIONS, "safety", "reward")
TAGS = "tags.jsonl"

RewardFn = Callable[[str, str], Awaitable[float] | float]


def parse_tags(reply: str, mission: str) -> dict[str, Any]:
    """The record fields of one judge reply; every field ``None`` when the reply is not the JSON asked for.

    Example:
        >>> parse_tags('{"explanation": "clear", "input_quality": "good"}', "quality")
        {'input_quality': 'good', 'quality_explanation': 'clear'}
    """
    fields = JUDGE_MISSIONS[mission][1]
    start, end = reply.find("{"), reply.rfind("}")
    try:
        obj = json.loads(reply[start:end + 1]) if 0 <= start < end else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict) or any(k not in obj for k in fields.values()):
        return {f: None for f in fields}
    return {f: obj[k] for f, k in fields.items()}


class HFRewardModel:
    """A reward model loaded with transformers (``AutoModelForSequenceClassification``, one output).

    The (instruction, response) chat is rendered with the reward model's own chat template, its BOS text
    removed (the tokenizer adds it again), as official. The score is the first logit.
    """

    def __init__(self, path: str, device: str = "cpu") -> None:
        try:
            import torch  # noqa: F401
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError:
            raise MissingExtraError("transformers", "hf", "the reward model") from None
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
        self.device = device
        self.name = path

    def __call__(self, instruction: str, response: str) -> float:
        import torch

        chat = [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        text = str(self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False))
        if self.tokenizer.bos_token:
            text = text.replace(self.tokenizer.bos_token, "")
        ids = self.tokenizer(text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self.model(**ids).logits  # (1, num_labels)
        return float(logits[0, 0])


async def tag_records(records: Sequence[dict[str, Any]], out_dir: str | Path, missions: Sequence[str], *,
                      judge: Model | None = None, guard: Model | None = None, reward: RewardFn | None = None,
                      concurrency: int = 16) -> int:
    """Tag ``records`` for each mission, appending to ``out_dir/tags.jsonl``; returns the new tags made.

    Raises:
        ConfigError: An unknown mission, or a mission without its model (judge / guard / reward).
    """
    for m in missions:
        if m not in MISSIONS:
            raise ConfigError(f"unknown tagging mission {m!r}; choose from {', '.join(MISSIONS)}")
        need = {"safety": (guard, "--guard"), "reward": (reward, "--reward-model")}.get(m, (judge, "--judge"))
        if need[0] is None:
            raise ConfigError(f"mission {m!r} needs {need[1]} SPEC")
    path = Path(out_dir) / TAGS
    done: set[tuple[str, str]] = set()
    if path.exists():
        raw = path.read_bytes()
        keep = raw[: raw.rfind(b"\n") + 1]
        if len(keep) != len(raw):
            path.write_bytes(keep)
        for line in keep.decode("utf-8").splitlines():
            try:
                t = json.loads(line)
                done.add((str(t["uuid"]), str(t["mission"])))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    made = 0
    with path.open("a", encoding="utf-8") as fh:

        async def one(rec: dict[str, Any], mission: str) -> None:
            nonlocal made
            uid = str(rec.get("uuid", rec.get("id")))
            ins, res = str(rec.get("instruction") or ""), str(rec.get("response") or "")
            fields: dict[str, Any]
            if mission in JUDGE_MISSIONS:
                assert judge is not None
                reply = (await judge.generate(GenerateRequest.chat(
                    [{"role": "user", "content": JUDGE_MISSIONS[mission][0].format(input=ins)}],
                    temperature=0.0, max_tokens=1024))).text
                fields = parse_tags(reply, mission)
                fields[f"{'task_category' if mission == 'classification' else mission}_generator"] = judge.name
            elif mission == "safety":
                assert guard is not None
                verdict = await guard.generate(GenerateRequest.chat(
                    [{"role": "user", "content": ins}, {"role": "assistant", "content": res}],
                    temperature=0.0, max_tokens=16))
                fields = {"llama_guard_2": verdict.text.strip()}
            else:
                assert reward is not None
                got = reward(ins, res)
                score = await got if not isinstance(got, float | int) else got
                fields = {"instruct_reward": float(score), "reward_model": getattr(reward, "name", "reward")}
            fh.write(json.dumps({"uuid": uid, "mission": mission, "fields": fields}, ensure_ascii=False) + "\n")
            fh.flush()
            made += 1

        jobs = [(r, m) for m in missions for r in records
                if (str(r.get("uuid", r.get("id"))), m) not in done]
        await gather([functools.partial(one, r, m) for r, m in jobs], limit=concurrency)
    return made
