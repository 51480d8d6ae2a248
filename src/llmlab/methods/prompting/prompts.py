r"""Prompt templates of the Prompt Report's text techniques (our wording, each paper's structure).

Thought inducers that the Prompt Report's own MMLU experiment uses are kept with their well-known
wording (they are short phrases quoted in the papers): zero-shot CoT "Let's think step by step.",
Plan-and-Solve, Thread-of-Thought. The full MMLU experiment prompts come from the data file
``prompt-report/prompts.json`` at run time (``llmlab bench prompting``), never from this module.
"""

from __future__ import annotations

# -- zero-shot -------------------------------------------------------------------------------------------
ROLE_PREFIX = "You are {role}."
STYLE_SUFFIX = "Write your answer in a {style} style."
EMOTION_SUFFIX = "{stimulus}"
EMOTION_DEFAULT = "This is very important to my career."
RE2_TEMPLATE = "{question}\nRead the question again: {question}"
RAR_SUFFIX = "Rephrase and expand the question, and respond."
S2A_REWRITE = (
    "Given the following text by a user, extract the part that is unbiased and not their opinion, so that "
    "using that text alone would be good context for providing an unbiased answer to the question portion "
    "of the text. Include the actual question or query the user asks. Separate this into two parts labeled "
    '"Unbiased text context (includes all content except user\'s bias):" and "Question/Query (does not '
    'include user bias/preference):".\n\nText by user: {question}'
)

# -- thought generation ----------------------------------------------------------------------------------
ZERO_SHOT_COT = "Let's think step by step."
PLAN_AND_SOLVE = (
    "Let's first understand the problem and devise a plan to solve the problem. Then, let's carry out the "
    "plan and solve the problem step by step."
)
THREAD_OF_THOUGHT = "Walk me through this context in manageable parts step by step, summarizing and analyzing as we go."
TAB_COT = "|step|subquestion|process|result|"
STEP_BACK_QUESTION = (
    "Before answering, step back: what is the more general question or principle behind this question? "
    "State it and answer it briefly.\n\nQuestion: {question}"
)
STEP_BACK_ANSWER = (
    "{question}\n\nUseful background (a step-back question and its answer):\n{principles}\n\nNow answer the question."
)

# -- few-shot --------------------------------------------------------------------------------------------
EXEMPLAR = "Q: {input}\nA: {output}"
EXEMPLAR_COT = "Q: {input}\nA: {rationale} So the answer is {output}."
EXEMPLAR_CONTRASTIVE = (
    "Q: {input}\nCorrect explanation: {rationale} So the answer is {output}.\n"
    "Wrong explanation: {wrong_rationale} So the answer is {wrong_output}."
)
FEW_SHOT_QUERY = "{exemplars}\n\nQ: {question}\nA:"

# -- decomposition ---------------------------------------------------------------------------------------
LTM_DECOMPOSE = (
    "Break the following problem into simpler subquestions that lead to its answer, easiest first. List one "
    "subquestion per line, numbered 1., 2., ...; the last one is the original question.\n\nProblem: {question}"
)
LTM_SOLVE = "{question}\n\n{solved}Subquestion: {subquestion}\nAnswer:"
POT_PROMPT = (
    "Write a Python program that computes the answer to the question below and prints only the final answer "
    "on the last line. Reply with the program in one ```python code block.\n\nQuestion: {question}"
)
DECOMP_PLAN = (
    "Decompose the question into a program of sub-tasks, one per line, each as '<handler>: <sub-question>'. "
    "Handlers: qa (answer a simple question), code (compute with a Python program). Refer to the result of "
    "line k as #k. The last line's result is the answer.\n\nQuestion: {question}"
)
DECOMP_QA = "Answer briefly: {subquestion}"
SOT_SKELETON = (
    "You are an organiser. Give only the skeleton (not the full content) of an answer to the question, as a "
    "numbered list of 3 to 10 points of 3 to 5 words each.\n\nQuestion: {question}\nSkeleton:"
)
SOT_EXPAND = (
    "You are continuing an answer to a question whose skeleton is given. Expand ONLY point {index} in 1 to 2 "
    "sentences.\n\nQuestion: {question}\nSkeleton:\n{skeleton}\n\nContinue point {index}: {point}"
)

# -- ensembling ------------------------------------------------------------------------------------------
USC_SELECT = (
    "I have generated the following responses to the question: {question}\n\n{responses}\n\n"
    "Evaluate these responses. Select the most consistent response based on majority consensus. Start your "
    'answer with "The most consistent response is Response X" (without quotes).'
)

# -- self-criticism --------------------------------------------------------------------------------------
REFINE_FEEDBACK = (
    "Question: {question}\n\nAnswer:\n{answer}\n\nGive concrete, actionable feedback on this answer: what is "
    "wrong or missing. If it is already correct and complete, reply only STOP."
)
REFINE_REVISE = (
    "Question: {question}\n\nAnswer:\n{answer}\n\nFeedback:\n{feedback}\n\nWrite an improved answer that "
    "uses the feedback."
)
COVE_PLAN = (
    "Question: {question}\n\nBaseline answer:\n{answer}\n\nWrite verification questions that would check the "
    "facts in the baseline answer, one per line."
)
COVE_VERIFY = "Answer this question briefly and independently: {vq}"
COVE_REVISE = (
    "Question: {question}\n\nBaseline answer:\n{answer}\n\nVerification questions and answers:\n{qa}\n\n"
    "Write the final answer, corrected where the verification found an error."
)
SELF_VERIFY = (
    "Question: {question}\n\nProposed answer: {answer}\n\nCheck the proposed answer by reasoning backwards from "
    "it to the question's conditions. End with 'Verdict: correct' or 'Verdict: incorrect'."
)
SELF_CALIBRATE = (
    "Question: {question}\n\nProposed answer: {answer}\n\nIs the proposed answer correct? Reply (A) True or "
    "(B) False."
)
