r"""Visual Sketchpad prompts: our own wording, with the structure and tool vocabulary of the official ones.

The official prompts (Yushi-Hu/VisualSketchpad ``agent/prompt.py``) are: a system message for the planner
(``MULTIMODAL_ASSISTANT_MESSAGE``), one initial prompt per task family (``MathPrompt`` for the IsoBench
math/graph/chess tasks, ``GeoPrompt`` for Geometry3K) and the two kinds of feedback the executor sends back
(parsing and execution). Each initial prompt is, in order: the tools the notebook offers, ``# GOAL #:``,
the code the notebook already ran, ``# REQUIREMENTS #:``, worked ``# EXAMPLE`` blocks (each a
``# USER REQUEST #:`` and a ``# RESULT #:`` of ``THOUGHT k`` / ``ACTION k`` / a ```` ```python ```` block /
``OBSERVATION:`` / ``ANSWER: ... TERMINATE``), then the real ``# USER REQUEST #:`` and the closing
"generate only THOUGHT 0 and ACTION 0 ... # RESULT #:" line. Ours keep those markers, the same order,
the same tool names (matplotlib, ``nx.from_numpy_array``, the ``chess`` library, ``display``,
``image_1``, ``find_perpendicular_intersection``, ``find_parallel_intersection``), the same
"do not call ``nx.maximum_flow`` / ``nx.is_isomorphic``" instructions, and the same examples per task
(convexity, connectivity/max-flow, winner id, isomorphism, parity; one auxiliary-line geometry example).
The sentences and the example code are ours.

Byte-level differences from the official text (checked by ``tests/parity/test_sketchpad_official.py``
when it is pointed at an official checkout):

- All prose is paraphrased; example code is ours (the official examples draw through ``BytesIO`` and
  ``Image.open``; ours call ``display(fig)`` or ``plt.show()``, which our notebook also captures).
- The official ``GeoPrompt`` opens its tool code block with ```` ```python ```` and closes it with
  ``'''``; ours closes it with ```` ``` ````. Its final request reads ``USER REQUEST #:`` (no leading
  ``# ``); ours reads ``# USER REQUEST #:`` like every other request.
- The official geometry request embeds ``<img src='{image_path_code}'>``, an absolute path on the
  authors' cluster, so the released prompt sends no diagram; ours places the diagram (``image.png``)
  there as an image content part, and also loads it into the notebook as ``image_1``.
- The official ``MathPrompt`` example blocks end with "If you can get the answer, please reply with
  ANSWER: ..." after each observation while the real feedback (``get_exec_feedback``) puts "Please
  generate the next THOUGHT and ACTION" first; ours use the real feedback's order in the examples too.
- The feedback strings are paraphrased but keep their openings ``OBSERVATION: Parsing error. Error
  code: ...``, ``OBSERVATION: Execution error. Exit code: ...`` and ``OBSERVATION: Execution success.``.
- The parsing feedback names a specific error code (``no_code_block``, ``unclosed_code_block``,
  ``empty_code``, ``syntax_error``, ``no_terminate``); the official one always says ``unknown``.

Any of these texts can be replaced with the official wording through ``prompts_file`` (a YAML/JSON file
mapping the names of :data:`PROMPT_NAMES` to texts).
"""

from __future__ import annotations

SYSTEM_MESSAGE = """You are a helpful multimodal AI assistant.
You solve tasks with your vision, coding and language skills. A task may be a free-form or a multiple-choice \
question, and it may come with images.
You work in a Python jupyter notebook. You may propose python code (in one python code block) for the user to run. \
Every code block of a dialogue runs in the same jupyter kernel, so variables and state from your earlier blocks are \
still there.
Work step by step when you need to. A step may process images, text or data with code; give the code to the user, \
who replies with the text and image outputs of running it. Use those outputs for the next step: reason, plan, or \
write more code.
If no plan is given, explain your plan first, and say which steps use code and which use your language skills.
Mark every code block with its language. The user can only run the code you give; the user cannot change it, so \
never give incomplete code that needs editing, and do not use a code block for anything that is not meant to be run.
Put at most one code block in a reply. Do not ask the user to copy or paste results: print what you need to see, and \
check the results the user returns.
Images are PIL Image objects. The notebook has already imported 'Image' from PIL and 'display' from IPython.display. \
To look at an image your code produced, call display on it (a matplotlib figure shown with plt.show() is returned \
too); the user sends the images back to you.
If the result shows an error, fix it and send the whole corrected code again, not a partial change. If the error \
cannot be fixed, or the task is still unsolved after the code ran, analyse the problem, revisit your assumptions, \
collect the information you are missing, and try another approach.

Begin every turn with a "THOUGHT" about the images and text you see.
When you have the answer to the user's original request, reply with "ANSWER: <your answer>" and end with "TERMINATE".
"""

MATH_TOOLS = """Here are some tools that help you visualise math functions and graphs.
        - matplotlib draws math functions and graphs.
        - networkx (nx.from_numpy_array) builds a graph from an adjacency matrix so you can draw it: G = \
nx.from_numpy_array(np.array(matrix)); pos = nx.spring_layout(G); nx.draw(G, pos, with_labels=True)
        - the chess library (chess, chess.svg) draws a chess board from a FEN string

# GOAL #: Using the tools above, reason about how to solve the # USER REQUEST # and write the actions step by step \
(each action is one python jupyter notebook code block) that solve it.
Use the tools to draw images, and base your decisions on the visual outputs of the earlier code blocks.
Your own reasoning is not perfect, so use these tools to help you reason.

The jupyter notebook has already run the following code to import what you need:
```python
from PIL import Image
from IPython.display import display
from tools import *
```

# REQUIREMENTS #:
1. The actions you write must solve the # USER REQUEST # completely. The request is reasonable and has a solution; \
do your best to solve it.
2. When you have the answer, write ANSWER: <your answer> and end with TERMINATE.

Below are examples of using the tools to solve user requests. Refer to them, and to the tool descriptions, for help.
"""

MATH_EXAMPLES = """# EXAMPLE: Solving a math convexity problem
# USER REQUEST #: You are given a real-valued, scalar function f(x). YOUR TASK is to decide whether f(x) is a convex \
or a concave function. Here is the expression of f(x): f(x) = 0.5*x**2 - 3*x + 1. Respond with 'convex' or 'concave'.
# RESULT #:
THOUGHT 0: I will plot f(x) = 0.5*x**2 - 3*x + 1 to see its shape.
ACTION 0:
```python
import numpy as np
import matplotlib.pyplot as plt

xs = np.linspace(-10, 10, 400)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(xs, 0.5 * xs**2 - 3 * xs + 1)
ax.set_title('f(x) = 0.5*x**2 - 3*x + 1')
display(fig)
```
OBSERVATION: Execution success. The output is as follows:
<the image outputs of the previous code is here.>
Write the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> and end with TERMINATE.
THOUGHT 1: The curve opens upwards: every chord between two points of the graph lies on or above it, so f is convex.
ACTION 1: No action needed.
ANSWER: convex. TERMINATE

# EXAMPLE: Solving a graph connectivity or graph maxflow problem. (For maxflow, do not call nx.maximum_flow to get \
the answer directly; draw the graph instead.)
# USER REQUEST #: You are given an adjacency matrix of a graph and two query nodes. YOUR TASK is to find whether \
there is a path between the two nodes. Adjacency Matrix: [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]. \
Query nodes indices (zero-indexed): 0 and 3. Respond with 'yes' or 'no'.
# RESULT #:
THOUGHT 0: I will build the graph with networkx and draw it.
ACTION 0:
```python
import networkx as nx
import numpy as np
import matplotlib.pyplot as plt

matrix = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
G = nx.from_numpy_array(np.array(matrix))
pos = nx.spring_layout(G, seed=0)
nx.draw(G, pos, with_labels=True, node_color='lightblue')
plt.show()
```
OBSERVATION: Execution success. The output is as follows:
<the image outputs of the previous code is here.>
Write the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> and end with TERMINATE.
THOUGHT 1: The drawing shows two separate pieces, {0, 1} and {2, 3}; no edge joins them, so there is no path from \
node 0 to node 3.
ACTION 1: No action needed.
ANSWER: no, there is no path. TERMINATE

# EXAMPLE: Solving a winner id problem
# USER REQUEST #: Given the following fen of the chess game: 3R2k1/5ppp/8/8/8/8/5PPP/6K1 b - - 1 1 Determine the \
game's outcome. Who won: White or Black? Answer can be 'white' or 'black' or 'draw'.
# RESULT #:
THOUGHT 0: I will draw the board of this FEN with the chess library.
ACTION 0:
```python
import io
import chess
import chess.svg
from cairosvg import svg2png

board = chess.Board("3R2k1/5ppp/8/8/8/8/5PPP/6K1 b - - 1 1")
png = svg2png(bytestring=chess.svg.board(board))
display(Image.open(io.BytesIO(png)))
```
OBSERVATION: Execution success. The output is as follows:
<the image outputs of the previous code is here.>
Write the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> and end with TERMINATE.
THOUGHT 1: The white rook on d8 gives check along the back rank and the black king is boxed in by its own \
pawns: it is checkmate, so White won.
ACTION 1: No action needed.
ANSWER: White. TERMINATE

# EXAMPLE: Solving a graph isomorphism problem (do not call nx.is_isomorphic.)
# USER REQUEST #: You are given two adjacency matrices of graphs G and H. YOUR TASK is to decide whether the two \
graphs are isomorphic. Adjacency Matrix of Graph G: ... Adjacency Matrix of Graph H: ...
# RESULT #:
THOUGHT 0: I will draw both graphs side by side with networkx.
ACTION 0:
```python
import networkx as nx
import numpy as np
import matplotlib.pyplot as plt

matrix_G = [...]
matrix_H = [...]
G = nx.from_numpy_array(np.array(matrix_G))
H = nx.from_numpy_array(np.array(matrix_H))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 5))
nx.draw(G, nx.spring_layout(G, seed=0), with_labels=True, node_color='lightblue', ax=ax1)
ax1.set_title('Graph G')
nx.draw(H, nx.spring_layout(H, seed=0), with_labels=True, node_color='lightgreen', ax=ax2)
ax2.set_title('Graph H')
plt.tight_layout()
plt.show()
```
OBSERVATION: Execution success. The output is as follows:
<the image outputs of the previous code is here.>
Write the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> and end with TERMINATE.
THOUGHT 1: Both drawings have the same number of nodes and edges and the same degree pattern; matching the nodes one \
to one keeps every edge, so G and H are isomorphic.
ACTION 1: No action needed.
ANSWER: true. TERMINATE

# EXAMPLE: Solving a math parity problem
# USER REQUEST #: You are given a real-valued, scalar function f(x). YOUR TASK is to decide whether f(x) is an even \
function, an odd function, or neither. Here is the expression of f(x): f(x) = x**3 - 4*x. Respond with 'even', 'odd' \
or 'neither'.
# RESULT #:
THOUGHT 0: I will plot f(x) = x**3 - 4*x on an interval symmetric about 0.
ACTION 0:
```python
import numpy as np
import matplotlib.pyplot as plt

xs = np.linspace(-4, 4, 400)
plt.plot(xs, xs**3 - 4 * xs)
plt.axhline(0, color='gray')
plt.axvline(0, color='gray')
plt.title('f(x) = x**3 - 4*x')
plt.show()
```
OBSERVATION: Execution success. The output is as follows:
<the image outputs of the previous code is here.>
Write the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> and end with TERMINATE.
THOUGHT 1: The graph is symmetric about the origin: turning it half a turn around (0, 0) gives the same curve, so f \
is odd.
ACTION 1: No action needed.
ANSWER: odd. TERMINATE
"""

GEO_TOOLS = """Here are some tools that can help you. They are python code in tools.py and are imported for you.
Note that the upper-left corner of the image is the origin (0, 0). The functions below help you draw auxiliary lines \
on geometry diagrams given as matplotlib code.
```python
import numpy as np

# the point E on line BC such that AE is perpendicular to BC (A, B, C are (x, y) coordinates)
def find_perpendicular_intersection(A, B, C):
    A, B, C = (np.asarray(p, dtype=float) for p in (A, B, C))
    d = C - B
    t = np.dot(A - B, d) / np.dot(d, d)
    return (B + t * d).tolist()


# a point E such that AE is parallel to BC and as long as BC
def find_parallel_intersection(A, B, C):
    A, B, C = (np.asarray(p, dtype=float) for p in (A, B, C))
    return (A + (C - B)).tolist()
```
# GOAL #: Using the tools above, reason about which auxiliary lines to draw on the geometry diagram (given as \
matplotlib code), draw them, and solve the geometry problem.
# Hint #: When you choose what kind of auxiliary line to draw, consider these options:
(1) Perpendicular line: when you see MeasureOf(Angle()),60) or MeasureOf(Angle()),45), a perpendicular line often \
helps. find_perpendicular_intersection(A, B, C) gives the point E with AE perpendicular to BC.
(2) Parallel line: find_parallel_intersection(A, B, C) gives a point E with AE parallel to BC. Parallel lines keep a \
constant distance, which gives equal lengths at once; this helps with perimeters, since a line parallel to one side \
of a shape shows that the opposite side has the same length.
(3) Connecting points on a circle: when there is a circle, connect its centre to the points on its circumference.
(4) Circle properties: tangent segments drawn from one external point to a circle are equal. Use the given segment \
lengths and these properties to set up equations; radii drawn to the points of tangency make those relations, and \
right triangles, visible.

The jupyter notebook has already run the following code to import what you need:
```python
from PIL import Image
from IPython.display import display
from tools import find_perpendicular_intersection, find_parallel_intersection
```

# REQUIREMENTS #:
1. The actions you write must solve the # USER REQUEST # completely. The request is reasonable and has a solution; \
do your best to solve it.
2. When you have the answer, write ANSWER: <your answer> and end with TERMINATE.

Below are examples of using the tools to solve user requests. Refer to them, and to the tool descriptions, for help.
"""

GEO_EXAMPLES = """# EXAMPLE #:
# USER REQUEST #: Given the geometry diagram <img src='an image'> and the diagram logic form
            "Equals(LengthOf(Line(A, B)), 10)",
            "Equals(LengthOf(Line(A, C)), 10)",
            "Equals(LengthOf(Line(B, C)), 12)",
            "Equals(LengthOf(Line(A, D)), h)",
            Below is the original matplotlib code of the geometry: "import matplotlib.pyplot as plt\\n\\npoints = \
{\\"A\\": [60.0, 0.0], \\"B\\": [0.0, 80.0], \\"C\\": [120.0, 80.0]}\\nlines = [(\\"A\\", \\"B\\"), (\\"A\\", \
\\"C\\"), (\\"B\\", \\"C\\")]\\nfig, ax = plt.subplots()\\nax.set_aspect('equal')\\nax.axis('off')\\nfor p, q in \
lines:\\n    ax.plot([points[p][0], points[q][0]], [points[p][1], points[q][1]], 'k')\\nfor name, (x, y) in \
points.items():\\n    ax.text(x, y, f' {name}', fontsize=20, color='red')\\nplt.show()\\n",
            you must draw auxiliary lines to solve the following question: [Find h, the height of the triangle from A.]
# RESULT #:
THOUGHT 0: The triangle is isosceles (AB = AC = 10). The height from A meets BC at its foot D; I will draw AD, \
perpendicular to BC, to see the two right triangles.
ACTION 0:
```python
import matplotlib.pyplot as plt

points = {"A": [60.0, 0.0], "B": [0.0, 80.0], "C": [120.0, 80.0]}
points["D"] = find_perpendicular_intersection(points["A"], points["B"], points["C"])
lines = [("A", "B"), ("A", "C"), ("B", "C")]
fig, ax = plt.subplots()
ax.set_aspect('equal')
ax.axis('off')
for p, q in lines:
    ax.plot([points[p][0], points[q][0]], [points[p][1], points[q][1]], 'k')
ax.plot([points["A"][0], points["D"][0]], [points["A"][1], points["D"][1]], 'b--')  # the auxiliary line AD
for name, (x, y) in points.items():
    ax.text(x, y, f' {name}', fontsize=20, color='red')
plt.show()
```
OBSERVATION: Execution success. The output is as follows:
<the image outputs of the previous code is here.>
Write the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> and end with TERMINATE.
THOUGHT 1: AD splits BC into BD = DC = 6, and triangle ABD is right-angled at D, so h = sqrt(10**2 - 6**2) = 8.
ACTION 1: No action needed.
ANSWER: 8. TERMINATE
"""

# The real request follows "# USER REQUEST #: " and this closes the initial prompt.
REQUEST_HEADER = "# USER REQUEST #: "
REQUEST_FOOTER = (
    "\nNow write only THOUGHT 0 and ACTION 0 in RESULT. If no action is needed, also reply with "
    "ANSWER: <your answer> and end with TERMINATE in the RESULT:\n# RESULT #:\n"
)
# A line saying which notebook variables hold the request's images (official ReACTPrompt's "# USER IMAGE").
USER_IMAGES = "# USER IMAGE stored in {names} as PIL image.\n"

PARSING_FEEDBACK = (
    "OBSERVATION: Parsing error. Error code: {error_code}, Error message:\n{error_message}\n"
    "Fix the error and write the corrected code in the next THOUGHT and ACTION."
)
EXECUTION_ERROR = (
    "OBSERVATION: Execution error. Exit code: {exit_code}, Output:\n{output}\n"
    "Fix the error and write the corrected code in the next THOUGHT and ACTION."
)
EXECUTION_SUCCESS_HEAD = "OBSERVATION: Execution success. The output is as follows:\n"
EXECUTION_SUCCESS_TAIL = (
    "\nWrite the next THOUGHT and ACTION. If you have the answer, also reply with ANSWER: <your answer> "
    "and end with TERMINATE."
)

# Parser messages (the error_message of PARSING_FEEDBACK), one per error code.
PARSE_MESSAGES = {
    "no_code_block": "No code block found: put the program in one ```python ... ``` block, or, when you have "
                     "the answer, reply with ANSWER: <your answer> and end with TERMINATE.",
    "unclosed_code_block": "The ```python block is not closed with ```.",
    "empty_code": "The ```python block is empty.",
    "syntax_error": "The program does not compile: {detail}",
}

# The no-sketch baseline (the paper's comparison: the same model answering without drawing).
BASELINE_SYSTEM = (
    "You are a helpful multimodal AI assistant. Solve the task by reasoning step by step in text; no code "
    "will be run for you. Begin with a THOUGHT, and when you have the answer reply with "
    "\"ANSWER: <your answer>\" and end with \"TERMINATE\"."
)
BASELINE_FOOTER = "\nThink step by step, then reply with ANSWER: <your answer> and end with TERMINATE.\n"

PROMPT_NAMES = (
    "SYSTEM_MESSAGE", "MATH_TOOLS", "MATH_EXAMPLES", "GEO_TOOLS", "GEO_EXAMPLES", "REQUEST_HEADER",
    "REQUEST_FOOTER", "USER_IMAGES", "PARSING_FEEDBACK", "EXECUTION_ERROR", "EXECUTION_SUCCESS_HEAD",
    "EXECUTION_SUCCESS_TAIL", "BASELINE_SYSTEM", "BASELINE_FOOTER",
)
