from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from llmlab.core.errors import DataError
from llmlab.web.app import ArenaSettings, create_app, sign, verify
from tests.web.conftest import MODELS

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HX = {**FORM, "HX-Request": "true"}


def token_of(html: str) -> str:
    m = re.search(r'name="token" value="([^"]+)"', html)
    assert m is not None
    return m.group(1)


def make(tmp_path: Path, outputs_file: Path, **kw: object) -> TestClient:
    return TestClient(create_app(ArenaSettings(outputs=str(outputs_file), db=str(tmp_path / "a.sqlite"),
                                               bootstrap_rounds=30, seed=1, **kw)))  # type: ignore[arg-type]


def test_battle_page_is_anonymous_and_escaped(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file)
    html = c.get("/").text
    assert "&lt;tags&gt; &amp; more" in html
    for m in MODELS:
        assert m not in html  # no model id anywhere on the page before the vote


def test_vote_reveals_and_is_stored_with_server_side_models(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file)
    html = c.get("/").text
    out_a = re.search(r'id="output-a">answer number (\d)', html)
    assert out_a is not None
    model_a = MODELS[int(out_a.group(1))]
    tok = token_of(html)
    # a client trying to smuggle model ids is ignored: only token and choice are read
    r = c.post("/vote", content=f"token={tok}&choice=A&model_a=evil&model_b=evil2", headers=HX)
    assert r.status_code == 200
    assert f'id="model-a">{model_a}<' in r.text
    board = c.get("/api/leaderboard").json()
    assert board["n_votes"] == 1
    assert {row["model"] for row in board["rows"]} <= {"alpha", "beta", "gamma"}
    assert board["rows"][0]["model"] == model_a  # the winner leads


def test_forged_replayed_and_bad_votes_are_rejected(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file)
    tok = token_of(c.get("/").text)
    battle_id, _, mac = tok.partition(".")
    forged = f"{battle_id}.{'0' * len(mac)}"
    assert c.post("/vote", content=f"token={forged}&choice=A", headers=FORM).status_code == 403
    other = sign(b"not the server key", battle_id)
    assert c.post("/vote", content=f"token={other}&choice=A", headers=FORM).status_code == 403
    assert c.post("/vote", content=f"token={tok}&choice=C", headers=FORM).status_code == 400
    assert c.post("/vote", content=f"token={tok}&choice=B", headers=FORM).status_code == 200
    assert c.post("/vote", content=f"token={tok}&choice=A", headers=FORM).status_code == 409
    assert c.get("/api/leaderboard").json()["n_votes"] == 1


def test_token_signature_roundtrip() -> None:
    key = b"k" * 32
    assert verify(key, sign(key, "abc")) == "abc"
    assert verify(key, sign(b"x", "abc")) is None
    assert verify(key, "abc") is None


def test_rate_limit_per_client(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file, rate_limit_per_min=2)
    codes = []
    for _ in range(3):
        tok = token_of(c.get("/").text)
        codes.append(c.post("/vote", content=f"token={tok}&choice=tie", headers=FORM).status_code)
    assert codes == [200, 200, 429]


def test_expired_battle_is_refused(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file, token_ttl_s=-1.0)
    tok = token_of(c.get("/").text)
    assert c.post("/vote", content=f"token={tok}&choice=A", headers=FORM).status_code == 410


def test_tokens_survive_a_restart_with_the_stored_key(tmp_path: Path, outputs_file: Path) -> None:
    tok = token_of(make(tmp_path, outputs_file).get("/").text)
    again = make(tmp_path, outputs_file)
    assert again.post("/vote", content=f"token={tok}&choice=A", headers=FORM).status_code == 200


def test_leaderboard_page_and_png(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file)
    assert "No votes yet" in c.get("/leaderboard").text
    png = c.get("/leaderboard.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_outputs_file(tmp_path: Path) -> None:
    p = tmp_path / "o.jsonl"
    p.write_text('{"prompt_id": "1", "prompt": "q", "model": "m", "output": "x"}\n')
    with pytest.raises(DataError, match="two models"):
        create_app(ArenaSettings(outputs=str(p), db=str(tmp_path / "d.sqlite")))


def test_concurrent_votes_are_all_kept_and_replays_win_once(arena_server) -> None:  # type: ignore[no-untyped-def]
    base, app = arena_server(rate_limit_per_min=10_000)
    with httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_connections=16)) as client:
        # (all battles fetched before any vote: after voting on a prompt a client is not shown it again)
        tokens = [token_of(client.get("/battle", headers={"HX-Request": "true"}).text) for _ in range(41)]
        tokens, extra = tokens[:40], tokens[40]

        def vote(tok: str) -> int:
            return client.post("/vote", content=f"token={tok}&choice=A", headers=FORM).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(vote, tokens))
        assert codes == [200] * 40
        assert app.state.arena.store.n_votes() == 40
        with ThreadPoolExecutor(max_workers=12) as pool:
            replays = list(pool.map(vote, [extra] * 12))
    assert sorted(replays) == [200] + [409] * 11
    assert app.state.arena.store.n_votes() == 41


def test_live_models_answer_through_the_model_stack(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt_id": "1", "prompt": "say hi"}\n{"prompt_id": "2", "prompt": "say bye"}\n')
    c = TestClient(create_app(ArenaSettings(outputs=str(prompts), db=str(tmp_path / "l.sqlite"), seed=0,
                                            live_models={"echo": "mock:echo", "fixed": "mock:text=FIXED"})))
    html = c.get("/").text
    outs = {re.search(rf'id="output-{s}">([^<]*)<', html).group(1) for s in "ab"}  # type: ignore[union-attr]
    assert "FIXED" in outs and len(outs & {"say hi", "say bye"}) == 1
    r = c.post("/vote", content=f"token={token_of(html)}&choice=tie", headers=HX)
    assert r.status_code == 200 and "echo" in r.text and "fixed" in r.text


def test_a_huge_vote_body_is_refused_before_it_is_stored(tmp_path: Path, outputs_file: Path) -> None:
    c = make(tmp_path, outputs_file)
    tok = token_of(c.get("/").text)
    big = f"token={tok}&choice=A&pad=" + "x" * 200_000
    r = c.post("/vote", content=big, headers=FORM)
    assert r.status_code == 413 and c.app.state.arena.store.n_votes() == 0  # type: ignore[attr-defined]

    def chunks():  # no Content-Length: the streamed body is cut at the cap too
        yield f"token={tok}&choice=A&pad=".encode()
        for _ in range(100):
            yield b"x" * 1000

    r2 = c.post("/vote", content=chunks(), headers=FORM)
    assert r2.status_code == 413 and c.app.state.arena.store.n_votes() == 0  # type: ignore[attr-defined]
    assert c.post("/vote", content=f"token={tok}&choice=A", headers=FORM).status_code == 200


def test_x_forwarded_for_is_trusted_only_from_configured_proxies(arena_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = arena_server(rate_limit_per_min=2)
    with httpx.Client(base_url=base, timeout=30) as client:
        tokens = [token_of(client.get("/battle", headers={"HX-Request": "true"}).text) for _ in range(3)]
        codes = [client.post("/vote", content=f"token={t}&choice=A",
                             headers={**FORM, "X-Forwarded-For": f"10.0.0.{i}"}).status_code
                 for i, t in enumerate(tokens)]
    assert codes == [200, 200, 429]  # spoofed addresses from 127.0.0.1 do not buy new limits

    base2, _ = arena_server(rate_limit_per_min=2, trusted_proxies=("127.0.0.1",),
                            db_name="proxied.sqlite")
    with httpx.Client(base_url=base2, timeout=30) as client:
        tokens = [token_of(client.get("/battle", headers={"HX-Request": "true"}).text) for _ in range(3)]
        codes = [client.post("/vote", content=f"token={t}&choice=A",
                             headers={**FORM, "X-Forwarded-For": f"203.0.113.{i}"}).status_code
                 for i, t in enumerate(tokens)]
    assert codes == [200, 200, 200]  # behind a configured proxy, each forwarded client has its own limit


def test_file_mode_never_shows_a_voted_prompt_again(tmp_path: Path, outputs_file: Path) -> None:
    """Outputs are fixed per (prompt, model): a prompt seen with its reveal would identify models later."""
    c = make(tmp_path, outputs_file, rate_limit_per_min=1000)
    seen_prompts = []
    for _ in range(4):  # the fixture has 4 prompts
        html = c.get("/").text
        prompt = re.search(r'id="prompt">([^<]*)<', html).group(1)  # type: ignore[union-attr]
        assert prompt not in seen_prompts
        seen_prompts.append(prompt)
        assert c.post("/vote", content=f"token={token_of(html)}&choice=A", headers=FORM).status_code == 200
    done = c.get("/")
    assert done.status_code == 409 and "voted on every prompt" in done.text
