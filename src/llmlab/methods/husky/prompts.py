r"""Husky's prompts: the official structure and tool vocabulary, in our own wording and with our own examples.

Each template has the official layout (agent-husky/Husky-v1 ``husky/prompts/*.py``): an instruction, rules
as ``-`` bullets, ``---``, then the same field labels in the same order (``Question:``, ``Solution
history:``, ``Current step:`` ...) ending with the same cue (``Next step or final answer: ``, ``Code:``,
``Solution: ``, ``Search query: ``, ``Output: ``, ``Rewrite: ``, ``Answer: ``). Official templates use ``%s``;
ours use named ``str.format`` fields. ``tests/parity/test_husky_official.py`` checks the structure against an
official checkout.

Byte-level comparison with the official templates (``tests/parity/test_husky_official.py``, run against
commit ``1d5dca1``): for all seven templates the query part after the last ``---`` is byte-identical (field
labels, their order, the cue and its trailing space), the instruction has the same number of ``-`` rules, the
few-shot blocks have the official field labels, and the code prefix equals the official one. The differences,
all deliberate:

- The instruction and bullet sentences are paraphrased (same meaning, same tool names in brackets, same
  order of bullets: math, code, search, match_info, commonsense, finish).
- The few-shot examples of the commonsense reasoner (official: 8) and of the code / search output writers
  (official: 4 each) are our own: 6, 3 and 3 examples, same fields, separated by ``---``. So the official
  arithmetic typo in the reasoner's examples ("25/1000 * 28 = 7") is not carried over.
- No Tulu (``<|user|>``) or Mistral (``[INST]``) wrappers: we send each prompt as one chat user message and
  leave the chat format to the backend's template.
- The code prompt's import list is the official execution prefix (which also imports ``simplify``; the
  official prompt's list omits it).
"""

from __future__ import annotations

# The tools the action generator may choose, in the official order of the action prompt's bullets.
TOOLS = ("math", "code", "search", "match_info", "commonsense", "finish")

# Imported before every program the code expert writes (the official ``code_prefix`` list).
CODE_PREFIX = """import math
import numpy as np
import sympy
from datetime import datetime
from math import comb, gcd, lcm
from scipy.optimize import minimize
from sympy import symbols, Eq, solve, expand, factor, simplify, Matrix
from sympy.solvers.inequalities import solve_univariate_inequality
from sympy.core.relational import LessThan
"""

ACTION_PROMPT = """You are given a question and a solution history: the steps taken so far to solve the question, \
each with its output. Decide whether the solution history already solves the question. If it does not, pick a \
tool (one of [math], [code], [search], [match_info] or [commonsense]) and write the next step that must be \
answered to solve the question; never write a step that is already in the solution history. If the question is \
already solved, return the [finish] tool followed by the final answer to the question, based on the solution \
history.
- [math] is for: 1) solving math problems, writing or rearranging equations, abstract reasoning such as a \
case-by-case analysis, or identifying the conditions stated in the question.
- [code] is for: 1) computing with large numbers (100 or more), fractions or decimals. 2) counting or averaging \
long lists of numbers. 3) date arithmetic, such as the number of days between two dates.
- [search] is for: looking up specific knowledge on the Web about history, sports, culture, geography, medicine, \
science and so on.
- [match_info] is for: looking up information about one specific NFL football game.
- [commonsense] is for: reasoning with commonsense knowledge about a fairly simple step, such as comparing two \
numbers or recalling a widely known fact.
- [finish] is for: saying that the question is solved; it is followed by the answer to the question.
---
Question: {question}
Solution history:
{history}
Next step or final answer: """

CODE_PROMPT = """You are given a question, a solution history (the steps taken so far to solve the question, with \
their outputs) and the current step that must be done to solve the question. Write code that solves the current \
step.
- Write Python.
- Do not write code that answers the whole question directly. Write code that answers the current step.
- In math questions, use the symbol 'pi' and 'Rational' from sympy for $\\pi$ and for fractions, and simplify \
fractions and square roots without turning them into decimals.
- The imports below are already available; import any of them, and any other package you need.
""" + CODE_PREFIX + """---
Question: {question}
Solution history:
{history}
Current step: {step}
Code:
"""

MATH_PROMPT = """You are given the original question, a solution history (the steps taken so far to solve the \
question, with their outputs) and the current step that must be done to solve the question. Answer the current \
step, reasoning step by step.
- Answer the current step (the subquestion), not the original question.
- Do not try to answer the original question directly unless the subquestion asks the same thing.
- Give the answer "ANS" to the subquestion in LaTeX as 'The answer is \\boxed{{ANS}}.', with no units inside \
the box.
---
Question: {question}
Solution history:
{history}
Current step: {step}
Solution: """

QUERY_PROMPT = """You are given a question, a solution history (the steps taken so far to solve the question, with \
their outputs) and the current step that must be done to solve the question. Write one short, informative Google \
Search query that finds the information the current step needs.
---
Question: {question}
Solution history:
{history}
Current step: {step}
Search query: """

REASON_PROMPT = """You are given a question, a solution history (the steps taken so far to solve the question, \
with their outputs) and the current step that must be done to solve the question. Solve the current step with \
logical reasoning, basic arithmetic and commonsense knowledge.
The examples below show the expected output. Follow their format.
---
Question: In which ocean is the island nation whose capital is Malé?
Solution history:
Step: Identify the island nation whose capital is Malé.
Output: The island nation whose capital is Malé is the Maldives.
Current step: Identify the ocean the Maldives lie in.
Output: The Maldives lie in the Indian Ocean.
---
Question: Which was founded earlier, the University of Bologna or the University of Oxford?
Solution history:
Step: Identify the year the University of Bologna was founded.
Output: The University of Bologna was founded in 1088.
Step: Identify the year teaching began at the University of Oxford.
Output: Teaching at the University of Oxford began around 1096.
Current step: Determine which university was founded earlier.
Output: Since 1088 is earlier than 1096, the University of Bologna was founded earlier.
---
Question: What language is mainly spoken in the country where the Atacama Desert is?
Solution history:
None
Current step: Identify the country where most of the Atacama Desert is.
Output: Most of the Atacama Desert is in Chile.
---
Question: A baker made 60 rolls. She sold 40 percent of them in the morning and half of the rest in the afternoon. \
How many rolls were left at the end of the day?
Solution history:
Step: Compute the number of rolls sold in the morning.
Output: She sold 40/100 * 60 = 24 rolls in the morning, so 60 - 24 = 36 rolls were left.
Current step: Compute the number of rolls left after the afternoon sales.
Output: She sold half of the 36 rolls, 36 / 2 = 18, in the afternoon, so 36 - 18 = 18 rolls were left.
---
Question: A bag holds 3 red and 5 blue marbles. One marble is drawn at random. What is the probability that it is \
red? Express your answer as a common fraction.
Solution history:
Step: Count the marbles in the bag.
Output: The bag holds 3 + 5 = 8 marbles.
Current step: Compute the probability that the drawn marble is red.
Output: 3 of the 8 marbles are red, so the probability is $\\frac{{3}}{{8}}$.
---
Question: Is the river that flows through Budapest longer than the Rhine?
Solution history:
Step: Identify the river that flows through Budapest.
Output: The Danube flows through Budapest.
Current step: Compare the lengths of the Danube and the Rhine.
Output: The Danube is about 2,850 km long and the Rhine about 1,230 km, so the Danube is longer.
---
Question: {question}
Solution history:
{history}
Current step: {step}
Output: """

CODE_WRITER_PROMPT = """You are given a question, the current step that helps to solve it, the code written for \
this step and the code's output. Rewrite the output as one complete sentence that combines the information of the \
question and of the current step.
The examples below show the expected output. Follow their format.
---
Question: A rectangle has sides 12 and 35. How long is its diagonal?
Step: Compute the length of the diagonal.
Code:
import math

# the two sides of the rectangle
a, b = 12, 35

# the diagonal by Pythagoras
diagonal = math.sqrt(a**2 + b**2)

# print the output
print(diagonal)
Code output: 37.0
Rewrite: The diagonal of the rectangle is 37 long.
---
Question: Between March 3, 2021 and June 9, 2021, how many days pass?
Step: Count the days between March 3, 2021 and June 9, 2021.
Code:
from datetime import datetime

# the two dates
start = datetime(2021, 3, 3)
end = datetime(2021, 6, 9)

# the number of days between them
days = (end - start).days

# print the output
print(days)
Code output: 98
Rewrite: 98 days pass between March 3, 2021 and June 9, 2021.
---
Question: Find all real solutions of $x^2 - 5x + 6 = 0$.
Step: Solve the quadratic equation for $x$.
Code:
from sympy import symbols, Eq, solve

# the unknown
x = symbols('x')

# solve the equation
solutions = solve(Eq(x**2 - 5*x + 6, 0), x)

# print the output
print(solutions)
Code output: [2, 3]
Rewrite: The real solutions of the equation are $x = 2$ and $x = 3$.
---
Question: {question}
Step: {step}
Code:
{code}
Code output: {output}
Rewrite: """

SEARCH_WRITER_PROMPT = """You are given an instruction and the result a Google search gave for it. Rewrite the \
search result as one complete sentence that answers the instruction.
The examples below show the expected output. Follow their format.
---
Instruction: Find the year the Eiffel Tower was completed.
Output: 1889
Answer: The Eiffel Tower was completed in 1889.
---
Instruction: Find who wrote the novel "Things Fall Apart".
Output: Things Fall Apart is the debut novel of Nigerian author Chinua Achebe, first published in 1958. It depicts \
pre-colonial life in the south-eastern part of Nigeria.
Answer: The novel "Things Fall Apart" was written by Chinua Achebe.
---
Instruction: Find the height of Mount Kilimanjaro.
Output: Mount Kilimanjaro - Britannica. Kilimanjaro, the highest mountain in Africa, rises 5,895 metres (19,341 \
feet) above sea level in north-eastern Tanzania.
Answer: Mount Kilimanjaro is 5,895 metres tall.
---
Instruction: {step}
Output: {result}
Answer: """

# Cut points of free-text expert outputs (models sometimes go on to write the next step or the final answer).
OUTPUT_CUTS = ("\nStep:", "\nCurrent step:", "\nThe answer is", "\nNext solution")

# The official generation stop string (the few-shot separator, ``"quote": "---"`` in the model config).
STOP = ("---",)

# The step used when an action cannot be parsed (the official fallback).
FALLBACK_STEP = "Solve the question using the given information."
