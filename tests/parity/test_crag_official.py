"""CRAG scorer vs the official ``local_evaluation.py`` on >= 500 crafted predictions.

Runs only when pointed at an official checkout (facebookresearch/CRAG: ``local_evaluation.py``,
``prompts/templates.py``, ``tokenizer/``):

    LLMLAB_CRAG_OFFICIAL=/path/to/CRAG python -m pytest tests/parity/test_crag_official.py -q

The official ``evaluate_predictions`` is run one prediction at a time with a scripted judge in place of
``attempt_api_call`` (``log_response`` disabled; ``auto_gptq`` stubbed, it is imported but unused). Its
shipped bugs are worked around minimally, and only those: the line computing ``prediction_lowercase`` is
inserted before its first use (the script cannot run otherwise), gold answers are passed as a list whose
``.strip()`` returns the list (the script calls ``.strip()`` on it), and the judge model is named with
"chat" (the only branch that judges). Our :class:`~llmlab.tasks.crag.CRAG` scores the same predictions
with the same scripted judge behind a mock backend; every per-item label (correct / missing /
hallucination) must agree.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model, RetryPolicy
from llmlab.core.contracts import Roles
from llmlab.core.errors import BackendError
from llmlab.tasks.crag import CRAG

OFFICIAL = os.environ.get("LLMLAB_CRAG_OFFICIAL")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (Path(OFFICIAL) / "local_evaluation.py").is_file(),
    reason="set LLMLAB_CRAG_OFFICIAL to a facebookresearch/CRAG checkout (folder with local_evaluation.py)",
)

REPLIES = [
    '{"score": 1, "explanation": "matches"}',
    '{"score": 0, "explanation": "does not match"}',
    '{"explanation": "hmm"}\nWait, no! {"score": 1, "explanation": "it matches after all"}',
    '{"score": 1}\nActually {"score": 0, "explanation": "wrong"}',
    '{"score": 2, "explanation": "bad"}',
    'The prediction is right, score 1',
    '{"score": "1", "explanation": "quoted"}',
    '{"score":1,"explanation":"tight"}',
    '{ "explanation": "no score here" }',
    None,  # the API call failed after its retries
]


def _reply(gt: str, pred: str) -> str | None:
    h = int(hashlib.sha256(f"{gt}\x00{pred}".encode()).hexdigest(), 16)
    return REPLIES[h % len(REPLIES)]


def _key(user: str) -> tuple[str, str]:
    m = re.search(r"\n Ground truth: (.*)\n Prediction: (.*)\n$", user, re.S)
    assert m, user
    return m.group(1), m.group(2)


class _GroundTruths(list):  # type: ignore[type-arg]
    def strip(self) -> list[str]:  # the shipped script calls .strip() on the gold answers
        return list(self)


def _official() -> types.ModuleType:
    assert OFFICIAL is not None
    root = Path(OFFICIAL)
    sys.modules.setdefault("auto_gptq", types.SimpleNamespace(AutoGPTQForCausalLM=None,  # type: ignore[arg-type]
                                                              BaseQuantizeConfig=None))
    quiet = types.SimpleNamespace(info=lambda *a, **k: None, warning=lambda *a, **k: None,
                                  warn=lambda *a, **k: None, error=lambda *a, **k: None)
    sys.modules.setdefault("loguru", types.SimpleNamespace(logger=quiet))  # type: ignore[arg-type]
    src = (root / "local_evaluation.py").read_text(encoding="utf-8")
    src, n = re.subn(r"\n(\s*)(if \"i don't know\" in prediction_lowercase:)",
                     lambda m: f"\n{m[1]}prediction_lowercase = prediction.lower()\n{m[1]}{m[2]}", src)
    assert n == 1, "the official 'i don't know' check was not found"
    mod = types.ModuleType("crag_local_evaluation")
    cwd = os.getcwd()
    sys.path.insert(0, str(root))
    try:
        os.chdir(root)  # the official module loads its tokenizer from ./tokenizer at import
        exec(compile(src, str(root / "local_evaluation.py"), "exec"), mod.__dict__)
    finally:
        os.chdir(cwd)
        sys.path.remove(str(root))

    def attempt_api_call(client: Any, model_name: str, messages: list[dict[str, str]], max_retries: int = 10) -> Any:
        return _reply(*_key(messages[1]["content"]))

    mod.attempt_api_call = attempt_api_call  # type: ignore[attr-defined]
    mod.log_response = lambda *a, **k: None  # type: ignore[attr-defined]
    mod.OpenAI = lambda *a, **k: None  # type: ignore[attr-defined]
    mod.logger = quiet  # type: ignore[attr-defined]
    mod.tqdm = lambda it, **k: it  # type: ignore[attr-defined]
    return mod


def _crafted(n: int = 600, seed: int = 0) -> list[tuple[str, list[str], str]]:
    rng = random.Random(seed)
    queries = ["who wrote the taming of the shrew?", "what is the market cap of x?", "how many times has y won?",
               "which company is bigger, a or b?", "when was z released?"]
    golds = [["william shakespeare"], ["2.81 trillion", "$2.81t"], ["invalid question"], ["yes"],
             ["2021-03-04", "march 4, 2021"], ["tom holland"], ["3"]]
    long_tail = " ".join(["the evidence in the pages is mixed and"] * 12)
    out = []
    for i in range(n):
        q, g = rng.choice(queries), rng.choice(golds)
        kind = i % 12
        if kind == 0:
            pred = g[-1].upper()
        elif kind == 1:
            pred = "I don't know"
        elif kind == 2:
            pred = "  " + g[0] + "  "
        elif kind == 3:
            pred = "invalid question"
        elif kind == 4:
            pred = f"{long_tail} i don't know"  # past the 75-token trim: not a miss
        elif kind == 5:
            pred = f"I don't know, maybe {g[0]}"
        elif kind == 6:
            pred = f"the answer is {g[0]} (answer {i})"
        elif kind == 7:
            pred = f"{g[0]}, i think. {long_tail}"
        elif kind == 8:
            pred = "This question is invalid."
        elif kind == 9:
            pred = f"candidate {i}"
        elif kind == 10:
            pred = ""
        else:
            pred = f"{rng.choice(['perhaps', 'surely', 'it is'])} {rng.choice([a for gs in golds for a in gs])} {i}"
        out.append((q, g, pred))
    return out


@pytest.mark.anyio
async def test_crag_scorer_matches_official(monkeypatch: pytest.MonkeyPatch) -> None:
    official = _official()
    assert OFFICIAL is not None

    def script(request: Any, index: int) -> str:
        reply = _reply(*_key(request.messages[1].text))
        if reply is None:
            raise BackendError("scripted judge failure", retryable=False)
        return reply

    roles = Roles(Model("mock:echo"), judge=Model(MockBackend(script), retry=RetryPolicy(max_retries=0)))
    task = CRAG({"tokenizer": str(Path(OFFICIAL) / "tokenizer")})
    cases = _crafted()
    assert len(cases) >= 500
    labels: dict[str, int] = {}
    for q, golds, pred in cases:
        res = official.evaluate_predictions([q], [_GroundTruths(golds)], [pred], "gpt-4-chat-scripted")
        off = "correct" if res["n_correct"] else ("missing" if res["n_miss"] else "hallucination")
        item, p = task.item_from_record({"query": q, "answer": golds[0], "alt_ans": golds[1:], "prediction": pred},
                                        "crafted")
        ours = await task.ascore(item, p, roles)
        assert ours.details["label"] == off, (q, golds, pred, ours.details)
        labels[off] = labels.get(off, 0) + 1
    print("crag parity:", len(cases), "predictions, labels", labels)
    assert min(labels.values()) >= 50
