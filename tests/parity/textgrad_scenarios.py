"""The graphs the TextGrad parity check builds, written once against textgrad's public API.

This file imports nothing from llmlab: it runs twice, once with ``tg`` = the official package (in its
scratch venv, via ``python textgrad_scenarios.py``) and once with ``tg`` = ``llmlab.methods.textgrad``.
Both sides use the same scripted replies (:func:`reply`), which depend only on the tags of a prompt, never
on its wording, so the two graphs see the same values. Each scenario returns nothing; the engine records
``(kind, system, user)`` for every call.

Run as a script (official side): ``python textgrad_scenarios.py OUT.json`` prints/writes the recorded calls.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from typing import Any

TAG_RE = re.compile(r"<([A-Z_]+)>(.*?)</\1>", re.S)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def first_tag(text: str, tag: str) -> str:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return m.group(1).strip() if m else ""


def canon_role(role: str) -> str:
    """A sum's role lists its inputs' roles; the official code joins a set, so sort them."""
    for prefix in ("a combination of the following variables: ", "a combination of the following: "):
        if role.startswith(prefix):
            return prefix + ", ".join(sorted(role[len(prefix):].rstrip(".").split(", ")))
    return role


def reply(kind: str, system: str | None, user: str) -> str:
    """The same scripted reply on both sides (a function of tag contents and forward inputs only)."""
    role = canon_role(first_tag(user, "ROLE"))
    if kind == "backward":
        seen = first_tag(user, "LM_INPUT") or first_tag(user, "INPUTS_TO_FUNCTION")
        return f"FB[{role}|{digest(first_tag(user, 'VARIABLE'))}|{digest(seen)}]"
    if kind == "optimizer":
        return f"<IMPROVED_VARIABLE>NEW[{role}]</IMPROVED_VARIABLE>"
    return f"OUT[{digest(system or '')}|{digest(user)}]"


def exact_match(prediction: Any, ground_truth_answer: Any) -> int:
    return int(str(prediction.value).strip() == str(ground_truth_answer.value).strip())


def readme(tg: Any, engine: Any) -> None:
    """The README flow: answer a question, TextLoss, backward, one constrained TGD step."""
    llm = tg.BlackboxLLM(engine)
    question = tg.Variable("If 25 shirts dry in 1 hour in the sun, how long do 30 shirts take?",
                           role_description="question to the LLM", requires_grad=False)
    answer = llm(question)
    answer.set_role_description("concise and accurate answer to the question")
    optimizer = tg.TGD(parameters=[answer], engine=engine, constraints=["The last line is 'Answer: X'."])
    loss = tg.TextLoss("Evaluate the answer critically; do not solve it.", engine=engine)(answer)
    loss.backward(engine)
    optimizer.step()


def prompt_step_string(tg: Any, engine: Any) -> None:
    """One prompt-optimization step, batch 3, string-based loss (object counting / GSM8K)."""
    system_prompt = tg.Variable("Answer the question. End with 'Answer: N'.", requires_grad=True,
                                role_description="structured system prompt to a somewhat capable language model")
    model = tg.BlackboxLLM(engine, system_prompt)
    optimizer = tg.TGD(engine=engine, parameters=[system_prompt])
    fn = tg.autograd.StringBasedFunction(exact_match, function_purpose="checks if the prediction is correct")
    losses = []
    for i in range(3):
        x = tg.Variable(f"How many apples are in basket {i}?", requires_grad=False,
                        role_description="query to the language model")
        y = tg.Variable(str(i + 2), requires_grad=False, role_description="correct answer for the query")
        response = model(x)
        losses.append(fn(inputs={"prediction": response, "ground_truth_answer": y}))
    optimizer.zero_grad()
    tg.sum(losses).backward(engine)
    optimizer.step()


def prompt_step_llm(tg: Any, engine: Any) -> None:
    """The same step with an LLM loss (word sorting's judge): official takes the chain prompt with no feedback."""
    system_prompt = tg.Variable("Sort the words.", requires_grad=True,
                                role_description="structured system prompt to a somewhat capable language model")
    model = tg.BlackboxLLM(engine, system_prompt)
    optimizer = tg.TGD(engine=engine, parameters=[system_prompt])
    losses = []
    for i in range(2):
        x = tg.Variable(f"Sort: pear apple fig{i}", requires_grad=False, role_description="query to the language model")
        response = model(x)
        losses.append(tg.TextLoss("Is the list sorted? Say 1 or 0.", engine=engine)(response))
    optimizer.zero_grad()
    tg.sum(losses).backward(engine)
    optimizer.step()


def sum_with_feedback(tg: Any, engine: Any) -> None:
    """Two drafts summed and judged together: each receives the combined feedback (official: twice)."""
    a = tg.Variable("Draft one of the abstract.", role_description="first draft")
    b = tg.Variable("Draft two of the abstract.", role_description="second draft")
    total = tg.sum([a, b])
    loss = tg.TextLoss("Which draft is clearer?", engine=engine)(total)
    loss.backward(engine)
    tg.TGD(parameters=[a, b], engine=engine).step()


SCENARIOS: dict[str, Callable[[Any, Any], None]] = {
    "readme": readme,
    "prompt_step_string": prompt_step_string,
    "prompt_step_llm": prompt_step_llm,
    "sum_with_feedback": sum_with_feedback,
}


def run_official(out_path: str) -> None:
    """Run every scenario on the official package with a recording engine subclassing its EngineLM."""
    import textgrad.autograd
    from textgrad.autograd.llm_backward_prompts import BACKWARD_SYSTEM_PROMPT
    from textgrad.engine import EngineLM

    import textgrad as tg

    calls: list[dict[str, Any]] = []

    class Recording(EngineLM):
        model_string = "recording"

        def generate(self, prompt: str, system_prompt: str | None = None, **kwargs: Any) -> str:
            if system_prompt == BACKWARD_SYSTEM_PROMPT:
                kind = "backward"
            elif system_prompt is not None and "<IMPROVED_VARIABLE> {improved variable}" in system_prompt:
                kind = "optimizer"
            else:
                kind = "forward"
            text = reply(kind, system_prompt, prompt)
            calls.append({"kind": kind, "system": system_prompt, "user": prompt, "reply": text})
            return text

        def __call__(self, prompt: str, **kwargs: Any) -> str:
            return self.generate(prompt, **kwargs)

    out: dict[str, Any] = {"version": tg.__version__}
    for name, scenario in SCENARIOS.items():
        calls.clear()
        scenario(tg, Recording())
        out[name] = list(calls)
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    run_official(sys.argv[1])
