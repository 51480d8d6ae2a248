"""Runs end to end: transcripts stored by ``eval``, error bars in ``report``, ``compare`` and the eval matrix."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.base import GenerateRequest, image_part
from llmlab.backends.mock import MockBackend
from llmlab.cli import main
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Item, Query, Roles, Score, Solution
from llmlab.core.errors import ConfigError
from llmlab.core.registry import BACKENDS, METHODS, TASKS
from llmlab.core.runstore import RunStore
from llmlab.methods.base import Method
from llmlab.runner import EvalSpec, report, run_eval
from llmlab.stats.inference import mean_se
from llmlab.stats.runs import compare_runs
from llmlab.tasks.base import Task, TaskConfig
from tests.helpers.runs import png


class RephrasedConfig(TaskConfig):
    n: int = 12


class Rephrased(Task):
    """Item ``k-j`` is rephrasing ``j`` of question ``k`` (3 per question): 'double k'; clusters by question."""

    name = "rephrased"
    Config = RephrasedConfig

    def items(self) -> Any:
        for i in range(self.config.n):
            k, j = divmod(i, 3)
            yield Item(id=f"{k}-{j}", input=k, target=2 * k, metadata={"question": str(k)})

    def prompt(self, item: Item) -> Query:
        return Query.from_text(f"rephrasing {item.id.split('-')[1]}: double {item.input}")

    def score(self, item: Item, answer: str | None) -> Score:
        ok = answer is not None and answer.strip() == str(item.target)
        return Score(float(ok), ok, answer, cluster=str(item.metadata["question"]))


TASKS.register("rephrased", Rephrased)


class LookConfig(LabConfig):
    pass


class Look(Method):
    """Sends the question with an image attached (a multimodal call), then answers."""

    name = "look"
    Config = LookConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        msgs = [{"role": "user", "content": [{"type": "text", "text": query.text}, image_part(png())]}]
        text = (await roles.default.generate(GenerateRequest.chat(msgs, temperature=0.0))).text
        return Solution(text, text.strip())


METHODS.register("look", Look)

KEPT: list[Solution] = []


class Keep(Method):
    """Direct, keeping each Solution object so a test can see what the runner filled in."""

    name = "keep"
    Config = LookConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        text = await roles.default.chat(list(query.messages), temperature=0.0)
        sol = Solution(text, text.strip())
        KEPT.append(sol)
        return sol


METHODS.register("keep", Keep)


class VisionMock(MockBackend):
    """The mock with image inputs allowed (the stock mock refuses them)."""

    name = "mockvision"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.capabilities = dataclasses.replace(self.capabilities, images=True)


BACKENDS.register("mockvision", VisionMock)


def good(request: Any, index: int) -> str:
    """Doubles, except for question 1 (all its rephrasings wrong): errors correlated within a question."""
    k = int(request.messages[-1].text.split()[-1])
    return "wrong" if k == 1 else str(2 * k)


def worse(request: Any, index: int) -> str:
    k = int(request.messages[-1].text.split()[-1])
    return "wrong" if k in (1, 2) else str(2 * k)


def crash(request: Any, index: int) -> str:
    k = int(request.messages[-1].text.split()[-1])
    if k == 2:
        raise RuntimeError("the model exploded on question 2")
    return str(2 * k)


def _spec(tmp_path: Path, run_id: str, fn: str = "good", **kw: Any) -> EvalSpec:
    base: dict[str, Any] = dict(task="rephrased", method="direct", model_spec=f"mock:py=tests.stats.test_runs:{fn}",
                                runs_dir=str(tmp_path), run_id=run_id, concurrency=3)
    base.update(kw)
    return EvalSpec(**base)


def test_eval_stores_each_items_transcript_and_fills_solution_calls(tmp_path: Path) -> None:
    s = run_eval(_spec(tmp_path, "a", method="keep"))
    store = RunStore(tmp_path / "a", readonly=True)
    assert store.n_transcribed() == 12 == s.calls
    (call,) = store.calls("2-1")
    assert call.request["messages"] == [{"role": "user", "content": "rephrasing 1: double 2"}]
    assert call.request["params"]["temperature"] == 0.0
    assert call.response is not None and call.response["texts"] == ["4"]
    assert call.response["finish_reasons"] == ["stop"]
    row = store.row("2-1")
    assert row is not None and row.cluster == "2" and row.target == 4
    assert row.query == [{"role": "user", "content": "rephrasing 1: double 2"}]
    store.close()
    # the runner filled Solution.calls from the same recorder
    (sol,) = [x for x in KEPT if x.text == "4" and x.calls and "rephrasing 1" in str(x.calls[0].request)]
    (trace,) = sol.calls
    assert trace.request == call.request and trace.response == call.response and trace.model == "mock-good"


def test_no_transcripts_keeps_rows_but_no_calls(tmp_path: Path) -> None:
    run_eval(_spec(tmp_path, "a", transcripts=False))
    store = RunStore(tmp_path / "a", readonly=True)
    assert store.n_transcribed() == 0 and store.count() == 12
    assert store.row("0-0").query is None  # type: ignore[union-attr]
    store.close()


def test_images_sent_by_a_method_are_stored_once_per_run(tmp_path: Path) -> None:
    run_eval(_spec(tmp_path, "img", method="look", model_spec="mockvision:text=4"))
    store = RunStore(tmp_path / "img", readonly=True)
    parts = [store.calls(f"{k}-{j}")[0].request["messages"][0]["content"][1] for k in range(4) for j in range(3)]
    assert {p["type"] for p in parts} == {"image_ref"} and len({p["sha256"] for p in parts}) == 1
    assert store.blob(parts[0]["sha256"]) == ("image/png", png())
    store.close()


def test_report_gives_clustered_se_and_ci(tmp_path: Path) -> None:
    s = run_eval(_spec(tmp_path, "a"))
    est = s.estimates["accuracy"]
    values = [0.0 if k == 1 else 1.0 for k in range(4) for _ in range(3)]
    expected = mean_se(values, [str(k) for k in range(4) for _ in range(3)])
    assert est == expected and est.clustered and est.n_clusters == 4
    assert est.se is not None and est.se > mean_se(values).se  # type: ignore[operator]
    d = json.loads(report("a", str(tmp_path), as_json=True))
    assert d["stderr"]["accuracy"]["se"] == pytest.approx(est.se)
    assert d["stderr"]["accuracy"]["ci_low"] == pytest.approx(0.75 - 1.959963984540054 * est.se)
    text = report("a", str(tmp_path))
    assert "accuracy ± 95% CI" in text and "n=12 in 4 clusters" in text


def test_compare_pairs_shared_items(tmp_path: Path) -> None:
    run_eval(_spec(tmp_path, "a"))
    run_eval(_spec(tmp_path, "b", fn="worse", limit=9))  # B has only 9 of the 12 items
    c = compare_runs("a", "b", tmp_path)
    assert c.metric == "accuracy" and len(c.item_ids) == 9
    assert c.result.diff.mean == pytest.approx(1 / 3)  # question 2's three rephrasings
    assert c.result.a_only == 3 and c.result.b_only == 0
    assert c.result.diff.clustered and c.result.diff.n_clusters == 3
    assert [i for i, _, _ in c.differing()] == ["2-0", "2-1", "2-2"]
    assert math.isclose(c.result.mcnemar_p, 0.25)  # type: ignore[arg-type]


def test_compare_refuses_different_tasks_and_disjoint_runs(tmp_path: Path, capsys: Any) -> None:
    run_eval(_spec(tmp_path, "a", limit=3))
    run_eval(EvalSpec(task="rephrased", method="direct", model_spec="mock:text=0", runs_dir=str(tmp_path),
                      run_id="c", task_params=["n=3"], limit=3))
    from tests.test_runner import Toy  # noqa: F401  (registers the toy task)

    run_eval(EvalSpec(task="toy", model_spec="mock:echo", runs_dir=str(tmp_path), run_id="t", limit=2))
    with pytest.raises(ConfigError, match="different tasks"):
        compare_runs("a", "t", tmp_path)
    assert main(["compare", "a", "t", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different tasks" in err
    # same task, but no shared item scored without error
    store = RunStore(tmp_path / "c")
    for r in list(store.rows()):
        r.error = "BackendError: down"
        store.write(r)
    store.close()
    with pytest.raises(ConfigError, match="share no items"):
        compare_runs("a", "c", tmp_path)
    store = RunStore(tmp_path / "c")
    for r in list(store.rows()):
        r.error = None
        store.write(r)
    store.close()
    assert compare_runs("a", "c", tmp_path).notes == ["the runs' task settings differ (n); items are paired by id"]
    assert compare_runs("a", "a", tmp_path).notes == []
    assert main(["compare", "a", "nope", "--runs-dir", str(tmp_path)]) == 2


def test_compare_cli_prints_difference_ci_and_tests(tmp_path: Path, capsys: Any) -> None:
    run_eval(_spec(tmp_path, "a"))
    run_eval(_spec(tmp_path, "b", fn="worse"))
    assert main(["compare", "a", "b", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "A − B = +0.2500 ±" in out and "paired t =" in out and "McNemar exact" in out
    assert main(["compare", "a", "b", "--runs-dir", str(tmp_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["shared_items"] == 12 and d["differing_items"] == ["2-0", "2-1", "2-2"]


def test_eval_matrix_runs_every_cell_with_one_table(tmp_path: Path, capsys: Any) -> None:
    from tests.test_runner import Toy  # noqa: F401

    argv = ["eval", "rephrased,toy", "--model", "mock:py=tests.stats.test_runs:good", "--model", "mock:text=0",
            "--runs-dir", str(tmp_path), "--limit", "6", "--no-progress", "--run-id", "m"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "eval matrix (2 tasks × 2 models" in out
    cells = sorted(p.name for p in tmp_path.iterdir())
    assert cells == ["m-rephrased-m0", "m-rephrased-m1", "m-toy-m0", "m-toy-m1"]
    man = json.loads((tmp_path / "m-toy-m1" / "manifest.json").read_text())
    assert man["task"] == "toy" and man["model"] == "mock:text=0"
    assert "0.500 ± 0.716" in out  # rephrased × good: question 0 right, 1 wrong (2 clusters of 3)
    assert "0.833 ± 0.327" in out  # toy × good: 5 of 6
    # the same matrix again resumes every cell: no new items
    assert main(argv) == 0
    for cell in cells:
        assert RunStore(tmp_path / cell, readonly=True).count() == 6
    # an unknown task stops the matrix before any cell runs
    assert main(["eval", "rephrased,nosuch", "--model", "mock:echo", "--runs-dir", str(tmp_path / "x"),
                 "--no-progress"]) == 2
    assert not (tmp_path / "x").exists()


def test_single_eval_is_unchanged(tmp_path: Path, capsys: Any) -> None:
    assert main(["eval", "rephrased", "--model", "mock:py=tests.stats.test_runs:good", "--runs-dir", str(tmp_path),
                 "--run-id", "one", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "run one" in out and "eval matrix" not in out and [p.name for p in tmp_path.iterdir()] == ["one"]


def test_an_item_that_raised_keeps_its_traceback_and_the_failed_call(tmp_path: Path) -> None:
    s = run_eval(_spec(tmp_path, "a", fn="crash"))
    assert s.n_errors == 3 and s.estimates["accuracy"].n == 9
    store = RunStore(tmp_path / "a", readonly=True)
    row = store.row("2-1")
    assert row is not None and row.error is not None and row.error.startswith("RuntimeError")
    assert row.traceback is not None and "the model exploded" in row.traceback and "Traceback" in row.traceback
    assert row.query == [{"role": "user", "content": "rephrasing 1: double 2"}]
    (call,) = store.calls("2-1")
    assert call.response is None and call.error == "RuntimeError: the model exploded on question 2"
    assert call.request["messages"][0]["content"] == "rephrasing 1: double 2"
    store.close()


def test_oracle_runs_never_report_an_accuracy_with_error_bars(tmp_path: Path) -> None:
    """A run whose answers used the ground truth: its estimates are oracle_* like its aggregate."""
    from tests.helpers.runs import make_run

    make_run(tmp_path, "o", {"q0": True, "q1": False, "q2": True}, task="rephrased",
             manifest={"answer_uses_ground_truth": True})
    d = json.loads(report("o", str(tmp_path), as_json=True))
    assert set(d["stderr"]) == {"oracle_score", "oracle_accuracy"}
    assert "accuracy" not in d["aggregate"] and d["stderr"]["oracle_accuracy"]["mean"] == pytest.approx(2 / 3)


def test_view_command_errors_are_one_line(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("fastapi")
    assert main(["view", "--runs-dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
