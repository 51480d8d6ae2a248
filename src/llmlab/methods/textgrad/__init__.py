"""TextGrad: automatic "differentiation" via text (Yuksekgonul et al., arXiv 2406.07496; Nature 2025).

Implements the paper's framework (§2: variables, textual gradients, backpropagation through LLM calls and
string functions, textual gradient descent) and its three protocols:

1. solution optimization at test time (§3.2; :class:`~.method.TextGrad`, ``llmlab eval ... --method textgrad``);
2. prompt optimization (§3.3; :mod:`.prompt_optimization`, ``llmlab textgrad optimize-prompt``);
3. code optimization on LeetCode-Hard (§3.1; :mod:`.code_optimization`, ``llmlab textgrad optimize-code``).

The public surface mirrors the official package (zou-group/textgrad 0.1.8), so its README examples run with
``from llmlab.methods import textgrad as tg``: ``tg.Variable``, ``tg.BlackboxLLM``, ``tg.TextLoss``, ``tg.TGD``,
``tg.sum``, ``loss.backward(engine)``, ``optimizer.step()``, ``optimizer.zero_grad()``. Engines are llmlab
Models or spec strings. Inside async code use ``await loss.abackward()``, ``await optimizer.astep()``,
``await model.acall(x)``, ``await op.aforward(...)``.

Deviations from the official code, each on purpose (details in the submodules' docstrings):

- No global engine singleton: the backward engine is a context variable (``with tg.backward_engine(m):``;
  ``tg.set_backward_engine`` sets it for the current context). Passing an engine explicitly always wins
  (the official code raises when both are set).
- Backward runs every ready node at once (siblings, batch items, a node's per-input calls); gradients are
  kept in a deterministic order, so the result equals the serial schedule's (:mod:`.variable`).
- ``tg.sum`` passes feedback to each input once (the official backward adds it twice) and a sum with no
  feedback passes nothing; ``Aggregate`` reaches every input (:mod:`.functions`).
- A missing ``<IMPROVED_VARIABLE>`` tag is retried, then the old value is kept and the failure recorded (no
  ``IndexError``); ``gradient_memory`` reaches the prompt; momentum works (:mod:`.optimizer`).
- Requests carry their sampling parameters and a sample index, so an opt-in cache never collapses samples
  (official #107); no call has a hidden default system prompt (:mod:`.engine`).
- The prompt wording is ours with the official structure and tags (:mod:`.prompts`); the exact official
  wording can be supplied as a :class:`TextGradPrompts` (``prompts_file`` in configs).
- Errors are one line (:class:`~llmlab.core.errors.ConfigError`): a Variable without a role description,
  the requires_grad invariant, a cycle, ``backward()`` on a graph with nothing to update.
- Not implemented: multimodal ops (``MultimodalLLMCall``, ``ImageQALoss``) and the guidance optimizer.

Example:
    >>> from llmlab.backends.mock import MockBackend
    >>> from llmlab.backends.model import Model
    >>> from llmlab.methods import textgrad as tg
    >>> engine = Model(MockBackend(rules=[("IMPROVED_VARIABLE", "<IMPROVED_VARIABLE>Paris.</IMPROVED_VARIABLE>")],
    ...                            default="Too vague."))
    >>> with tg.backward_engine(engine):
    ...     answer = tg.Variable("A city in France.", role_description="answer to the question")
    ...     loss = tg.TextLoss("Is the answer precise?")(answer)
    ...     loss.backward()
    ...     tg.TGD(parameters=[answer]).step()
    >>> answer.value
    'Paris.'
"""

from __future__ import annotations

from llmlab.methods.textgrad import autograd
from llmlab.methods.textgrad.engine import (
    CallEntry,
    CallLog,
    Engine,
    as_engine,
    backward_engine,
    call_log,
    current_backward_engine,
    get_engine,
    set_backward_engine,
)
from llmlab.methods.textgrad.functions import (
    Aggregate,
    FormattedLLMCall,
    Function,
    LLMCall,
    StringBasedFunction,
    Sum,
    sum,
)
from llmlab.methods.textgrad.loss import (
    Module,
    MultiChoiceTestTime,
    MultiFieldEvaluation,
    MultiFieldTokenParsedEvaluation,
    TextLoss,
    between_tags,
)
from llmlab.methods.textgrad.model import BlackboxLLM
from llmlab.methods.textgrad.optimizer import (
    TGD,
    Optimizer,
    TagFailure,
    TextualGradientDescent,
    TextualGradientDescentwithMomentum,
    TGDMomentum,
)
from llmlab.methods.textgrad.prompts import DEFAULT_PROMPTS, TextGradPrompts
from llmlab.methods.textgrad.variable import Variable

__all__ = [
    "DEFAULT_PROMPTS",
    "TGD",
    "Aggregate",
    "BlackboxLLM",
    "CallEntry",
    "CallLog",
    "Engine",
    "FormattedLLMCall",
    "Function",
    "LLMCall",
    "Module",
    "MultiChoiceTestTime",
    "MultiFieldEvaluation",
    "MultiFieldTokenParsedEvaluation",
    "Optimizer",
    "StringBasedFunction",
    "Sum",
    "TGDMomentum",
    "TagFailure",
    "TextGradPrompts",
    "TextLoss",
    "TextualGradientDescent",
    "TextualGradientDescentwithMomentum",
    "Variable",
    "as_engine",
    "autograd",
    "backward_engine",
    "between_tags",
    "call_log",
    "current_backward_engine",
    "get_engine",
    "set_backward_engine",
    "sum",
]
