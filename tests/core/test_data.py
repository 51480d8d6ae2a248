"""Data resolution order: explicit dir, LLMLAB_DATA_DIR, cache, official source (never ../shared/data)."""

import http.server
import threading

import pytest

from llmlab.core import data
from llmlab.core.errors import DataError


def make(root, name="ds", file="f.txt", text="x"):
    p = root / name / file
    p.parent.mkdir(parents=True)
    p.write_text(text)
    return p


def test_explicit_dir_wins_and_is_the_only_place_searched(tmp_path, monkeypatch):
    a = make(tmp_path / "a", text="a")
    make(tmp_path / "env", text="env")
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(tmp_path / "env"))
    assert data.find_data("ds", "f.txt", data_dir=tmp_path / "a") == a
    with pytest.raises(DataError, match=r"looked in: .*empty"):
        data.find_data("ds", "f.txt", data_dir=tmp_path / "empty")


def test_env_then_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared/data beside this cwd
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    cached = make(tmp_path / "cache" / "data", text="cache")
    assert data.find_data("ds", "f.txt", download=False) == cached
    env = make(tmp_path / "env", text="env")
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(tmp_path / "env"))
    assert data.find_data("ds", "f.txt", download=False) == env


def test_missing_everywhere_is_one_line_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    with pytest.raises(DataError) as exc:
        data.find_data("nothing", "f.txt", download=False)
    assert "--data-dir" in str(exc.value) and "\n" not in str(exc.value)


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_from_official_source_into_cache_once(tmp_path, monkeypatch, http_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(data.OFFICIAL_SOURCES, "remote", {"test.jsonl": f"{http_dir}/test.jsonl"})
    path = data.find_data("remote", "test.jsonl", download=True)
    assert path == tmp_path / "cache" / "data" / "remote" / "test.jsonl" and "#### 1" in path.read_text()
    monkeypatch.setitem(data.OFFICIAL_SOURCES, "remote", {"test.jsonl": f"{http_dir}/gone.jsonl"})
    assert data.find_data("remote", "test.jsonl", download=True) == path  # served from the cache now


def test_failed_download_leaves_no_partial_file(tmp_path, monkeypatch, http_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(data.OFFICIAL_SOURCES, "remote", {"x.jsonl": f"{http_dir}/missing.jsonl"})
    with pytest.raises(DataError, match="could not download"):
        data.find_data("remote", "x.jsonl", download=True)
    assert not list((tmp_path / "cache").rglob("x.jsonl*"))


def test_offline_env_disables_download(tmp_path, monkeypatch, http_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("LLMLAB_OFFLINE", "1")
    monkeypatch.setitem(data.OFFICIAL_SOURCES, "remote", {"test.jsonl": f"{http_dir}/test.jsonl"})
    with pytest.raises(DataError):
        data.find_data("remote", "test.jsonl")


def test_the_repository_test_layout_is_never_searched(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    make(tmp_path / "shared" / "data", name="ds")  # ../shared/data beside the cwd
    monkeypatch.chdir(work)
    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    with pytest.raises(DataError):
        data.find_data("ds", "f.txt", download=False)


def test_hub_datasets_come_through_huggingface_hub_and_fail_at_once_offline(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    monkeypatch.setitem(data.OFFICIAL_SOURCES, "hubby", {"hf_repo": "someone/hubby", "files": {"test.jsonl":
                                                                                             "data/test.jsonl"}})
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **kw: calls.append(a))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as exc:
        data.find_data("hubby", "test.jsonl")
    assert calls == []  # offline: no hub call at all, so no retry wait
    assert "offline" in str(exc.value) and "--data-dir" in str(exc.value) and "\n" not in str(exc.value)

    # online: hf_hub_download is what fetches it (stubbed: this machine has no hub access)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("LLMLAB_OFFLINE", raising=False)
    got = tmp_path / "hub" / "test.jsonl"
    got.parent.mkdir()
    got.write_text("{}\n")

    def fake_download(repo, filename, **kw):
        calls.append((repo, filename, kw["repo_type"]))
        return str(got)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path = data.find_data("hubby", "test.jsonl")
    assert calls == [("someone/hubby", "data/test.jsonl", "dataset")]
    assert path.read_text() == "{}\n" and path.is_relative_to(data.cache_dir())
