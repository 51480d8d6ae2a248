"""A scripted model for the prompting techniques' tests: replies keyed on each technique's prompt."""

from __future__ import annotations

import anyio

from llmlab.backends.base import GenerateRequest, GenerateResponse
from llmlab.backends.mock import MockBackend, last_user_text

QUESTION = "What is (2+3)*4?"
EXEMPLARS = [
    {"input": "What is 1+1?", "output": "2", "rationale": "1 plus 1 is 2.", "wrong_rationale": "1 plus 1 is 11.",
     "wrong_output": "11"},
    {"input": "What is 2*3?", "output": "6", "rationale": "2 times 3 is 6.", "wrong_rationale": "2 times 3 is 5.",
     "wrong_output": "5"},
    {"input": "What is (1+1)*5?", "output": "10", "rationale": "1+1 is 2, times 5 is 10.",
     "wrong_rationale": "1+1*5 is 6.", "wrong_output": "6"},
]

RULES = [
    ("Decompose the question into a program of sub-tasks",
     "1. qa: What is 2+3?\n2. code: multiply #1 by 4"),
    ("Answer briefly: What is 2+3?", "5"),
    ("Write a Python program that computes the answer to the question below and prints only the final answer "
     "on the last line. Reply with the program in one ```python code block.\n\nQuestion: multiply 5 by 4",
     "```python\nprint(5*4)\n```"),
    ("Break the following problem into simpler subquestions", "1. What is 2+3?\n2. What is (2+3)*4?"),
    ("Give only the skeleton", "1. add first\n2. then multiply\n3. state result"),
    ("Write a Python program", "```python\nprint((2+3)*4)\n```"),
    ("Select the most consistent response", "The most consistent response is Response 2"),
    ("Write verification questions", "1. Is 2+3 equal to 5?\n2. Is 5*4 equal to 20?"),
    ("Answer this question briefly", "Yes."),
    ("Write the final answer, corrected", "Final: the answer is 20."),
    ("reasoning backwards", None),
    ("Is the proposed answer correct?", "(A) True"),
    ("extract the part that is unbiased", "Question/Query: What is (2+3)*4?"),
    ("step back", "Principle: brackets first."),
    ("Expand ONLY point", "This point gives 20."),
]


def reply(request: GenerateRequest) -> str:
    text = last_user_text(request)
    if "Give concrete, actionable feedback" in text:
        return "STOP" if "improved" in text else "Show the multiplication."
    if "Write an improved answer" in text:
        return "An improved answer: 5*4 = 20, so the answer is 20."
    for key, out in RULES:
        if key in text:
            if out is None:
                return "Verdict: correct" if "answer: 20" in text else "Verdict: incorrect"
            return out
    # Any answering call: sample 1 (of each group of 3) says 21, the others 20.
    return "The answer is 21." if request.sample_index % 3 == 1 else "The answer is 20."


class Scripted(MockBackend):
    """The rules above with latency, recording the most calls in flight at once."""

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(lambda req, i: reply(req), latency=0.0)
        self.delay = latency
        self.in_flight = 0
        self.max_in_flight = 0

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            return await super().generate(request)
        finally:
            self.in_flight -= 1
