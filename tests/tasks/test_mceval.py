"""McEval: extraction, pass@k, the per-language harness in the sandbox, scoring files, eval through the run store.

The per-language canonical sweep (every item of every installed language) is slow: ``-m slow`` here, and
``llmlab mceval canonical`` / bench/mceval.py; the default suite runs a few items of the fast languages.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Item
from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.mceval import LANGS, McEval, fix_rust_crates, pass_at_k
from llmlab.tasks.mceval.execute import compare_reference
from llmlab.tasks.mceval.extract import PLACEHOLDER, extract_program, fenced_blocks, strip_drivers

ROW_PY = {
    "task_id": "Python/99", "entry_point": "add", "signature": "def add(a: int, b: int) -> int:",
    "prompt": "from typing import List\n\ndef add(a: int, b: int) -> int:\n    \"\"\"Add two numbers.\"\"\"",
    "canonical_solution": "    return a + b",
    "test": "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n\ncheck(add)",
    "instruction": "Write a python function 'def add(a: int, b: int) -> int:' to add two numbers.",
}
ROW_C = {
    "task_id": "C/99", "entry_point": "twice", "signature": "int twice(int x)",
    "prompt": "#include <assert.h>\n#include <stdio.h>\n// Return 2x\nint twice(int x)",
    "canonical_solution": "{\n    return 2 * x;\n}",
    "test": "int main()\n{\n    assert(twice(21) == 42);\n    return 0;\n}",
    "instruction": "Write a C function `int twice(int x)`.",
}


def _item(row: dict[str, Any]) -> Item:
    lang = row["task_id"].split("/")[0]
    return McEval({"language": lang}).item_for(lang, row)


def _run(task: McEval, item: Item, reply: str | None) -> Any:
    return run_sync(task.run_one(item, reply))


# --- pass@k -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "c", "k"), [(10, 3, 1), (10, 3, 2), (10, 3, 5), (5, 0, 3), (5, 5, 1), (7, 2, 7)])
def test_pass_at_k_matches_the_combinatorial_definition(n: int, c: int, k: int) -> None:
    # pass@k = P(at least one of k samples drawn without replacement passes)
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute)
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_k_needs_enough_samples() -> None:
    with pytest.raises(ConfigError, match="pass@5"):
        pass_at_k(3, 1, 5)


# --- extraction ----------------------------------------------------------------------------------------

def test_fenced_blocks_handle_tags_long_fences_and_unterminated_blocks() -> None:
    text = "Sure:\n```python\nx = 1\n```\nand\n````md\na ```b``` c\n````\n```go\nfunc f() {"
    assert fenced_blocks(text) == [("python", "x = 1"), ("md", "a ```b``` c"), ("go", "func f() {")]


def test_python_reply_with_its_own_tests_and_main_is_cut_to_the_function() -> None:
    reply = ("Here you go:\n```python\nimport math\n\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
             "assert add(1, 1) == 2\n\nif __name__ == '__main__':\n    print('hi')\n```\nDone.")
    program = extract_program(reply, ROW_PY, LANGS["Python"])
    assert "import math" in program and "from typing import List" in program  # the prompt's preamble kept
    assert "print(add(1, 2))" not in program and "__main__" not in program
    assert program.rstrip().endswith("check(add)")


def test_c_reply_with_main_keeps_its_function_and_gets_the_harness_main() -> None:
    reply = ("```c\n#include <stdio.h>\nint twice(int x) {\n    return x + x;\n}\nint main() {\n"
             "    printf(\"%d\", twice(2));\n    return 0;\n}\n```")
    program = extract_program(reply, ROW_C, LANGS["C"])
    assert program.count("int main()") == 1 and "printf(\"%d\"" not in program
    assert "#include <assert.h>" in program  # from the prompt's preamble


def test_a_body_only_reply_continues_the_prompt() -> None:
    program = extract_program("```python\n    return a + b\n```", ROW_PY, LANGS["Python"])
    assert program.startswith(ROW_PY["prompt"])


def test_empty_reply_is_the_official_placeholder() -> None:
    assert extract_program("", ROW_PY, LANGS["Python"]) == PLACEHOLDER
    assert extract_program(None, ROW_PY, LANGS["Python"]) == PLACEHOLDER


def test_strip_drivers_removes_balanced_go_tests() -> None:
    code = "func f() int {\n\treturn 1\n}\n\nfunc TestF(t *testing.T) {\n\tif f() != 1 { t.Fail() }\n}\n"
    assert strip_drivers(code, "Go").strip() == "func f() int {\n\treturn 1\n}"


def test_rust_boilerplate_crates_dropped_only_when_unused() -> None:
    prog = ("use rand::Rng;\nuse regex::Regex;\nuse md5;\nuse std::collections::HashMap;\n"
            "fn f() { let r = Regex::new(\"a\"); }")
    out = fix_rust_crates(prog)
    assert "use rand::Rng;" not in out and "use md5;" not in out
    assert "use regex::Regex;" in out and "use std::collections::HashMap;" in out


# --- reference comparisons -------------------------------------------------------------------------------

def test_markup_comparisons_follow_the_official_rules() -> None:
    assert compare_reference("json", '{"a": [1, 2], "b": true}', '{\n  "b": true, "a": [1, 2]\n}')
    assert not compare_reference("json", '{"a": 1', '{"a": 1}')
    assert compare_reference("html", "<div><p>x</p></div>", "<div>\n  <p>x</p>\n</div>")  # layout-insensitive
    assert compare_reference("html", '<img src="a" width="3">', "<img src='a' width='3'/>")
    assert not compare_reference("html", "<div><p>x</p></div>", "<div><p>y</p></div>")
    assert compare_reference("markdown", "# T\n\ntext\n", "# T\n\ntext")
    assert not compare_reference("markdown", "# T\ntext", "# T\n\ntext")


# --- executed in the sandbox -------------------------------------------------------------------------------

def test_python_canonical_passes_wrong_fails_timeout_fails() -> None:
    task = McEval({"language": "Python"})
    item = _item(ROW_PY)
    assert _run(task, item, task.canonical_reply(item)).passed
    wrong = _run(task, item, "```python\ndef add(a, b):\n    return a - b\n```")
    assert not wrong.passed and wrong.status == "failed" and "AssertionError" in wrong.stderr
    slow = McEval({"language": "Python", "timeout_scale": 0.1})
    hang = _run(slow, item, "```python\ndef add(a, b):\n    while True:\n        pass\n```")
    assert not hang.passed and hang.status == "timeout"


def test_c_compile_error_and_assert_failure_fail() -> None:
    task = McEval({"language": "C"})
    item = _item(ROW_C)
    assert _run(task, item, task.canonical_reply(item)).passed
    assert _run(task, item, "```c\nint twice(int x) { return x; }\n```").status == "failed"
    broken = _run(task, item, "```c\nint twice(int x) { return x +; }\n```")
    assert broken.status == "failed" and "error" in broken.stderr


@pytest.mark.parametrize("lang", ["Common Lisp", "Shell"])
def test_timeouts_fail_even_where_the_official_harness_passes_them(lang: str) -> None:
    spin = {"Common Lisp": "```lisp\n(defun f () (loop))\n(f)\n```",
            "Shell": "```bash\nf() { while :; do :; done; }\nf\n```"}
    lang_ = LANGS[lang]
    if lang_.missing_tool():
        pytest.skip(f"{lang_.missing_tool()} missing")
    row = {"task_id": f"{lang}/99", "prompt": "", "test": "", "entry_point": "f"}
    task = McEval({"language": lang, "timeout_scale": 0.1})
    out = _run(task, task.item_for(lang, row), spin[lang])
    assert out.status == "timeout" and not out.passed


def test_a_language_without_its_toolchain_is_not_run_never_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    task = McEval({"language": "Julia"})
    item = task.item_for("Julia", {"task_id": "Julia/1", "prompt": "function f()", "test": "@assert f() == 1",
                                   "entry_point": "f"})
    monkeypatch.setattr("llmlab.tasks.mceval.languages.sandbox_which", lambda tool: None)
    score = run_sync(task.ascore(item, "```julia\nf() = 1\n```"))
    assert score.correct is None and score.details["status"] == "not run: julia missing"
    agg = task.aggregate([score])
    assert agg["Julia"] == "not run: julia missing" and agg["pass@1"] is None


def test_several_samples_give_pass_at_k() -> None:
    task = McEval({"language": "Python", "k": (1, 2)})
    item = _item(ROW_PY)
    good, bad = task.canonical_reply(item), "```python\ndef add(a, b):\n    return 0\n```"
    item.metadata["samples"] = [good, bad, bad, good]
    score = run_sync(task.ascore(item, None))
    assert (score.details["n"], score.details["c"]) == (4, 2) and score.value == 0.5
    assert score.details["pass@2"] == pytest.approx(pass_at_k(4, 2, 2))
    assert task.aggregate([score])["Python"]["pass@2"] == pytest.approx(5 / 6)


@pytest.mark.parametrize("lang", ["Kotlin", "Scala", "Groovy"])
def test_jvm_flags_reach_the_sandboxed_jvm(lang: str) -> None:
    # A flag this JVM rejects would fail every item; one that is silently dropped would change nothing.
    from llmlab import sandbox
    from llmlab.tasks.mceval.languages import run_env, sandbox_which

    if sandbox_which("java") is None:
        pytest.skip("java missing")
    res = run_sync(sandbox.run({}, ["bash", "-c", "java $JAVA_OPTS -XX:+PrintFlagsFinal -version"], timeout=60,
                               memory=None, env=run_env(LANGS[lang]),
                               limits=sandbox.Limits(processes=1024, open_files=4096, memory=None)))
    assert res.exit_code == 0, res.stderr[-500:]
    flags = {f[1]: f[3] for f in (ln.split() for ln in res.stdout.splitlines()) if len(f) >= 4 and f[2] == "="}
    assert flags["TieredStopAtLevel"] == "1" and flags["UseSerialGC"] == "true"
    if lang in ("Kotlin", "Scala"):  # the launcher's own -Xmx256M is kept (JAVA_OPTS replaces it)
        assert flags["MaxHeapSize"] == str(256 << 20)


ROW_GROOVY = {
    "task_id": "Groovy/99", "entry_point": "twice", "signature": "int twice(int x)",
    "prompt": "class Twice {\n    static int twice(int x)", "canonical_solution": " {\n        return 2 * x\n    }\n}",
    "test": "assert Twice.twice(21) == 42\nassert Twice.twice(0) == 0",
    "instruction": "Write a Groovy function `int twice(int x)`.",
}


def test_groovy_canonical_passes_and_a_wrong_answer_fails_with_the_jvm_flags() -> None:
    task = McEval({"language": "Groovy"})
    if LANGS["Groovy"].missing_tool():
        pytest.skip(f"{LANGS['Groovy'].missing_tool()} missing")
    item = _item(ROW_GROOVY)
    good = _run(task, item, task.canonical_reply(item))
    assert good.passed, good.stderr[-500:]
    bad = _run(task, item, "```groovy\nclass Twice {\n    static int twice(int x) { return x }\n}\n```")
    assert bad.status == "failed" and "Assertion failed" in bad.stderr
    # `list.size` without parentheses: ArrayList's private field, readable only with java.util opened
    size = _run(task, item, "```groovy\nclass Twice {\n    static int twice(int x) { return [x, x].size * x }\n}\n```")
    assert size.passed, size.stderr[-500:]


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown McEval language"):
        McEval({"language": "Cobol"})


# --- real data -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["Python", "JSON", "HTML", "Markdown", "AWK", "Shell"])
def test_canonical_solutions_of_real_items_pass(shared_data: Path, lang: str) -> None:
    task = McEval({"language": lang, "limit": 2})
    if LANGS[lang].missing_tool():
        pytest.skip(f"{LANGS[lang].missing_tool()} missing")
    for item in task.items():
        out = _run(task, item, task.canonical_reply(item))
        assert out.passed, (item.id, out.status, out.stderr[-500:])


def test_real_item_with_wrong_answer_fails(shared_data: Path) -> None:
    task = McEval({"language": "Python", "limit": 1})
    (item,) = list(task.items())
    out = _run(task, item, "```python\n" + item.metadata["row"]["signature"] + "\n    return None\n```")
    assert not out.passed and out.status == "failed"


def test_score_predictions_file_in_the_official_format(shared_data: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from llmlab.cli import cli

    task = McEval({"language": "Python", "limit": 4})
    items = list(task.items())
    lines = []
    for i, item in enumerate(items):
        gen = task.canonical_reply(item) if i % 2 == 0 else "```python\nprint('no function')\n```"
        lines.append(json.dumps({**item.metadata["row"], "raw_generation": [gen]}))
    lines.append(json.dumps({"task_id": items[0].id, "raw_generation": [task.canonical_reply(items[0])]}))
    path = tmp_path / "Python.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scored.jsonl"
    res = CliRunner().invoke(cli, ["score", "mceval", "--predictions", str(path), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    agg = json.loads(res.output)
    assert agg["Python"]["items"] == 5 and agg["Python"]["pass@1"] == pytest.approx(3 / 5)
    assert [json.loads(x)["correct"] for x in out.read_text().splitlines()] == [True, False, True, False, True]


def test_bad_prediction_lines_name_the_line(shared_data: Path) -> None:
    task = McEval({"language": "Python"})
    with pytest.raises(DataError, match="f:3: 'raw_generation'"):
        task.item_from_record({"task_id": "Python/1", "raw_generation": []}, "f:3")
    with pytest.raises(DataError, match="not in the McEval data"):
        task.item_from_record({"task_id": "Python/9999", "raw_generation": ["x"]}, "f:4")


CANON: dict[str, str] = {}


def canonical_or_wrong(request: Any, index: int) -> str:
    """Mock model: the canonical answer for even items, a wrong one for odd ones (control flow only)."""
    if not CANON:
        task = McEval({"language": "Python", "limit": 6})
        for i, item in enumerate(task.items()):
            wrong = "```python\ndef nope():\n    return 1\n```"
            CANON[item.input] = task.canonical_reply(item) if i % 2 == 0 else wrong
    return CANON[request.messages[-1].content]


def test_eval_goes_through_the_run_store_and_resumes(shared_data: Path, tmp_path: Path) -> None:
    from llmlab.runner import EvalSpec, run_eval

    spec = EvalSpec(task="mceval", method="direct", model_spec="mock:py=tests.tasks.test_mceval:canonical_or_wrong",
                    runs_dir=str(tmp_path), run_id="m1", concurrency=2, task_params=("language=Python", "limit=6"))
    summary = run_eval(spec)
    assert summary.n_scored == 6 and summary.aggregate["Python"]["pass@1"] == pytest.approx(0.5)
    from llmlab.core.runstore import RunStore

    store = RunStore(tmp_path / "m1")
    rows = list(store.rows())
    store.close()
    failed = [r for r in rows if not r.correct]
    assert len(rows) == 6 and len(failed) == 3
    assert all(r.details["outcomes"][0]["stderr"] for r in failed)  # excerpt of the failure
    again = run_eval(spec)
    assert again.new_items == 0 and again.aggregate["Python"]["pass@1"] == pytest.approx(0.5)


# --- the slow per-language sweep ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("lang", [n for n, lang in LANGS.items()])
def test_canonical_pass_rate_per_language(shared_data: Path, lang: str) -> None:
    """Positive control, as docs/mceval.md states it: >= 95% canonical pass where the toolchain exists, and
    a missing toolchain is reported as not run."""
    from llmlab.tasks.mceval.cli import canonical_sweep

    (row,) = run_sync(canonical_sweep([lang], timeout_scale=2.0))
    if LANGS[lang].kind == "exec" and LANGS[lang].missing_tool():
        assert row["ran"] == 0 and row["status"].startswith("not run:")
        return
    assert row["passed"] / row["ran"] >= KNOWN_FLOOR.get(lang, 0.95), [
        o for o in row["outcomes"] if not o["passed"]]


# Languages below 95% for reasons explained item by item in docs/mceval.md.
# Debian's Kotlin 1.3 is older than the data: 42/50 (docs/mceval.md lists the 8 items, each an API or
# syntax of Kotlin 1.4/1.5 or a script-mode limit of 1.3).
KNOWN_FLOOR: dict[str, float] = {"Kotlin": 0.84}


def test_no_extractable_code_fails_instead_of_running_the_placeholder() -> None:
    task = McEval({"language": "Python"})
    out = _run(task, _item(ROW_PY), "```python\nprint('no function here')\n```")
    assert not out.passed and out.status == "no code extracted"


def test_cli_lists_toolchains_and_dry_run_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from llmlab.tasks.mceval.cli import mceval

    monkeypatch.setattr("llmlab.tasks.mceval.languages.sandbox_which",
                        lambda tool: None if tool == "julia" else f"/usr/bin/{tool}")
    res = CliRunner().invoke(mceval, ["toolchains"])
    assert res.exit_code == 0 and "Julia          not run: julia missing" in res.output
    assert "Python         ok" in res.output and "JSON           reference comparison" in res.output
    res = CliRunner().invoke(mceval, ["setup", "--dry-run", "-l", "Rust", "-l", "Go"])
    assert res.exit_code == 0, res.output
    assert ("apt-get install -y --no-install-recommends bubblewrap rustc golang-go "
            "golang-github-stretchr-testify-dev") in res.output
    assert CliRunner().invoke(mceval, ["setup", "-l", "Cobol"]).exit_code != 0


def test_cli_canonical_prints_the_table(shared_data: Path) -> None:
    from click.testing import CliRunner

    from llmlab.tasks.mceval.cli import mceval

    res = CliRunner().invoke(mceval, ["canonical", "-l", "Python", "-l", "JSON", "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert "| Python | 2 | 2/2 (100.0%) |" in res.output and "| JSON | 2 | 2/2 (100.0%) |" in res.output


def test_sandbox_which_remembers_a_found_tool_and_sees_one_installed_or_removed_later(tmp_path, monkeypatch) -> None:
    from llmlab.tasks.mceval.languages import sandbox_which

    monkeypatch.setenv("PATH", str(tmp_path))
    assert sandbox_which("mytool") is None
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert sandbox_which("mytool") == str(tool)  # installed after a miss: found
    assert sandbox_which("mytool") == str(tool)  # remembered
    tool.unlink()
    assert sandbox_which("mytool") is None  # a remembered path that is gone is looked up again
