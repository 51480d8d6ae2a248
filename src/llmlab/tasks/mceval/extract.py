"""From a model's reply to a runnable McEval program (our own code, same rules as the official extractors).

The official ``eval/extract/extract_<lang>_code.py`` files share one recipe, which this module implements
once with per-language tables:

1. take the fenced code block that defines the entry point, else the first fenced block, else the reply;
2. drop what the model added around its function: its own ``main``/``check``/``test`` drivers and
   top-level ``print``/``assert`` lines (per language, :data:`DRIVERS`);
3. if the block redefines the function, keep the prompt's preamble (imports, ``#include``, ``package``,
   ``-module``, ``#lang``…: the lines of the prompt before the signature) that the block lacks, then the
   block; otherwise the block is a body continuing the prompt: ``prompt + block``;
4. append the item's test harness (Fortran: test first, as the official file layout).

An empty extraction gives the official placeholder program ``1234`` (which fails to run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmlab.tasks.mceval.languages import LANGS, Lang

PLACEHOLDER = "1234"

# An opening fence of 3+ backticks with an optional tag; the body runs to the same fence on its own line.
_FENCE_RE = re.compile(r"(`{3,})[ \t]*([\w#+.-]*)[^\n]*\n(.*?)(?:\n[ \t]*\1[ \t]*(?=\n|\Z)|\Z)", re.S)

# Where a model's own test driver starts (removed with its balanced body, or to the end for line langs).
DRIVERS: dict[str, tuple[str, ...]] = {
    "Python": (r"^if\s+__name__\s*==",),
    "C": (r"^\s*int\s+main\s*\(",),
    "CPP": (r"^\s*int\s+main\s*\(",),
    "Go": (r"^func\s+main\s*\(", r"^func\s+Test\w*\s*\("),
    "Rust": (r"^\s*fn\s+main\s*\(", r"^\s*#\[cfg\(test\)\]"),
    "JavaScript": (r"^\s*(?:function\s+)?(?:test|check|main)\w*\s*\(\s*\)\s*\{",),
    "TypeScript": (r"^\s*(?:function\s+)?(?:test|check|main)\w*\s*\(\s*\)\s*(?::\s*void\s*)?\{",),
    "Kotlin": (r"^\s*fun\s+main\s*\(",),
    "Swift": (),
    "Dart": (r"^\s*void\s+main\s*\(",),
    "Scala": (r"^\s*def\s+main\s*\(",),
    "Groovy": (),
    "PHP": (),
}

# Line-oriented languages: a definition of the entry point looks like this (``{e}``: the entry point).
DEFINES: dict[str, str] = {
    "Python": r"^\s*def\s+{e}\s*\(",
    "C": r"\b{e}\s*\([^;{{]*\)\s*\{{",
    "CPP": r"\b{e}\s*\([^;{{]*\)\s*\{{",
    "Go": r"^func\s+{e}\s*\(",
    "Rust": r"\bfn\s+{e}\b",
    "Java": r"\b{e}\s*\(",
    "JavaScript": r"(?:function\s+{e}\b|\b{e}\s*=)",
    "TypeScript": r"(?:function\s+{e}\b|\b{e}\s*=)",
    "Ruby": r"^\s*def\s+{e}\b",
    "PHP": r"function\s+{e}\s*\(",
    "Perl": r"^\s*sub\s+{e}\b",
    "Lua": r"function\s+{e}\s*\(",
    "R": r"\b{e}\s*(?:<-|=)\s*function",
    "Racket": r"\(define\s+\({e}\b",
    "Scheme": r"\(define\s+\({e}\b",
    "Common Lisp": r"\(defun\s+{e}\b",
    "Emacs Lisp": r"\(defun\s+{e}\b",
    "Haskell": r"^{e}\s+[^:\n]*=",
    "Elixir": r"def\s+{e}\b",
    "Erlang": r"^{e}\s*\(",
    "Fortran": r"(?i)function\s+{e}\b|subroutine\s+{e}\b",
    "Pascal": r"(?i)(?:function|procedure)\s+{e}\b",
    "Tcl": r"^\s*proc\s+{e}\b",
    "Kotlin": r"\bfun\s+{e}\b",
    "Scala": r"\bdef\s+{e}\b",
    "Groovy": r"\bdef\s+{e}\b|\b{e}\s*\(",
    "CoffeeScript": r"^\s*{e}\s*=",
    "Shell": r"^\s*{e}\s*\(\)",
    "VimScript": r"function!?\s+{e}\b",
}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(tag, body)`` of each Markdown code fence (an unterminated last fence runs to the end)."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE_RE.finditer(text)]


def pick_block(text: str, lang: Lang, entry_point: str | None) -> str:
    """Step 1: the block that mentions the entry point, else the first block, else the text itself."""
    blocks = fenced_blocks(text)
    if not blocks:
        return text
    if entry_point:
        for _tag, body in blocks:
            if entry_point in body:
                return body
    return blocks[0][1]


def _balanced_end(code: str, start: int) -> int:
    """Index just past the brace block opening at or after ``start`` (end of text if unbalanced)."""
    depth, i, opened = 0, start, False
    while i < len(code):
        ch = code[i]
        if ch == "{":
            depth += 1
            opened = True
        elif ch == "}":
            depth -= 1
            if opened and depth == 0:
                return i + 1
        i += 1
    return len(code)


def strip_drivers(code: str, lang: str) -> str:
    """Step 2: remove the model's own drivers (``main``, tests) so they do not clash with the harness."""
    for pattern in DRIVERS.get(lang, ()):
        while True:
            m = re.search(pattern, code, re.M)
            if m is None:
                break
            if lang == "Python":
                code = code[: m.start()]
                break
            end = _balanced_end(code, m.start())
            code = code[: m.start()] + code[end:]
    if lang == "Python":
        kept = [ln for ln in code.split("\n") if not re.match(r"\s*(assert\b|print\()", ln) or ln.startswith(" ")]
        code = "\n".join(kept)
    return code


def defines_entry(code: str, lang: str, entry_point: str | None) -> bool:
    """Whether ``code`` (re)defines the entry point (a whole function, not a body continuing the prompt)."""
    if not entry_point or lang not in DEFINES:
        return False
    pattern = DEFINES[lang].replace("{e}", re.escape(entry_point)).replace("{{", "{").replace("}}", "}")
    return re.search(pattern, code, re.M) is not None


# Lines of a prompt's header that a rewritten function still needs: imports, includes, module lines.
PREAMBLE_RE = re.compile(
    r"^\s*(?:#include|#import|#lang|#!/|using\s|import\s|from\s+\S+\s+import\s|package\s|use\s|"
    r"extern\s+crate|-module|-export|-import|-include|module\s|\(require|<\?php|require\b|library\(|"
    r"uses\s|\{\$|\(use-modules|open\s|Imports\s)")


def _preamble(prompt: str, lang: str, entry_point: str | None, code: str) -> str:
    """The prompt's header lines (imports, includes, module/package lines) that ``code`` lacks.

    A Go ``import ( ... )`` block is taken whole; a reply that declares its own ``package`` gets no Go
    preamble (a second import block would not compile).
    """
    if lang == "Go" and re.search(r"^package\s", code, re.M):
        return ""
    present = {ln.strip() for ln in code.split("\n")}
    kept: list[str] = []
    in_block = False
    for line in prompt.split("\n"):
        s = line.strip()
        if in_block:
            kept.append(line)
            in_block = s != ")"
            continue
        if defines_entry(line, lang, entry_point):
            break
        if lang == "Go" and re.match(r"import\s*\($", s):
            kept.append(line)
            in_block = True
            continue
        if PREAMBLE_RE.match(line) and s not in present:
            kept.append(line)
    return "\n".join(kept)


def compose(item: Mapping[str, Any], lang: Lang, code: str) -> str:
    """Steps 3-4: the full program for ``code`` extracted from a reply to ``item``."""
    prompt = str(item.get("prompt", ""))
    test = str(item.get("test") or "")
    entry = item.get("entry_point")
    if code.strip() and prompt.strip() and prompt.strip() in code:
        body = code  # the reply repeats the whole prompt (as canonical answers do)
    elif defines_entry(code, lang.name, entry):
        pre = _preamble(prompt, lang.name, entry, code)
        body = (pre + "\n" + code) if pre else code
    else:
        body = prompt + "\n" + code
    if lang.test_first:
        return test + "\n\n" + body + "\n"
    return body + "\n\n" + test + "\n"


def extract_program(reply: str | None, item: Mapping[str, Any], lang: Lang) -> str:
    """The program to run for a model's ``reply`` (``1234`` when nothing can be extracted)."""
    if reply is None or not reply.strip():
        return PLACEHOLDER
    entry = item.get("entry_point")
    code = pick_block(reply, lang, entry if isinstance(entry, str) else None)
    if lang.kind in ("json", "html", "markdown"):
        return code
    if lang.kind == "awk":
        code = code.strip()
        return code[2:].strip() if code.startswith("sh\n") else code
    code = strip_drivers(code, lang.name)
    if not code.strip():
        return PLACEHOLDER
    return compose(item, lang, code)


def canonical_answer(item: Mapping[str, Any], lang: Lang, reference: str | None = None) -> str:
    """The item's canonical solution shaped as a model reply (a fenced block), for the positive control.

    Args:
        item: The data row.
        lang: Its language.
        reference: For JSON/HTML/Markdown, the reference file's text (the canonical answer).
    """
    if lang.kind in ("json", "html", "markdown"):
        body = reference if reference is not None else ""
    elif lang.kind == "awk":
        body = str(item.get("canonical_solution", ""))
    else:
        body = str(item.get("prompt", "")) + "\n" + str(item.get("canonical_solution", ""))
    fence = "```" if "```" not in body else "`" * (max(len(m) for m in re.findall(r"`{3,}", body)) + 1)
    return f"Here is the solution.\n\n{fence}{lang.fence[0]}\n{body}\n{fence}\n"


__all__ = ["LANGS", "PLACEHOLDER", "canonical_answer", "compose", "extract_program", "fenced_blocks",
           "strip_drivers"]
