"""Drive the arena in a real headless Chromium (Debian's package, no browser download) via playwright."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")

from tests.helpers.chromium import browser_page, needs_chromium

pytestmark = needs_chromium


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    yield from browser_page()


def test_vote_in_browser_changes_leaderboard_and_forgery_is_rejected(arena_server, page) -> None:  # type: ignore[no-untyped-def]
    base, app = arena_server(rate_limit_per_min=1000)
    page.goto(f"{base}/leaderboard")
    assert page.locator("#empty").inner_text() == "No votes yet."

    page.goto(f"{base}/")
    assert page.locator("#model-a").count() == 0  # anonymous before the vote
    token = page.locator("input[name=token]").get_attribute("value")
    page.click("#vote-b")
    page.wait_for_selector("#reveal")  # swapped in by the inline htmx-style script, no reload
    assert page.url.rstrip("/") == base
    winner = page.locator("#model-b").inner_text()
    loser = page.locator("#model-a").inner_text()
    assert winner != loser

    page.goto(f"{base}/leaderboard")
    assert page.locator("#n-votes").inner_text() == "1 votes"
    models = page.locator("#leaderboard tbody tr td.model").all_inner_texts()
    assert models == [winner, loser]  # the model voted for ranks first
    assert page.evaluate("document.getElementById('plot').naturalWidth") > 100  # the PNG loaded

    # a replay of the used token and a forged token, sent by the browser itself
    def post(tok: str) -> int:
        return int(page.evaluate(
            """async (tok) => (await fetch('/vote', {method: 'POST',
                 headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                 body: new URLSearchParams({token: tok, choice: 'A'})})).status""", tok))

    assert post(token) == 409
    battle_id = token.split(".")[0]
    assert post(f"{battle_id}.{'f' * 64}") == 403
    assert app.state.arena.store.n_votes() == 1

    # next battle via the swap, then a tie vote: the leaderboard shows two votes
    page.goto(f"{base}/")
    page.click("#vote-a")
    page.wait_for_selector("#reveal")
    page.click("#next")
    page.wait_for_selector("#vote-tie")
    page.click("#vote-tie")
    page.wait_for_selector("#reveal")
    page.goto(f"{base}/leaderboard")
    assert re.fullmatch(r"3 votes", page.locator("#n-votes").inner_text())
