"""CS-Bench prompt templates: our own wording, with the structure of the official ``create_input.py``.

The official templates (``create_en_prompt`` / ``create_cn_prompt``) are one instruction line, the
question, for multiple choice the four options as ``(A)``..``(D)``, and a closing request for a direct
answer (a single letter / true or false / the blank / a brief answer). Ours keep that structure, the
option layout and the answer requests; the exact official wording can be supplied through
``CSBenchConfig.templates`` (a YAML/JSON file mapping a format name to a ``str.format`` template with
``{question}`` and, for multiple choice, ``{A}``..``{D}``).

The judge prompts keep the official rubric's structure: a teaching-assistant framing, the reference
answer taken as correct, 0/1 for fill-in-the-blank (same meaning, format differences allowed), and a 1-10
scale in four tiers (1-3, 4-6, 7-8, 9-10) over accuracy, relevance and completeness for open-ended, each
ending with a ``Score`` request whose number the official parser takes (the LAST 0/1 or 1-10 in the reply).
"""

from __future__ import annotations

MC_PROMPT = (
    "Here is a multiple-choice question; read it carefully and pick the right answer. Question:{question}\n"
    "Which of these options is correct? Options:\n(A){A}\n(B){B}\n(C){C}\n(D){D}\n"
    "Answer this question directly with a single letter:"
)
ASSERTION_PROMPT = (
    "Here is a true/false question; decide whether the statement below is true or false. Statement:{question}"
    "Answer directly (true or false):"
)
FILL_PROMPT = (
    "You are a computer science professor. Here is a fill-in-the-blank question; answer it without "
    "explaining or restating it.Question:{question}Answer:"
)
OPEN_PROMPT = "Here is an open-ended question:{question}Answer this question briefly:"

MC_PROMPT_CN = (
    "下面是一道选择题，请认真读题并选出正确答案。题目：{question}\n下列哪个选项正确？选项:\n(A){A}\n(B){B}\n(C){C}\n(D){D}\n"
    "请直接回答这个问题(一个字母):"
)
ASSERTION_PROMPT_CN = "下面是一道判断题，请判断下面的说法是对还是错。题目：{question}请直接回答(true or false):"
FILL_PROMPT_CN = "下面是一道填空题，请直接作答，不要解释，也不要重复题目。问题：{question}答案："
OPEN_PROMPT_CN = "下面是一道主观题：{question}请简要回答这个问题："

PROMPTS = {
    "English": {"Multiple-choice": MC_PROMPT, "Assertion": ASSERTION_PROMPT, "Fill-in-the-blank": FILL_PROMPT,
                "Open-ended": OPEN_PROMPT},
    "Chinese": {"Multiple-choice": MC_PROMPT_CN, "Assertion": ASSERTION_PROMPT_CN,
                "Fill-in-the-blank": FILL_PROMPT_CN, "Open-ended": OPEN_PROMPT_CN},
}

FILL_JUDGE_PROMPT = (
    "You are acting as a teaching assistant who grades computer science students' fill-in-the-blank "
    "homework. For each question you get the reference answer (checked and fully correct) and you grade the "
    "student's answer against it. Give 1 point if the student's answer means the same as the reference answer "
    "or another correct answer (a different format also counts as correct); otherwise give 0 points."
    "Question: {question}\nReference Answer: {answer}\nStudent Response: {output}\nScore (0 or 1):"
)
OPEN_JUDGE_PROMPT = (
    "You are acting as a teaching assistant who grades computer science students' open-ended homework. "
    "For each question you get the reference answer (checked and fully correct) and you grade the student's "
    "answer against it. Scores run from 1 (lowest) to 10 (highest); weigh the accuracy, relevance, "
    "completeness and depth of the answer. Use these *criteria*:\n\n"
    "- **Tier 1**: 1-3 points\n"
    "  - **Accuracy**: several basic mistakes; little understanding shown.\n"
    "  - **Relevance**: mostly off the question and the reference answer.\n"
    "  - **Completeness**: several key points missing; the main aspects are not covered.\n\n"
    "- **Tier 2**: 4-6 points\n"
    "  - **Accuracy**: some mistakes, though most basic concepts are right.\n"
    "  - **Relevance**: broadly on the question and reference answer, with some content off the mark.\n"
    "  - **Completeness**: fairly complete, but some important details or key points are thin.\n\n"
    "- **Tier 3**: 7-8 points\n"
    "  - **Accuracy**: almost entirely correct, only tiny mistakes.\n"
    "  - **Relevance**: closely on the question and reference answer, hardly any digression.\n"
    "  - **Completeness**: thorough and detailed, covering every key aspect well.\n\n"
    "- **Tier 4**: 9-10 points\n"
    "  - **Accuracy**: no mistakes; deep and precise understanding.\n"
    "  - **Relevance**: exactly what was asked, fully aligned with the question and reference answer.\n"
    "  - **Completeness**: rigorous, logically organised, covering every aspect systematically.\n\n"
    "**How to grade**: first judge accuracy by comparing the student's answer with the reference answer, then "
    "weigh relevance and completeness to settle the final score. Every point given must rest on a fair, "
    "justified overall assessment.\n"
    "Question: {question}\nReference Answer: {answer}\nStudent Answer: {output}\nScore (1-10):"
)
FILL_JUDGE_PROMPT_CN = (
    "你现在担任助教，负责批改计算机专业学生的填空题作业。每道题都给出参考答案（已核实、完全正确），请据此给学生的答案打分。"
    "学生答案与参考答案或其他正确答案意思相同（格式不同也算对）给1分，否则给0分。"
    "问题：{question}\n参考答案：{answer}\n学生回答：{output}\n评分（0或1）："
)
OPEN_JUDGE_PROMPT_CN = (
    "你现在担任助教，负责批改计算机专业学生的主观题作业。每道题都给出参考答案（已核实、完全正确），请据此给学生的答案打分。"
    "分数从1分（最低）到10分（最高），综合考虑答案的正确性、相关性、完整性和思考深度。按以下*标准*打分：\n\n"
    "- **第一档：1-3分**：多处基本错误；与题目和参考答案关系很弱；遗漏多个关键点。\n"
    "- **第二档：4-6分**：有一些错误但基本概念大多正确；大体相关但部分内容偏题；较完整但缺少重要细节。\n"
    "- **第三档：7-8分**：几乎完全正确；高度相关；全面详尽。\n"
    "- **第四档：9-10分**：没有错误；完全切题；结构严谨、系统全面。\n\n"
    "**评分方法：**先对照参考答案判断正确性，再综合相关性和完整性确定最终分数，每一分都要有依据。"
    "问题：{question}\n参考答案：{answer}\n学生回答：{output}\n评分（1-10）："
)
JUDGE_PROMPTS = {
    "English": {"Fill-in-the-blank": FILL_JUDGE_PROMPT, "Open-ended": OPEN_JUDGE_PROMPT},
    "Chinese": {"Fill-in-the-blank": FILL_JUDGE_PROMPT_CN, "Open-ended": OPEN_JUDGE_PROMPT_CN},
}
