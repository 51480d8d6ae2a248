from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.core.errors import BackendConnectionError, DataError
from llmlab.tasks.crag import ENDPOINTS, call_endpoint, crag_tools, request_body
from llmlab.tasks.crag.server import BM25, check_kg_dir


def test_tool_set_covers_every_official_endpoint() -> None:
    tools = crag_tools()
    assert len(tools) == len(ENDPOINTS) == 38
    by = {t.name: t for t in tools}
    assert by["music_get_billboard_rank_date"].parameters["required"] == ["rank"]
    assert by["sports_nba_get_play_by_play_data_by_game_ids"].parameters["properties"]["game_ids"]["type"] == "array"
    assert request_body("finance_get_eps", {"ticker_name": "META"}) == ("/finance/get_eps", {"query": "META"})
    with pytest.raises(DataError):
        request_body("finance_get_eps", {})


def test_bm25_matches_rank_bm25_formula() -> None:
    bm = BM25([["florida", "city"], ["florida"], ["lake", "tahoe"]])
    s = bm.scores(["florida"])
    assert s[1] > s[0] > 0 and s[2] == 0  # shorter document wins; unrelated scores 0
    assert bm.top(["tahoe"]) == [2]


def test_kg_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        check_kg_dir(tmp_path / "missing")
    with pytest.raises(DataError, match="LFS"):
        check_kg_dir(tmp_path)


@pytest.mark.anyio
async def test_server_answers_official_paths(crag_server: str) -> None:
    assert await call_endpoint(crag_server, "open_search_entity_by_name", {"query": "florida"}) == [
        "Florida", "Florida City, Florida"]
    assert (await call_endpoint(crag_server, "open_get_entity", {"entity": "Lake Tahoe"}))["summary_text"] == "a lake"
    movies = await call_endpoint(crag_server, "movie_get_movie_info", {"movie_name": "The Matrix"})
    assert movies[0]["id"] == 603
    assert (await call_endpoint(crag_server, "movie_get_movie_info_by_id", {"movie_id": 604}))["title"] == \
        "The Matrix Reloaded"
    with pytest.raises(DataError, match="1990 and 2021"):
        await call_endpoint(crag_server, "movie_get_year_info", {"year": "1980"})
    assert await call_endpoint(crag_server, "finance_get_company_name", {"query": "meta"}) == ["Meta Platforms Inc"]
    assert await call_endpoint(crag_server, "finance_get_ticker_by_name", {"query": "Apple Inc"}) == "AAPL"
    assert await call_endpoint(crag_server, "finance_get_eps", {"ticker_name": "META"}) == 20.1
    assert await call_endpoint(crag_server, "finance_get_pe_ratio", {"ticker_name": "AAPL"}) is None
    assert await call_endpoint(crag_server, "finance_get_market_capitalization", {"ticker_name": "META"}) == 1.25e12
    hist = await call_endpoint(crag_server, "finance_get_price_history", {"ticker_name": "META"})
    assert hist["2024-02-28 00:00:00 EST"]["Close"] == 490.2
    games = json.loads(await call_endpoint(crag_server, "sports_nba_get_games_on_date",
                                           {"date": "2023-10", "team_name": "Los Angeles Lakers"}))
    assert games["game_id"] == {"0": "0022300001"}  # the DataFrame.to_json layout the official returns
    assert await call_endpoint(crag_server, "sports_nba_get_games_on_date", {"date": "2023-10-26"}) is None
    evil = "x' OR '1'='1"  # pasted into the SQL text officially; a plain value here
    assert await call_endpoint(crag_server, "sports_nba_get_games_on_date", {"date": "2023", "team_name": evil}) \
        is None
    pbp = json.loads(await call_endpoint(crag_server, "sports_nba_get_play_by_play_data_by_game_ids",
                                         {"game_ids": ["0022300003"]}))
    assert pbp["homedescription"] == {"0": "Tip"}
    soccer = json.loads(await call_endpoint(crag_server, "sports_soccer_get_games_on_date",
                                            {"date": "2024-01", "team_name": "Arsenal"}))
    assert list(soccer["GF"].values()) == [5]
    assert await call_endpoint(crag_server, "music_search_artist_entity_by_name", {"artist_name": "maroon"}) == [
        "Maroon 5"]
    assert await call_endpoint(crag_server, "music_get_members", {"band_name": "Maroon 5"}) == [
        "Adam Levine", "James Valentine"]
    assert await call_endpoint(crag_server, "music_grammy_get_best_artist_by_year", {"year": 2009}) == ["Adele"]
    assert await call_endpoint(crag_server, "music_grammy_get_best_artist_by_year", {"year": 1950}) is None
    assert await call_endpoint(crag_server, "music_grammy_get_award_count_by_artist", {"artist_name": "Adele"}) == 4
    assert await call_endpoint(crag_server, "music_grammy_get_award_date_by_artist", {"artist_name": "Adele"}) == [
        2009, 2016]
    assert await call_endpoint(crag_server, "music_get_billboard_rank_date", {"rank": 1}) == [["Hello"], ["Adele"]]
    assert await call_endpoint(crag_server, "music_get_billboard_attributes", {
        "date": "2015-11-14", "attribute": "rank_last_week", "song_name": "Hello"}) == "-"
    assert await call_endpoint(crag_server, "music_get_song_release_date", {"song_name": "Hello"}) == "2015-10-23"
    assert await call_endpoint(crag_server, "music_get_lifespan", {"artist_name": "Adele"}) == ["1988-05-05", None]
    with pytest.raises(BackendConnectionError):
        await call_endpoint("http://127.0.0.1:9", "open_get_entity", {"entity": "x"})
