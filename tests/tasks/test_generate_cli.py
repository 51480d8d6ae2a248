from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.cli import main
from llmlab.core.registry import GENERATORS
from llmlab.tasks.generate_cli import generate, load_generator
from llmlab.tasks.natural_plan import CalendarScheduling, MeetingPlanning, TripPlanning


@pytest.mark.parametrize(("name", "task", "key"), [
    ("natural_plan.trip", TripPlanning, "cities"),
    ("natural_plan.meeting", MeetingPlanning, "dist_matrix"),
    ("natural_plan.calendar", CalendarScheduling, "num_days"),
])
def test_generate_writes_the_official_layout_that_the_task_reads(name: str, task: type, key: str,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "sub" / "data.json"
    res = CliRunner().invoke(generate, [name, "--n", "7", "--seed", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert isinstance(data, dict) and len(data) == 7  # {example id: record}, as the official files
    first = next(iter(data.values()))
    assert key in first and "golden_plan" in first and "prompt_5shot" in first and "id" not in first
    items = list(task({"data_file": str(out)}).items())
    assert [i.id for i in items] == list(data)
    t = task()
    scores = [t.score(i, "\n".join(i.target) if isinstance(i.target, list) else i.target) for i in items]
    assert all(s.value == 1.0 and s.details["valid"] for s in scores)


def test_generate_is_deterministic_and_applies_knobs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{x}.json" for x in "abc")
    for path, seed in ((a, 3), (b, 3), (c, 4)):
        assert main(["generate", "natural_plan.trip", "--n", "5", "--seed", str(seed), "--out", str(path),
                     "-p", "cities=4", "-p", "max_stay=3"]) == 0
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    recs = json.loads(a.read_text()).values()
    assert {r["num_cities"] for r in recs} == {4}
    assert all(max(int(d) for d in r["durations"].split("**")) <= 3 for r in recs)


def test_generate_to_stdout() -> None:
    res = CliRunner().invoke(generate, ["natural_plan.calendar", "--n", "2", "-p", "days=[2,3]"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert list(data) == ["calendar_scheduling_example_0", "calendar_scheduling_example_1"]
    assert all(r["num_days"] in ("2", "3") for r in data.values())


def test_unknown_generator_is_one_line_listing_the_available(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "natural_plan.tripz", "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Unknown generator 'natural_plan.tripz'" in err
    assert all(name in err for name in GENERATORS.names())


def test_bad_knob_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "natural_plan.meeting", "-p", "peple=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown key 'peple'" in err and "people" in err
    assert main(["generate", "natural_plan.meeting", "-p", "people=[5,2]"]) == 2
    assert "lo <= hi" in capsys.readouterr().err


def test_tot_semantic_dispatches_lazily(tmp_path: Path) -> None:
    fn = load_generator("tot_semantic")
    out = tmp_path / "tot.json"
    assert main(["generate", "tot_semantic", "--n", "3", "--seed", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert isinstance(data, list) and data == fn(3, 2)
