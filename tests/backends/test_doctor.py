from __future__ import annotations

import socket
from typing import Any, ClassVar

import anyio
import pytest

from llmlab.backends.base import Backend, Capabilities, GenerateRequest, GenerateResponse
from llmlab.backends.doctor import Check, diagnose, diagnose_backend, render
from llmlab.cli import main


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Limited(Backend):
    """Chat only: one choice whatever n is, no logprobs, no raw completion."""

    name: ClassVar[str] = "limited"

    def __init__(self) -> None:
        self.model = "limited"
        self.capabilities = Capabilities(chat=True, raw_completion=False, native_n=False, logprobs=False)
        self.calls: list[GenerateRequest] = []

    @classmethod
    def from_spec(cls, spec: str) -> Limited:
        return cls()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.calls.append(request)
        return GenerateResponse(texts=["OK"], finish_reasons=["stop"])


@pytest.mark.anyio
async def test_mock_all_checks_pass() -> None:
    checks = await diagnose("mock:echo?context_length=512")
    assert [c.name for c in checks] == [
        "spec", "backend", "chat", "n=2", "logprobs", "raw completion", "context length",
    ]
    assert all(c.ok for c in checks)
    assert by_name(checks)["context length"].detail == "512 tokens"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "spec, name, match",
    [
        ("nokind", "spec", "no backend prefix"),
        ("foo:bar", "spec", "unknown backend 'foo'"),
        ("mock:missing.yaml", "backend", "not found"),
        ("mock:echo?bogus=1", "backend", "unknown option"),
    ],
)
async def test_bad_specs_fail_at_the_right_check(spec: str, name: str, match: str) -> None:
    checks = await diagnose(spec)
    assert checks[-1].name == name and not checks[-1].ok and checks[-1].required
    assert match in checks[-1].detail
    assert checks[-1].fix
    assert all(c.ok for c in checks[:-1])


@pytest.mark.anyio
async def test_failing_chat_stops_and_is_required() -> None:
    checks = await diagnose("mock:echo?fail_500=1")
    assert [c.name for c in checks] == ["spec", "backend", "chat"]
    assert checks[-1].status == "FAIL"
    assert "500" in checks[-1].detail


@pytest.mark.anyio
async def test_missing_optional_features_only_warn() -> None:
    backend = Limited()
    checks = by_name(await diagnose_backend(backend))
    assert checks["chat"].ok
    for name in ("n=2", "logprobs", "raw completion", "context length"):
        assert checks[name].status == "warn", name
        assert checks[name].fix
    assert "got 1" in checks["n=2"].detail
    # Unsupported features are refused before any call: only chat and the n=2 probe reached the backend.
    assert [r.n for r in backend.calls] == [1, 2]
    text = render("limited:x", list(checks.values()))
    assert "ready (4 optional feature(s) missing)" in text
    assert text.count("fix:") == 4


def test_cli_ok_and_bad_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--model", "mock:echo"]) == 0
    out = capsys.readouterr()
    assert "ready" in out.out and out.err == ""
    assert main(["doctor", "--model", "foo:bar"]) != 0
    out = capsys.readouterr()
    assert "FAIL  spec" in out.out
    assert out.err.count("\n") == 1 and "Traceback" not in out.err


def test_real_server(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.servers import serve_thread

    with serve_thread("mock:echo", name="m") as url:
        checks = anyio.run(diagnose, f"openai:m@{url}")
        missing = anyio.run(diagnose, f"openai:other@{url}")
        rc = main(["doctor", "--model", f"openai:other@{url}"])
    named = by_name(checks)
    assert named["reachable"].ok and named["model"].ok
    for name in ("chat", "n=2", "logprobs", "raw completion"):
        assert named[name].ok, named[name]
    assert missing[-1].name == "model" and not missing[-1].ok
    assert "served: m" in missing[-1].detail
    assert missing[-1].fix == f"use openai:m@{url}"
    assert rc != 0
    out = capsys.readouterr()
    assert "FAIL  model" in out.out and "Traceback" not in out.err


def test_unreachable_port(capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"openai:m@http://127.0.0.1:{free_port()}/v1"
    checks = anyio.run(lambda: diagnose(spec, timeout=10))
    failed = [c for c in checks if not c.ok]
    assert len(failed) == 1 and failed[0].name == "reachable" and failed[0].required
    assert "cannot connect" in failed[0].detail
    assert main(["doctor", "--model", spec, "--timeout", "10"]) == 1
    out = capsys.readouterr()
    assert "FAIL  reachable" in out.out
    assert out.err.startswith("error: doctor: 'reachable' failed")
    assert out.err.count("\n") == 1 and "Traceback" not in out.err


def test_pool_with_one_dead_endpoint() -> None:
    from tests.helpers.servers import serve_thread

    dead = f"http://127.0.0.1:{free_port()}/v1"
    with serve_thread("mock:echo", name="m") as url:
        checks = anyio.run(diagnose, f"openai:m@{url},{dead}")
    reach = [c for c in checks if c.name == "reachable"]
    assert [c.ok for c in reach] == [True, False]
    assert dead in reach[1].detail
    assert checks[-1] is reach[1] or not checks[-1].ok


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["doctor", "--model", "mock:echo", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert rows[0] == {"name": "spec", "ok": True, "detail": "backend 'mock'", "fix": "", "required": True,
                       "status": "ok"}
