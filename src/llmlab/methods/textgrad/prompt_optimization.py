"""Protocol 2, prompt optimization (paper §3.3; official ``evaluation/prompt_optimization.py``).

The system prompt of the ``task`` model is a Variable. Each step takes a batch of training questions,
answers them, scores each answer with the loss (a string function for object counting and GSM8K, an LLM
judge for word sorting, as the official ``load_task``), sums the losses with ``tg.sum``, backpropagates with
the ``optimizer`` model and updates the prompt with TGD. The official schedule: batch 3, 3 epochs of 4 steps
(``if steps == 3: break``) = 12 updates, with validation-revert (keep the new prompt only if validation
accuracy does not drop) and test accuracy after every step.

Splits as official: BBH 50/100/100 in file order; GSM8K train[100:] / train[:100] / test[:300].

Unlike the official loop, the B answers and losses of a batch run at once, the backward runs ready nodes at
once (:mod:`.variable`), and the evaluations run ``concurrency`` items at once. Reported accuracies come from
the task's scorer (exact match), also for word sorting, whose training loss is the LLM judge; the official
script reports the judge's verdicts. Batches are drawn from our own seeded shuffle, so the batch order is not
the official one. For GSM8K the string loss and the accuracy use the GSM8K task's numeric scorer (official:
the BBH integer parser, which reads "3.5" as 3).
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Item, Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.textgrad import functions as F
from llmlab.methods.textgrad.engine import Engine, call_log
from llmlab.methods.textgrad.loss import MultiFieldTokenParsedEvaluation
from llmlab.methods.textgrad.model import BlackboxLLM
from llmlab.methods.textgrad.optimizer import TGD
from llmlab.methods.textgrad.prompts import TextGradPrompts
from llmlab.methods.textgrad.variable import Variable

PROMPT_ROLE = (
    "structured system prompt to a somewhat capable language model that specifies the behavior and strategies "
    "for the QA task"
)
GSM8K_PROMPT = (
    "You will answer a mathematical reasoning question. Think step by step. The last line of your response "
    "should be of the following format: 'Answer: $VALUE' where VALUE is a numerical value."
)
STRING_FN_PURPOSE = "The runtime of string-based function that checks if the prediction is correct."
JUDGE_INSTRUCTION = (
    "Below are a question from a question-answering task, the ground truth answer, and reasoning ending in a "
    "final prediction. Is the final prediction correct, i.e. the same as the ground truth answer? Say only 1 "
    "(yes) or 0 (no). Return your verdict within <ACCURACY> </ACCURACY> tags, e.g. <ACCURACY> 0 </ACCURACY> or "
    "<ACCURACY> 1 </ACCURACY>"
)
TASKS = ("bbh_object_counting", "bbh_word_sorting", "gsm8k")


class PromptOptimizationConfig(LabConfig):
    """Options of prompt optimization (defaults: the paper's schedule).

    Args:
        task: ``bbh_object_counting``, ``bbh_word_sorting`` or ``gsm8k``.
        batch_size: Training questions per step.
        epochs: Passes over the training split.
        steps_per_epoch: Updates per epoch (official: 4).
        validation_revert: Keep a new prompt only if validation accuracy does not drop.
        test_every_step: Evaluate the test split after every step (the learning curve).
        loss: ``string`` (the task's scorer as a StringBasedFunction), ``llm`` (a judge) or ``auto`` (official).
        initial_prompt: The starting system prompt (default: the task's official one).
        role_description: Role of the prompt Variable.
        seed: Shuffle seed.
        temperature: Sampling temperature of every call.
        max_tokens: Completion budget per call.
        concurrency: Items evaluated at once.
        limit_val: Use only the first N validation items (None: all).
        limit_test: Use only the first N test items (None: all).
        gradient_memory: TGD's feedback memory.
        prompts_file: YAML/JSON replacing prompt templates.
        data_dir: Folder holding the datasets.
    """

    task: str = "bbh_object_counting"
    batch_size: int = Field(default=3, ge=1)
    epochs: int = Field(default=3, ge=1)
    steps_per_epoch: int = Field(default=4, ge=1)
    validation_revert: bool = True
    test_every_step: bool = True
    loss: Literal["auto", "string", "llm"] = "auto"
    initial_prompt: str | None = None
    role_description: str = PROMPT_ROLE
    seed: int = 42
    temperature: float = Field(default=0.0, ge=0.0)
    max_tokens: int | None = Field(default=2000, ge=1)
    concurrency: int = Field(default=32, ge=1)
    limit_val: int | None = Field(default=None, ge=1)
    limit_test: int | None = Field(default=None, ge=1)
    gradient_memory: int = Field(default=0, ge=0)
    prompts_file: str | None = None
    data_dir: str | None = None


@dataclass
class Split:
    """The three splits, how to phrase a question, the scorer and the starting prompt of one task."""

    train: list[Item]
    val: list[Item]
    test: list[Item]
    question: Callable[[Item], str]
    correct: Callable[[Item, str], bool]
    initial_prompt: str
    loss: Literal["string", "llm"]


def load_splits(task: str, data_dir: str | None = None) -> Split:
    """The official splits of ``task``.

    Raises:
        ConfigError: The task is not one of :data:`TASKS`.
    """
    from llmlab.core.registry import TASKS as REGISTRY

    if task not in TASKS:
        raise ConfigError(f"prompt optimization supports tasks {', '.join(TASKS)}; got '{task}'")
    cls = REGISTRY.get(task)
    base: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
    if task == "gsm8k":
        train_all = list(cls({**base, "split": "train"}).items())
        scorer = cls(base)
        return Split(train_all[100:], train_all[:100], list(cls({**base, "split": "test"}).items())[:300],
                     lambda it: f"Question: {it.input}", lambda it, a: bool(scorer.score(it, a).correct),
                     GSM8K_PROMPT, "string")
    tasks = {s: cls({**base, "split": s}) for s in ("train", "val", "test")}
    scorer = tasks["test"]
    return Split(list(tasks["train"].items()), list(tasks["val"].items()), list(tasks["test"].items()),
                 lambda it: str(it.input), lambda it, a: bool(scorer.score(it, a).correct),
                 scorer.system_prompt, "llm" if task == "bbh_word_sorting" else "string")


@dataclass
class PromptOptimizationResult:
    """What a run produced: the prompts, the accuracies per step, the failures, the call counts."""

    prompt: str
    prompts: list[str] = field(default_factory=list)
    test_acc: list[float | None] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    reverted: list[bool] = field(default_factory=list)
    tag_failures: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class PromptOptimizer:
    """Run the protocol on the models of ``roles`` (``task`` is optimised, ``optimizer`` gives feedback)."""

    ROLES = frozenset({"task", "optimizer"})

    def __init__(self, config: PromptOptimizationConfig, roles: Roles, splits: Split | None = None) -> None:
        roles.check_known(self.ROLES, "textgrad optimize-prompt")
        self.cfg = config
        self.splits = splits if splits is not None else load_splits(config.task, config.data_dir)
        self.task_engine = Engine(roles["task"], temperature=config.temperature, max_tokens=config.max_tokens)
        self.opt_engine = Engine(roles["optimizer"], temperature=config.temperature, max_tokens=config.max_tokens)
        self.prompts = TextGradPrompts.from_file(config.prompts_file) if config.prompts_file is not None else None
        start = config.initial_prompt if config.initial_prompt is not None else self.splits.initial_prompt
        self.system_prompt = Variable(start, requires_grad=True, role_description=config.role_description)
        self.model = BlackboxLLM(self.task_engine, self.system_prompt, self.prompts)
        self.optimizer = TGD([self.system_prompt], engine=self.opt_engine, prompts=self.prompts,
                             gradient_memory=config.gradient_memory)
        kind = config.loss if config.loss != "auto" else self.splits.loss
        self.loss_kind = kind
        if kind == "string":
            correct = self.splits.correct
            items: dict[int, Item] = {}
            self._items = items

            def equal(prediction: Variable, ground_truth_answer: Variable) -> int:
                item = items[id(ground_truth_answer)]
                return int(correct(item, prediction.value))

            self.string_loss = F.StringBasedFunction(equal, STRING_FN_PURPOSE, self.prompts)
        else:
            instruction = Variable(JUDGE_INSTRUCTION, requires_grad=False,
                                   role_description="evaluation instruction for the task")
            self.judge = MultiFieldTokenParsedEvaluation(
                instruction, ["Question for the task", "Ground truth answer",
                              "Reasoning and prediction from the language model"],
                engine=self.opt_engine, prompts=self.prompts)

    async def loss(self, item: Item) -> Variable:
        """Answer ``item`` with the current prompt and score it: the loss Variable."""
        x = Variable(self.splits.question(item), requires_grad=False, role_description="query to the language model")
        y = Variable(str(item.target), requires_grad=False, role_description="correct answer for the query")
        response = await self.model.acall(x)
        if self.loss_kind == "string":
            self._items[id(y)] = item
            return await self.string_loss.aforward({"prediction": response, "ground_truth_answer": y})
        return await self.judge.acall([x, y, response])

    async def accuracy(self, items: list[Item]) -> float | None:
        """Accuracy of the current prompt on ``items`` (the task's scorer), ``concurrency`` at a time."""
        if not items:
            return None
        prompt = self.system_prompt.value

        def one(item: Item) -> Callable[[], Awaitable[bool]]:
            async def run() -> bool:
                text = await self.task_engine.agenerate(self.splits.question(item), prompt, kind="eval")
                return self.splits.correct(item, text)
            return run

        got = await gather([one(it) for it in items], limit=self.cfg.concurrency)
        return sum(got) / len(got)

    async def step(self, batch: list[Item]) -> None:
        """One update: B answers and losses at once, ``tg.sum``, backward, one TGD call."""
        self.optimizer.zero_grad()
        losses = await gather([lambda it=it: self.loss(it) for it in batch])  # type: ignore[misc]
        total = F.sum(losses)
        await total.abackward(self.opt_engine)
        await self.optimizer.astep()

    async def run(self, progress: Callable[[str], None] | None = None) -> PromptOptimizationResult:
        """The whole schedule; returns the final prompt and the learning curve."""
        cfg, sp = self.cfg, self.splits
        val = sp.val[: cfg.limit_val] if cfg.limit_val is not None else sp.val
        test = sp.test[: cfg.limit_test] if cfg.limit_test is not None else sp.test
        say = progress if progress is not None else (lambda _msg: None)
        rng = random.Random(cfg.seed)
        res = PromptOptimizationResult(prompt=self.system_prompt.value)
        with call_log() as log:
            res.prompts.append(self.system_prompt.value)
            res.val_acc.append(await self.accuracy(val) if cfg.validation_revert else None)
            res.test_acc.append(await self.accuracy(test))
            res.reverted.append(False)
            say(f"step 0: val {res.val_acc[-1]} test {res.test_acc[-1]}")
            for epoch in range(cfg.epochs):
                order = list(sp.train)
                rng.shuffle(order)
                batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
                for step, batch in enumerate(batches[: cfg.steps_per_epoch]):
                    previous = self.system_prompt.value
                    await self.step(batch)
                    reverted = False
                    if cfg.validation_revert:
                        acc = await self.accuracy(val)
                        last = res.val_acc[-1]
                        if acc is not None and last is not None and acc < last:
                            self.system_prompt.set_value(previous)
                            acc, reverted = last, True
                        res.val_acc.append(acc)
                    else:
                        res.val_acc.append(None)
                    res.reverted.append(reverted)
                    res.test_acc.append(await self.accuracy(test) if cfg.test_every_step else None)
                    res.prompts.append(self.system_prompt.value)
                    say(f"epoch {epoch} step {step}: val {res.val_acc[-1]} test {res.test_acc[-1]}"
                        + (" (reverted)" if reverted else ""))
            if not cfg.test_every_step:
                res.test_acc[-1] = await self.accuracy(test)
        res.prompt = self.system_prompt.value
        res.tag_failures = len(self.optimizer.failures)
        res.calls = {k: log.count(k) for k in sorted(set(log.kinds()))}
        return res


def write_outputs(result: PromptOptimizationResult, out: Path, task: str) -> list[Path]:
    """Write ``prompt.txt``, ``results.json`` and (with matplotlib) ``learning_curve.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "prompt.txt", out / "results.json"]
    written[0].write_text(result.prompt + "\n")
    written[1].write_text(json.dumps(result.to_json(), indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = list(range(len(result.test_acc)))
    for name, ys in (("test", result.test_acc), ("validation", result.val_acc)):
        pts = [(s, y) for s, y in zip(steps, ys, strict=True) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    ax.set_xlabel("TGD step")
    ax.set_ylabel("accuracy")
    ax.set_title(f"TextGrad prompt optimization: {task}")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    png = out / "learning_curve.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    written.append(png)
    return written
