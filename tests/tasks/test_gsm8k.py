from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import llmlab.core.data as data_mod
from llmlab.core.contracts import Item
from llmlab.core.errors import ConfigError, DataError
from llmlab.core.registry import TASKS
from llmlab.grading.math_answers import extract_gsm8k_answer
from llmlab.tasks.gsm8k import GSM8K, load_gsm8k

ROWS = [
    {"question": "Tom has 2 apples and buys 3 more. How many apples?", "answer": "2+3=<<2+3=5>>5\n#### 5"},
    {"question": "A pen costs $1,200.50. What do 2 cost?", "answer": "2*1200.5=<<2*1200.5=2401>>2401\n#### 2,401"},
    {"question": "It was 3 degrees and fell by 7. What is it now?", "answer": "3-7=-4\n#### -4"},
]


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.fixture
def small_dir(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", ROWS)
    write_jsonl(tmp_path / "gsm8k" / "train.jsonl", ROWS)
    return tmp_path


def score_file(task: GSM8K, path: Path) -> dict[str, Any]:
    """What `llmlab score` does with a predictions file: item_from_record + score + aggregate."""
    scores = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        item, prediction = task.item_from_record(json.loads(line), f"{path}:{lineno}")
        scores.append(task.score(item, prediction))
    return task.aggregate(scores)


# -- on the real data --------------------------------------------------------------------------------


def test_real_test_split(shared_data: Path) -> None:
    task = GSM8K({"data_dir": str(shared_data)})
    items = list(task.items())
    assert len(items) == 1319
    assert items[0].id == "test-0" and items[-1].id == "test-1318"
    assert items[0].target == "18"
    assert [i.id for i in task.items()] == [i.id for i in items]  # stable order


@pytest.mark.parametrize(("split", "n"), [("test", 1319), ("train", 7473), ("test_socratic", 1319)])
def test_every_real_reference_parses(shared_data: Path, split: str, n: int) -> None:
    # load_gsm8k raises DataError on any row whose "####" line does not parse.
    rows = load_gsm8k(shared_data / "gsm8k" / f"{split}.jsonl")
    assert len(rows) == n
    for row in rows:
        assert row["reference"] == extract_gsm8k_answer(row["answer"].rsplit("####", 1)[1])


def test_golden_solutions_score_one_on_the_whole_test_split(shared_data: Path) -> None:
    task = GSM8K({"data_dir": str(shared_data)})
    scores = [task.score(item, item.metadata["solution"]) for item in task.items()]
    report = task.aggregate(scores)
    assert report["n"] == 1319
    assert report["accuracy"] == 1.0 and report["no_answer"] == 0


def test_known_wrong_predictions_score_the_hand_count(shared_data: Path, tmp_path: Path) -> None:
    task = GSM8K({"data_dir": str(shared_data)})
    rows = task.rows("test")[:10]
    predictions = [
        ("She sells 9 eggs at $2 each, so she makes $18.00 a day.\n#### 18", True),
        ("It takes 2 + 1 = 3 bolts. The answer is 3.", True),
        ("The profit is $70,000.", True),
        ("He runs 3*3*60 = 540 meters.\n#### 520", False),  # the marker says 520
        ("She needs \\boxed{20} cups.", True),
        ("**Answer:** 64 dollars", True),
        ("Total 260? No, that double counts; the answer is 250.", False),
        ("It takes 160 minutes, i.e. 2 hours and 40 minutes", False),  # no marker: last number 40
        ("He is 45 miles from home.\n\nThe answer is 45.0", True),
        ("I cannot solve this.", False),
    ]
    lines = []
    for i, (row, (pred, _)) in enumerate(zip(rows, predictions, strict=True)):
        # Mix the accepted reference forms: dataset answer text, a bare number string, a JSON number.
        reference: Any = row["answer"] if i < 4 else row["answer"].rsplit("####", 1)[1].strip()
        if i == 9:
            reference = int(reference)
        lines.append({"question": row["question"], "reference": reference, "prediction": pred})
    path = write_jsonl(tmp_path / "preds.jsonl", lines)
    report = score_file(task, path)
    hand_count = sum(ok for _, ok in predictions)
    assert hand_count == 6
    assert report["n"] == 10
    assert report["accuracy"] == pytest.approx(hand_count / 10)
    assert report["no_answer"] == 1


# -- prompts and scoring ---------------------------------------------------------------------------


def test_registered() -> None:
    assert TASKS.get("gsm8k") is GSM8K


def test_prompt_zero_shot(small_dir: Path) -> None:
    task = GSM8K({"data_dir": str(small_dir)})
    item = next(iter(task.items()))
    query = task.prompt(item)
    assert len(query.messages) == 1 and query.messages[0].role == "user"
    assert "#### <number>" in query.text and item.input in query.text
    assert query.extract is not None and query.extract("so\n#### 5") == "5"
    assert query.metadata["item_id"] == "test-0"
    assert "5" not in query.text.replace(item.input, "")  # the reference is not leaked into the prompt


def test_prompt_n_shot_uses_train_and_never_the_item_itself(small_dir: Path) -> None:
    task = GSM8K({"data_dir": str(small_dir), "n_shot": 2, "system": "Be brief."})
    query = task.prompt(next(iter(task.items())))
    roles = [m.role for m in query.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert query.messages[2].content == "2+3=5\n#### 5"  # calculator annotation removed
    train = GSM8K({"data_dir": str(small_dir), "split": "train", "n_shot": 2})
    first = next(iter(train.items()))
    shots = [m.content for m in train.prompt(first).messages[:-1] if m.role == "user"]
    assert len(shots) == 2 and all(first.input not in s for s in shots)


def test_score_accepts_free_text_or_extracted(small_dir: Path) -> None:
    task = GSM8K({"data_dir": str(small_dir)})
    items = list(task.items())
    assert items[1].target == "2401"
    assert task.score(items[1], "Two pens cost $2,401.00.").correct
    assert task.score(items[1], "2401").correct
    assert task.score(items[2], "It is now -4 degrees.").correct
    s = task.score(items[2], "It is now 4 degrees.")
    assert s.value == 0.0 and s.correct is False and s.extracted == "4"
    none = task.score(items[0], None)
    assert none.correct is False and none.extracted is None


def test_bad_config_is_one_line() -> None:
    with pytest.raises(ConfigError, match="split"):
        GSM8K({"split": "dev"})
    with pytest.raises(ConfigError, match="unknown key 'shots'"):
        GSM8K({"shots": 3})


# -- malformed data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"answer": "#### 1"}), "'question' is missing"),
        (json.dumps({"question": "q?"}), "'answer' is missing"),
        (json.dumps({"question": "q?", "answer": 5}), "'answer' is not a string"),
        (json.dumps({"question": "q?", "answer": "it is 5"}), "no final '#### <number>'"),
        (json.dumps({"question": "q?", "answer": "#### five"}), "no final '#### <number>'"),
        (json.dumps(["q?", "#### 1"]), "expected a JSON object"),
    ],
)
def test_malformed_data_file_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = write_jsonl(tmp_path / "gsm8k" / "test.jsonl", [ROWS[0], "", bad_line])
    task = GSM8K({"data_dir": str(tmp_path)})
    with pytest.raises(DataError) as err:
        list(task.items())
    text = str(err.value)
    assert text.startswith(f"{path}:3: ") and message in text
    assert "\n" not in text


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"gsm8k/test\.jsonl not found"):
        list(GSM8K({"data_dir": str(tmp_path)}).items())


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"reference": "#### 1", "prediction": "1"}, "missing 'question'"),
        ({"question": "q", "prediction": "1"}, "missing 'reference'"),
        ({"question": "q"}, "missing 'reference', 'prediction'"),
        ({"question": "q", "reference": "no number", "prediction": "1"}, "'reference' must be"),
        ({"question": "q", "reference": "5 apples", "prediction": "1"}, "'reference' must be"),
        ({"question": "q", "reference": True, "prediction": "1"}, "'reference' must be"),
        ({"question": "q", "reference": "5", "prediction": None}, "'prediction' must be a string"),
        ({"question": 3, "reference": "5", "prediction": "5"}, "'question' must be a string"),
    ],
)
def test_item_from_record_errors_name_the_line(record: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError) as err:
        GSM8K().item_from_record(record, "preds.jsonl:7")
    assert str(err.value).startswith("preds.jsonl:7: ") and message in str(err.value)


def test_item_from_record_forms() -> None:
    task = GSM8K()
    item, pred = task.item_from_record({"question": "q", "reference": "x\n#### 1,600", "prediction": 1600}, "f:1")
    assert isinstance(item, Item) and item.target == "1600" and pred == "1600"
    assert task.score(item, pred).correct
    item, _ = task.item_from_record({"id": 9, "question": "q", "reference": 2.5, "prediction": "x"}, "f:2")
    assert item.id == "9" and item.target == "2.5"


# -- the official-source download path -------------------------------------------------------------


@pytest.fixture
def local_source(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server holding a small test.jsonl; yields (base URL, paths requested)."""
    body = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path != "/test.jsonl":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_official_source_then_cache(
    local_source: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, hits = local_source
    monkeypatch.setitem(
        data_mod.OFFICIAL_SOURCES,
        "gsm8k",
        {"test.jsonl": f"{base}/test.jsonl", "train.jsonl": f"{base}/missing.jsonl"},
    )
    for var in ("LLMLAB_OFFLINE", "HF_HUB_OFFLINE", "LLMLAB_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "elsewhere" / "work"  # no ../shared/data beside it
    work.mkdir(parents=True)
    monkeypatch.chdir(work)

    first = [i.target for i in GSM8K().items()]
    assert first == ["5", "2401", "-4"]
    assert hits == ["/test.jsonl"]
    cached = data_mod.cache_dir() / "gsm8k" / "test.jsonl"
    assert cached.exists() and not cached.with_suffix(".jsonl.part").exists()

    second = [i.target for i in GSM8K().items()]  # a new task: must read the cache, not the server
    assert second == first and hits == ["/test.jsonl"]

    with pytest.raises(DataError, match="could not download"):
        GSM8K({"split": "train"}).rows("train")
    assert not (data_mod.cache_dir() / "gsm8k" / "train.jsonl").exists()
