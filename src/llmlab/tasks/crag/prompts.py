r"""CRAG prompt templates: the judge (our wording, the official structure) and the RAG baselines' prompts.

The official judge (``prompts/templates.py``) is a system message = INSTRUCTIONS + "\n" + IN_CONTEXT_EXAMPLES,
sent with temperature 0 and JSON mode, and a user message ``Question: ...\n Ground truth: ...\n
Prediction: ...\n``. Its instructions are ten numbered grading rules (ground truth is always right; an
unsure prediction scores 0; an exact match scores 1; numbers must almost exactly match; self-contradiction
scores 0; not answering scores 0; a concise correct summary scores 1; sets need exactly the same items;
otherwise 0) and ask for a JSON blob with "explanation" and "score". Ours keep the ten rules, the JSON
contract and the user-message layout, in our own words, with our own in-context examples covering the
same cases. The exact official text can be supplied with ``-t judge_prompt_file=FILE`` (a YAML/JSON file
with ``instructions`` and ``examples``).
"""

from __future__ import annotations

JUDGE_INSTRUCTIONS = "\n".join((
    "You are an expert grader. You get a question, its ground-truth answer and a model's "
    'prediction, and you decide whether the prediction matches the ground truth. Follow these steps:',
    '1: Treat the Ground Truth as correct, always.',
    '2: If the Prediction says it is unsure of the answer, "score" is "0"; otherwise go to the next step.',
    '3: If the Prediction matches the Ground Truth exactly, "score" is 1.',
    '4: If the Prediction does not match the Ground Truth exactly, work through the steps below; '
    'the score is probably 0.',
    '5: If the Ground Truth is a number, "score" is 1 only when the Prediction gives a number that '
    'almost exactly equals it.',
    '6: If the Prediction contradicts itself, "score" must be 0.',
    '7: If the Prediction does not answer the question, "score" must be 0.',
    '8: If the Prediction is a concise, correct summary of the Ground Truth, "score" is 1.',
    '9: If the Ground Truth is a set of items, the Prediction must list exactly the same items for '
    '"score" to be 1.',
    '10: In every other case, "score" is 0.',
    '',
    '### Reply with a JSON blob holding an "explanation" field (as short as possible) and a "score" '
    'field equal to 1 or 0.',
))

JUDGE_EXAMPLES = """Grade in the same way as these examples.
Examples:
Question: "which city has more residents, lyon or nice?"
Ground Truth: "lyon"
Prediction: "i cannot tell which of the two is larger."
Output: {"score": 0, "explanation": "The prediction is unsure."}

Question: "which river is longer, x or y?"
Ground Truth: "x"
Prediction: "x is longer. x is 300 km and y is 410 km long."
Output: {"score": 0, "explanation": "The prediction contradicts itself."}

Question: "who wrote pride and prejudice?"
Ground Truth: "jane austen"
Prediction: "jane austen"
Output: {"score": 1, "explanation": "The prediction is exactly the ground truth."}

Question: "who wrote pride and prejudice?"
Ground Truth: "jane austen"
Prediction: "j. austen"
Output: {"score": 1, "explanation": "j. is the initial of jane."}

Question: "did the celtics score more points than the bulls in 2023-12?"
Ground Truth: "no"
Prediction: "the bulls had a strong december in 2022."
Output: {"score": 0, "explanation": "The prediction does not answer the question."}

Question: "how tall is the eiffel tower?"
Ground Truth: "330 m"
Prediction: "it is 1,063 feet (324 m) tall."
Output: {"score": 0, "explanation": "324 m does not match 330 m."}

Question: "what was the closing price of stock z yesterday?"
Ground Truth: "$45.12"
Prediction: "45.1"
Output: {"score": 1, "explanation": "The number matches the ground truth after rounding."}

Question: "what is the population of town q?"
Ground Truth: "1,204,311"
Prediction: "about 1.5 million"
Output: {"score": 0, "explanation": "1.5 M does not match 1.2 M."}

Question: "which planets have rings?"
Ground Truth: "jupiter, saturn, uranus, neptune"
Prediction: "saturn and uranus"
Output: {"score": 0, "explanation": "The prediction misses items of the ground truth."}

Question: "which films are in trilogy t?"
Ground Truth: "t1, t2, t3"
Prediction: "t1, t2, t3 and the spin-off t0"
Output: {"score": 0, "explanation": "The prediction has more items than the ground truth."}

Question: "who scored more career goals, a or b?"
Ground Truth: "a scored more career goals than b, 410 against 380."
Prediction: "a"
Output: {"score": 1, "explanation": "The prediction is a concise, correct summary of the ground truth."}

Question: "how many minutes are 2 hours 5 minutes?"
Ground Truth: "125 minutes"
Prediction: "2 hours 5 minutes are 125 minutes."
Output: {"score": 1, "explanation": "The prediction gives the right number of minutes."}

Question: "how old is person p?"
Ground Truth: "52"
Prediction: "p was born on may 3, 1972."
Output: {"score": 0, "explanation": "The prediction does not state the age."}

Question: "when was person p born?"
Ground Truth: "1990-03-02."
Prediction: "02/04/1990"
Output: {"score": 0, "explanation": "The date does not match the ground truth."}
"""

JUDGE_USER = "Question: {query}\n Ground truth: {ground_truth}\n Prediction: {prediction}\n"

# -- the task's own prompt: the paper's LLM-only baseline (the RAG baselines are methods, methods/crag_rag.py) --

SYSTEM_LLM_ONLY = (
    "You are given a question and the time it was asked. Answer briefly, in as few words as you can. "
    "If you are not sure of the answer, reply 'I don't know'. If the question rests on a false premise, "
    "reply 'invalid question'."
)
USER_LLM_ONLY = "Current Time: {query_time}\nQuestion: {query}\n"
