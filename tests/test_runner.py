"""The eval runner on a toy task: rows, resume, per-item accounting, errors, report, score files."""

import json

import pytest

from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import ConfigError, DataError
from llmlab.core.registry import TASKS
from llmlab.runner import EvalSpec, report, run_eval, score_file
from llmlab.tasks.base import Task, TaskConfig


class ToyConfig(TaskConfig):
    n: int = 10


class Toy(Task):
    """Item i asks 'double i'; the answer is 2i."""

    name = "toy"
    Config = ToyConfig

    def items(self):
        for i in range(self.config.n):
            yield Item(id=f"toy-{i}", input=i, target=2 * i, metadata={"parity": "even" if i % 2 == 0 else "odd"})

    def prompt(self, item):
        return Query.from_text(f"double {item.input}")

    def score(self, item, answer):
        ok = answer is not None and answer.strip() == str(item.target)
        return Score(1.0 if ok else 0.0, ok, answer, {"parity": item.metadata["parity"]})

    def aggregate(self, scores):
        out = super().aggregate(scores)
        by = {}
        for s in scores:
            by.setdefault(s.details["parity"], []).append(s.value)
        out["by_parity"] = {k: sum(v) / len(v) for k, v in by.items()}
        return out

    def item_from_record(self, record, where):
        if "i" not in record or "prediction" not in record:
            raise DataError(f"{where}: needs keys 'i' and 'prediction'")
        i = int(record["i"])
        return Item(id=str(i), input=i, target=2 * i, metadata={"parity": "even"}), record["prediction"]


TASKS.register("toy", Toy)


def doubler(request, index):
    n = int(request.messages[-1].content.split()[-1])
    return str(2 * n) if n != 3 else "wrong"


def spec(tmp_path, **kw):
    base = dict(task="toy", method="direct", model_spec="mock:py=tests.test_runner:doubler", runs_dir=str(tmp_path),
                run_id="r1", concurrency=4)
    base.update(kw)
    return EvalSpec(**base)


def test_eval_scores_every_item_once_and_accounts_calls(tmp_path):
    s = run_eval(spec(tmp_path))
    assert s.n_items == 10 and s.n_scored == 10 and s.n_errors == 0 and s.calls == 10
    assert s.aggregate["accuracy"] == pytest.approx(0.9)  # item 3 is answered wrong
    assert s.aggregate["by_parity"] == {"even": 1.0, "odd": 0.8}
    manifest = json.loads((tmp_path / "r1" / "manifest.json").read_text())
    assert manifest["task"] == "toy" and manifest["method_params"]["temperature"] == 0.0
    assert "python" in manifest["versions"]


def test_resume_calls_only_missing_items(tmp_path):
    first = run_eval(spec(tmp_path, limit=4))
    assert first.new_items == 4
    second = run_eval(spec(tmp_path, limit=10))
    assert second.new_items == 6 and second.n_items == 10 and second.calls == 10
    third = run_eval(spec(tmp_path))
    assert third.new_items == 0


def test_resume_with_other_config_is_refused(tmp_path):
    run_eval(spec(tmp_path, limit=2))
    with pytest.raises(ConfigError, match="use a new --run-id"):
        run_eval(spec(tmp_path, params=["temperature=0.5"]))


def test_failed_items_are_recorded_then_retried_on_resume(tmp_path):
    s = run_eval(spec(tmp_path, model_spec="mock:echo?fail_500=1", max_retries=0))
    assert s.n_errors == 10 and s.n_scored == 0 and "BackendError" in s.errors[0]
    s2 = run_eval(spec(tmp_path, model_spec="mock:echo?fail_500=1", max_retries=0, run_id="r2"))
    assert s2.n_errors == 10
    # same run id, the failing rows are retried (and now a working model is not allowed: model differs)
    with pytest.raises(ConfigError):
        run_eval(spec(tmp_path, run_id="r2"))


def test_report_writes_json_and_png(tmp_path):
    run_eval(spec(tmp_path))
    out = report("r1", str(tmp_path))
    assert "accuracy" in out and (tmp_path / "r1" / "report.json").exists()
    assert (tmp_path / "r1" / "report.png").stat().st_size > 1000
    d = json.loads(report("r1", str(tmp_path), as_json=True))
    assert d["scored"] == 10
    with pytest.raises(ConfigError, match="no run 'nope'"):
        report("nope", str(tmp_path))


def test_score_file_counts_and_writes_back(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"i": 1, "prediction": "2"}\n{"i": 2, "prediction": "5"}\n\n{"i": 3, "prediction": "6"}\n')
    out = tmp_path / "o.jsonl"
    res = json.loads(score_file("toy", str(f), out=str(out), as_json=True))
    assert res["accuracy"] == pytest.approx(2 / 3)
    assert [json.loads(x)["correct"] for x in out.read_text().splitlines()] == [True, False, True]


@pytest.mark.parametrize(
    "content, needle",
    [('{"i": 1, "prediction": "2"}\n{"i": 2\n', "p.jsonl:2: not valid JSON"),
     ('{"prediction": "2"}\n', "p.jsonl:1: needs keys"), ("[1]\n", "expected a JSON object"), ("\n", "no predictions")],
)
def test_score_file_errors_name_file_and_line(tmp_path, content, needle):
    f = tmp_path / "p.jsonl"
    f.write_text(content)
    with pytest.raises(DataError, match=needle):
        score_file("toy", str(f))


# -- Core II: per-item errors, oracle capability, seeds, run ids, identity --------------------------------------


class Fragile(Toy):
    """Scoring item 5 raises a plain ValueError, like a malformed reply a parser did not expect."""

    name = "fragile"

    def score(self, item, answer):
        if item.input == 5:
            raise ValueError("time data '13:00PM' does not match format '%I:%M%p'")
        return super().score(item, answer)


TASKS.register("fragile", Fragile)


def test_an_exception_in_one_item_is_recorded_on_it_and_the_run_goes_on(tmp_path):
    from llmlab.core.runstore import RunStore

    s = run_eval(spec(tmp_path, task="fragile"))
    assert s.n_items == 10 and s.n_scored == 9 and s.n_errors == 1
    assert s.errors[0].startswith("toy-5: ValueError: time data '13:00PM'")
    rows = {r.item_id: r for r in RunStore(tmp_path / "r1").rows()}
    tb = rows["toy-5"].trace["error"]["traceback"]
    assert "Traceback" in tb and "in score" in tb and rows["toy-5"].trace["error"]["type"] == "ValueError"


class AsyncJudged(Toy):
    """A task that can only be scored through a model (its sync score is not there)."""

    name = "async_judged"

    def score(self, item, answer):
        raise AssertionError("the runner must score through ascore")

    async def ascore(self, item, answer, roles):
        return Toy.score(self, item, answer)


TASKS.register("async_judged", AsyncJudged)


def mcts_replies(request, index):
    return "[Analyst] fine [Score] 50"


def test_oracle_methods_are_scored_through_the_async_scorer(tmp_path):
    s = run_eval(spec(tmp_path, task="async_judged", method="mcts_sr", params=["rollouts=1"], limit=2,
                      model_spec="mock:py=tests.test_runner:mcts_replies"))
    assert s.n_errors == 0 and s.n_scored == 2
    assert "oracle_pass_at_k" in s.aggregate and "pass_at_k" not in s.aggregate


def test_seed_reaches_the_backend_and_is_part_of_the_run_identity(tmp_path):
    from llmlab.backends.mock import MockBackend
    from llmlab.runner import build_roles

    roles = build_roles("mock:echo", seed=7)
    assert isinstance(roles.default.backend, MockBackend)
    from llmlab.core.concurrency import run_sync

    run_sync(roles.default.complete("hi"))
    assert roles.default.backend.requests[-1].seed == 7

    run_eval(spec(tmp_path, seed=1, limit=2))
    with pytest.raises(ConfigError, match="seed"):
        run_eval(spec(tmp_path, seed=2, limit=2))


def test_endpoint_url_is_not_part_of_the_identity():
    from llmlab.runner import model_identity

    a = model_identity("openai:Qwen/Qwen2.5-7B@http://gpu1:8000/v1")
    b = model_identity("openai:Qwen/Qwen2.5-7B@http://gpu7:9000/v1,http://gpu8:9000/v1")
    assert a == b == "openai:Qwen/Qwen2.5-7B"
    assert model_identity("mock:echo") == "mock:echo"


def test_run_ids_started_together_are_unique(tmp_path):
    from llmlab.runner import new_run

    ids = {new_run(tmp_path, "gsm8k-direct")[0] for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize("bad", ["../../escaped-run", "", "a/b", "..", "-x", "a\\b"])
def test_a_run_id_is_a_name_never_a_path(tmp_path, bad):
    with pytest.raises(ConfigError, match="not a valid run name"):
        run_eval(spec(tmp_path, run_id=bad))
    assert not (tmp_path.parent / "escaped-run").exists()


class JudgedFile(AsyncJudged):
    name = "judged_file"

    async def ascore(self, item, answer, roles):
        verdict = await roles["judge"].complete(f"is {answer} twice {item.input}?")
        ok = verdict.strip() == "yes"
        return Score(float(ok), ok, answer, {"parity": "even"})


TASKS.register("judged_file", JudgedFile)


def test_score_file_goes_through_the_async_scorer_and_needs_a_judge_for_judge_tasks(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"i": i, "prediction": str(2 * i)}) + "\n" for i in range(4)))
    out = score_file("judged_file", str(preds), roles=["judge=mock:text=yes"], as_json=True)
    assert json.loads(out)["accuracy"] == 1.0
    with pytest.raises(ConfigError, match="--role judge=SPEC"):
        score_file("judged_file", str(preds))


FLAKY = {"on": True}


class Flaky(Toy):
    """Items 3 and 7 fail while FLAKY is on (a transient fault), then score normally."""

    name = "flaky"

    def score(self, item, answer):
        if FLAKY["on"] and item.input in (3, 7):
            raise RuntimeError("transient scorer fault")
        return super().score(item, answer)


TASKS.register("flaky", Flaky)


def test_failed_items_are_retried_on_resume_and_only_they_are_called(tmp_path):
    FLAKY["on"] = True
    try:
        first = run_eval(spec(tmp_path, task="flaky", run_id="flaky"))
        assert first.n_errors == 2 and first.n_scored == 8 and first.calls == 10
        FLAKY["on"] = False
        second = run_eval(spec(tmp_path, task="flaky", run_id="flaky"))
    finally:
        FLAKY["on"] = True
    assert second.new_items == 2  # exactly the failed ones ran again
    assert second.n_errors == 0 and second.n_scored == 10
    assert second.calls == 12  # the failed attempts' calls still count (their spend is not forgotten)
    assert second.aggregate["accuracy"] == pytest.approx(0.9)  # item 3 is answered wrong by the doubler
