"""TextGrad prompt templates: our wording, the official structure and tag vocabulary.

Every template here has the same parts, in the same order, and the same XML-like tags as its official
counterpart in zou-group/textgrad 0.1.8 (``autograd/llm_backward_prompts.py``, ``autograd/string_based_ops.py``,
``autograd/reduce_prompts.py``, ``optimizer/optimizer_prompts.py``, ``loss.py``); the sentences are ours.
The tags are what the backward and optimizer engines are told to read, so they are facts that carry over:
``<ROLE>``, ``<LM_SYSTEM_PROMPT>``, ``<LM_INPUT>``, ``<LM_OUTPUT>``, ``<OBJECTIVE_FUNCTION>``, ``<VARIABLE>``,
``<INPUTS_TO_FUNCTION>``, ``<OUTPUT_OF_FUNCTION>``, ``<FEEDBACK>``, ``<CONVERSATION>``, ``<CONTEXT>``,
``<CONSTRAINTS>``, ``<EXAMPLES>``, ``<PAST_ITERATIONS>``, ``<FEEDBACK-i>`` and ``<IMPROVED_VARIABLE>``.

:class:`TextGradPrompts` bundles them, so the exact official wording (or any other) can be supplied as config
(:meth:`TextGradPrompts.from_file` reads a YAML/JSON mapping of field name to template). Placeholders are
``str.format`` fields; a template supplied from a file must use the same field names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError

# -- roles (defaults the official package uses for unnamed variables) -------------------------------------

SYSTEM_PROMPT_DEFAULT_ROLE = (
    "system prompt to the language model that sets its behaviour and strategies, reused across queries"
)
VARIABLE_INPUT_DEFAULT_ROLE = "query to the language model"
VARIABLE_OUTPUT_DEFAULT_ROLE = "response from the language model"

# -- backward (gradient) engine ----------------------------------------------------------------------------

GLOSSARY_BACKWARD = """
### The tags you will see:
# - <LM_SYSTEM_PROMPT>: the system prompt the language model was given.
# - <LM_INPUT>: what the language model was asked.
# - <LM_OUTPUT>: what the language model answered.
# - <OBJECTIVE_FUNCTION>: what the optimization is trying to achieve.
# - <VARIABLE>: the span of text that is the variable.
# - <ROLE>: what the variable is for (its role description)."""

BACKWARD_SYSTEM_PROMPT = (
    "You are the feedback (gradient) engine of an optimization system that improves a piece of text, the "
    "variable. Your one job is to give intelligent, creative and constructive criticism of a variable with "
    "respect to an objective given in <OBJECTIVE_FUNCTION> </OBJECTIVE_FUNCTION> tags. "
    "A variable may be a solution to a problem, a prompt for a language model, code, or any other text. "
    "Keep the role description of the variable and the context it is used in in mind, and assume it will be "
    "used in a similar context again. "
    "Give only strategies, explanations and ways to change the variable. DO NOT write a new version of the "
    "variable: that is the optimizer's job. You only send feedback and criticism (you compute 'gradients'). "
    "Feedback may read like 'Language models tend to X here, so...', 'Adding X would fix this error because...', "
    "'Dropping X would help the objective because...', 'Replacing X with Y corrects the mistake...', always tied "
    "to the downstream objective.\n"
    "If the variable already does its job well (the objective is met, the evaluation finds the response "
    "correct), give no feedback.\n"
    f"{GLOSSARY_BACKWARD}"
)

CONVERSATION_TEMPLATE = (
    "<LM_SYSTEM_PROMPT> {system_prompt} </LM_SYSTEM_PROMPT>\n\n"
    "<LM_INPUT> {prompt} </LM_INPUT>\n\n"
    "<LM_OUTPUT> {response_value} </LM_OUTPUT>\n\n"
)

# The output already has feedback on it: apply the chain rule.
CONVERSATION_START_CHAIN = (
    "You will give feedback on a variable whose role is <ROLE> {variable_desc} </ROLE>. "
    "Below is a conversation with a language model (LM):\n\n"
    "{conversation}"
)
OBJECTIVE_CHAIN = (
    "This conversation is one part of a larger system. The <LM_OUTPUT> was then used as {response_desc}.\n\n"
    "<OBJECTIVE_FUNCTION>Give feedback on the variable that addresses this feedback on the LM_OUTPUT: "
    "{response_gradient} </OBJECTIVE_FUNCTION>\n\n"
)

# The output is itself the evaluation (a loss): no feedback on it yet.
CONVERSATION_START_BASE = (
    "You will give feedback on a variable whose role is <ROLE> {variable_desc} </ROLE>. "
    "Below is an evaluation of the variable by a language model:\n\n"
    "{conversation}"
)
OBJECTIVE_BASE = (
    "<OBJECTIVE_FUNCTION>Give feedback and criticism of the variable in light of the evaluation above. "
    "The only goal is to improve that evaluation's metric, nothing else. </OBJECTIVE_FUNCTION>\n\n"
)

EVALUATE_VARIABLE = (
    "We want feedback on the {variable_desc} in this conversation, on this span of text in particular:\n\n"
    "<VARIABLE> {variable_short} </VARIABLE>\n\n"
    "Using the history above, describe how the {variable_desc} could be changed to improve the "
    "<OBJECTIVE_FUNCTION>. Be very creative, critical and intelligent.\n\n"
)

# A Python function as a node (exact match, a unit-test runner).
STRING_FN_CONVERSATION_TEMPLATE = (
    "Function purpose: {function_purpose}\n\n"
    "<INPUTS_TO_FUNCTION> {inputs_string} </INPUTS_TO_FUNCTION>\n\n"
    "<OUTPUT_OF_FUNCTION> {response_value} </OUTPUT_OF_FUNCTION>\n\n"
)
STRING_FN_START_CHAIN = (
    "You will give feedback on a variable whose role is <ROLE> {variable_desc} </ROLE>. "
    "Below is a run of a string-based function, with its inputs and output:\n\n"
    "{conversation}"
)
STRING_FN_START_BASE = (
    "You will give feedback on a variable whose role is <ROLE> {variable_desc} </ROLE>. "
    "Below is an evaluation of the variable by a string-based function:\n\n"
    "{conversation}"
)
STRING_FN_OBJECTIVE_CHAIN = (
    "This conversation is one part of a larger system. The <OUTPUT_OF_FUNCTION> was then used as "
    "{response_desc}.\n\n"
    "<OBJECTIVE_FUNCTION>Give feedback on the variable that addresses this feedback on the "
    "OUTPUT_OF_FUNCTION: {response_gradient} </OBJECTIVE_FUNCTION>\n\n"
)
STRING_FN_INPUT = "**{name}(role: {role})**: {value}"

# -- sum / aggregate ---------------------------------------------------------------------------------------

SUM_FEEDBACK = "This is the combined feedback for this {variable_desc} and the variables combined with it: {feedback}."

REDUCE_MEAN_SYSTEM_PROMPT = (
    "You are part of an optimization system that improves a piece of text (the variable). Your one job is to "
    "aggregate the feedback from several sources and summarise it critically. A variable may be a solution, a "
    "prompt for a language model, code, or any other text. The feedback from each source comes in "
    "<FEEDBACK> </FEEDBACK> tags. Reply with the core of the feedback only. Do not suggest a new version of the "
    "variable: only summarise the feedback, critically."
)
REDUCE_ITEM = "<FEEDBACK>{feedback}</FEEDBACK>"

# -- TGD optimizer ----------------------------------------------------------------------------------------

GLOSSARY_OPTIMIZER = """
### The tags you will see:
# - <LM_SYSTEM_PROMPT>: the system prompt the language model was given.
# - <LM_INPUT>: what the language model was asked.
# - <LM_OUTPUT>: what the language model answered.
# - <FEEDBACK>: feedback on the variable.
# - <CONVERSATION>: the conversation the feedback is about.
# - <FOCUS>: what the optimization focuses on.
# - <ROLE>: what the variable is for (its role description)."""

OPTIMIZER_SYSTEM_PROMPT = (
    "You are part of an optimization system that improves a piece of text (the variable). "
    "You will be asked to improve, creatively and critically, prompts, solutions to problems, code or any other "
    "text. You get feedback and use it to improve the variable. The feedback may be noisy: work out what "
    "matters and what is right. Keep the role description of the variable and its context in mind. "
    "This matters most: you MUST reply with the improved variable between {new_variable_start_tag} "
    "{{improved variable}} {new_variable_end_tag} tags. The text between the tags replaces the variable as is.\n\n"
    f"{GLOSSARY_OPTIMIZER}"
)

# One gradient with the conversation it came from.
GRADIENT_TEMPLATE = (
    "Here is a conversation:\n\n<CONVERSATION>{context}</CONVERSATION>\n\n"
    "This conversation may be part of a larger system. Its output is used as {response_desc}\n\n"
    "Here is the feedback on the {variable_desc} in this conversation:\n\n<FEEDBACK>{feedback}</FEEDBACK>\n\n"
)

TGD_PREFIX = (
    "The variable you will improve has this role: <ROLE>{variable_desc}</ROLE>.\n\n"
    "The variable is the text in this span: <VARIABLE> {variable_short} </VARIABLE>\n\n"
    "Here is the context and the feedback we got for the variable:\n\n"
    "<CONTEXT>{variable_grad}</CONTEXT>\n\n"
    "Improve the variable ({variable_desc}) using the feedback in the <FEEDBACK> tags.\n"
)
GRADIENT_MEMORY_ADDITION = (
    "Here is the feedback the variable received in earlier steps:\n\n"
    "{gradient_memory}\n\n"
    "Take it into account together with the new feedback.\n\n"
)
GRADIENT_MEMORY_ITEM = "<FEEDBACK-{i}> {feedback} </FEEDBACK-{i}>"
MOMENTUM_ADDITION = (
    "Here are earlier versions of this variable:\n\n"
    "<PAST_ITERATIONS>{past_values}</PAST_ITERATIONS>\n\n"
    "If the feedback is similar across steps, the changes made so far were not enough: make bigger changes to "
    "the variable.\n\n"
)
MOMENTUM_ITEM = "\n{variable_desc} at step {i}: {value}.\n"
CONSTRAINT_ADDITION = (
    "You must respect these constraints:\n\n"
    "<CONSTRAINTS>{constraint_text}</CONSTRAINTS>\n\n"
)
IN_CONTEXT_EXAMPLES_ADDITION = (
    "Base your changes to the {variable_desc} on these examples:\n\n"
    "<EXAMPLES>{in_context_examples}</EXAMPLES>\n\n"
)
TGD_SUFFIX = (
    "Send the improved variable in this format:\n\n"
    "{new_variable_start_tag}{{the improved variable}}{new_variable_end_tag}\n\n"
    "Send ONLY the improved variable between the {new_variable_start_tag} tags, and nothing else."
)

# -- losses ------------------------------------------------------------------------------------------------

MULTI_FIELD_SYSTEM_PROMPT = "You are an evaluation system that compares variables."
MULTI_CHOICE_TEST_TIME_SYSTEM_PROMPT = (
    "You are an intelligent assistant acting as the evaluator inside an optimization system. You will study a "
    "solution to a multiple-choice problem: go through its reasoning and its answer. Do not solve the problem "
    "yourself; only point out possible issues and mistakes in the answer. Be creative, look at it from different "
    "angles, and be very critical."
)
MULTI_CHOICE_TEST_TIME_FORMAT = "{instruction}\nQuestion: {{question}}\nAnswer by the language model: {{prediction}}"
MULTI_CHOICE_EVAL_INSTRUCTION = (
    "Below are a multiple-choice question and an answer. You are an expert scientist. Examine the answer: go "
    "through its reasoning step by step, use what you know, and decide whether it is right or has critical "
    "mistakes."
)


@dataclass(frozen=True)
class TextGradPrompts:
    """Every template TextGrad sends, as one replaceable bundle (defaults: the constants above).

    Example:
        >>> p = TextGradPrompts().with_(backward_system="Give feedback.")
        >>> p.backward_system
        'Give feedback.'
    """

    backward_system: str = BACKWARD_SYSTEM_PROMPT
    conversation: str = CONVERSATION_TEMPLATE
    conversation_start_chain: str = CONVERSATION_START_CHAIN
    objective_chain: str = OBJECTIVE_CHAIN
    conversation_start_base: str = CONVERSATION_START_BASE
    objective_base: str = OBJECTIVE_BASE
    evaluate_variable: str = EVALUATE_VARIABLE
    string_fn_conversation: str = STRING_FN_CONVERSATION_TEMPLATE
    string_fn_start_chain: str = STRING_FN_START_CHAIN
    string_fn_start_base: str = STRING_FN_START_BASE
    string_fn_objective_chain: str = STRING_FN_OBJECTIVE_CHAIN
    string_fn_input: str = STRING_FN_INPUT
    sum_feedback: str = SUM_FEEDBACK
    reduce_system: str = REDUCE_MEAN_SYSTEM_PROMPT
    reduce_item: str = REDUCE_ITEM
    optimizer_system: str = OPTIMIZER_SYSTEM_PROMPT
    gradient: str = GRADIENT_TEMPLATE
    tgd_prefix: str = TGD_PREFIX
    gradient_memory: str = GRADIENT_MEMORY_ADDITION
    gradient_memory_item: str = GRADIENT_MEMORY_ITEM
    momentum: str = MOMENTUM_ADDITION
    momentum_item: str = MOMENTUM_ITEM
    constraints: str = CONSTRAINT_ADDITION
    in_context_examples: str = IN_CONTEXT_EXAMPLES_ADDITION
    tgd_suffix: str = TGD_SUFFIX

    def with_(self, **changes: str) -> TextGradPrompts:
        """A copy with some templates replaced.

        Raises:
            ConfigError: A name is not a template of this bundle.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown TextGrad prompt(s) {unknown}; known: {', '.join(sorted(known))}")
        return replace(self, **changes)

    @staticmethod
    def from_file(path: str | Path) -> TextGradPrompts:
        """Read replacements from a YAML or JSON mapping ``{template name: text}``.

        Raises:
            ConfigError: The file is missing, unreadable, or names an unknown template.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"TextGrad prompts file not found: {p}")
        try:
            import yaml

            data: Any = json.loads(p.read_text()) if p.suffix == ".json" else yaml.safe_load(p.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"TextGrad prompts file {p}: cannot read it ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigError(f"TextGrad prompts file {p}: expected a mapping of template name to text")
        return TextGradPrompts().with_(**{str(k): v for k, v in data.items()})


DEFAULT_PROMPTS = TextGradPrompts()
