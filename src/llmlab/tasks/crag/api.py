"""The CRAG mock API as an OpenAI-style tool set, and an HTTP client for it.

The official mock API (``mock_api/server.py``, client ``apiwrapper/pycragapi.py``) is a set of POST
endpoints, one per knowledge-graph function, over five domains. :data:`ENDPOINTS` lists them with their
parameters (the JSON body keys are the official ones: most take ``{"query": ...}``); :func:`crag_tools`
turns them into :class:`~llmlab.backends.base.Tool` definitions a model can call, and :func:`call_endpoint`
executes one call against a running server (ours, :mod:`llmlab.tasks.crag.server`, or the official one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmlab.core.errors import BackendConnectionError, ConfigError, DataError

DOMAINS = ("open", "movie", "finance", "music", "sports")


@dataclass(frozen=True)
class Endpoint:
    """One mock-API function: its tool name, HTTP path, parameters ``(name, json type, body key)``."""

    name: str
    path: str
    description: str
    params: tuple[tuple[str, str, str], ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def domain(self) -> str:
        return self.path.strip("/").split("/")[0]


def _q(name: str, path: str, description: str, param: str, kind: str = "string") -> Endpoint:
    return Endpoint(name, path, description, ((param, kind, "query"),))


ENDPOINTS: tuple[Endpoint, ...] = (
    _q("open_search_entity_by_name", "/open/search_entity_by_name",
       "Encyclopedia: up to 10 entity names that best match a query (BM25).", "query"),
    _q("open_get_entity", "/open/get_entity",
       "Encyclopedia: an entity's summary text, infobox fields and raw wiki text (null if unknown).", "entity"),
    _q("movie_get_person_info", "/movie/get_person_info",
       "Movies: people matching a name (acted/directed movie ids, birthday, Oscar awards).", "person_name"),
    _q("movie_get_movie_info", "/movie/get_movie_info",
       "Movies: movies matching a title (release date, language, budget, revenue, rating, cast, crew, Oscars).",
       "movie_name"),
    _q("movie_get_year_info", "/movie/get_year_info",
       "Movies: the movie ids and Oscar awards of a year (1990-2021).", "year"),
    _q("movie_get_movie_info_by_id", "/movie/get_movie_info_by_id", "Movies: a movie by its id.", "movie_id",
       "integer"),
    _q("movie_get_person_info_by_id", "/movie/get_person_info_by_id", "Movies: a person by id.", "person_id",
       "integer"),
    _q("finance_get_company_name", "/finance/get_company_name",
       "Finance: company names matching a query.", "query"),
    _q("finance_get_ticker_by_name", "/finance/get_ticker_by_name", "Finance: the ticker of a company name.",
       "query"),
    _q("finance_get_price_history", "/finance/get_price_history",
       "Finance: daily open/close/high/low/volume of a ticker over the last year.", "ticker_name"),
    _q("finance_get_detailed_price_history", "/finance/get_detailed_price_history",
       "Finance: minute-level prices of a ticker over the last days.", "ticker_name"),
    _q("finance_get_dividends_history", "/finance/get_dividends_history",
       "Finance: dividend dates and amounts of a ticker.", "ticker_name"),
    _q("finance_get_market_capitalization", "/finance/get_market_capitalization",
       "Finance: the market capitalisation of a ticker.", "ticker_name"),
    _q("finance_get_eps", "/finance/get_eps", "Finance: earnings per share of a ticker.", "ticker_name"),
    _q("finance_get_pe_ratio", "/finance/get_pe_ratio", "Finance: the price-to-earnings ratio of a ticker.",
       "ticker_name"),
    _q("finance_get_info", "/finance/get_info", "Finance: general financial information about a ticker.",
       "ticker_name"),
    _q("music_search_artist_entity_by_name", "/music/search_artist_entity_by_name",
       "Music: artist names matching a query.", "artist_name"),
    _q("music_search_song_entity_by_name", "/music/search_song_entity_by_name",
       "Music: song names matching a query.", "song_name"),
    Endpoint("music_get_billboard_rank_date", "/music/get_billboard_rank_date",
             "Music: the song(s) at a Billboard Hot 100 rank (on a date, YYYY-MM-DD, if given).",
             (("rank", "integer", "rank"), ("date", "string", "date")), optional=("date",)),
    Endpoint("music_get_billboard_attributes", "/music/get_billboard_attributes",
             "Music: a Billboard attribute (rank_last_week, weeks_in_chart, top_position, rank) of a song on a date.",
             (("date", "string", "date"), ("attribute", "string", "attribute"), ("song_name", "string", "song_name"))),
    _q("music_grammy_get_best_artist_by_year", "/music/grammy_get_best_artist_by_year",
       "Music: the Grammy Best New Artist of a year.", "year", "integer"),
    _q("music_grammy_get_award_count_by_artist", "/music/grammy_get_award_count_by_artist",
       "Music: how many Grammys an artist won.", "artist_name"),
    _q("music_grammy_get_award_count_by_song", "/music/grammy_get_award_count_by_song",
       "Music: how many Grammys a song won.", "song_name"),
    _q("music_grammy_get_best_song_by_year", "/music/grammy_get_best_song_by_year",
       "Music: the Grammy Song of the Year of a year.", "year", "integer"),
    _q("music_grammy_get_award_date_by_artist", "/music/grammy_get_award_date_by_artist",
       "Music: the years an artist won Grammys.", "artist_name"),
    _q("music_grammy_get_best_album_by_year", "/music/grammy_get_best_album_by_year",
       "Music: the Grammy Album of the Year of a year.", "year", "integer"),
    Endpoint("music_grammy_get_all_awarded_artists", "/music/grammy_get_all_awarded_artists",
             "Music: every artist who won a Grammy."),
    _q("music_get_artist_birth_place", "/music/get_artist_birth_place", "Music: an artist's birth place.",
       "artist_name"),
    _q("music_get_artist_birth_date", "/music/get_artist_birth_date", "Music: an artist's birth date.",
       "artist_name"),
    _q("music_get_members", "/music/get_members", "Music: the members of a band.", "band_name"),
    _q("music_get_lifespan", "/music/get_lifespan", "Music: an artist's or band's lifespan.", "artist_name"),
    _q("music_get_song_author", "/music/get_song_author", "Music: who wrote a song.", "song_name"),
    _q("music_get_song_release_country", "/music/get_song_release_country",
       "Music: the country a song was released in.", "song_name"),
    _q("music_get_song_release_date", "/music/get_song_release_date", "Music: a song's release date.",
       "song_name"),
    _q("music_get_artist_all_works", "/music/get_artist_all_works", "Music: all works of an artist.",
       "artist_name"),
    Endpoint("sports_soccer_get_games_on_date", "/sports/soccer/get_games_on_date",
             "Sports: soccer games on a date (YYYY-MM-DD, YYYY-MM or YYYY), optionally of one team.",
             (("date", "string", "date"), ("team_name", "string", "team_name")), optional=("team_name",)),
    Endpoint("sports_nba_get_games_on_date", "/sports/nba/get_games_on_date",
             "Sports: NBA games on a date (YYYY-MM-DD, YYYY-MM or YYYY), optionally of one team.",
             (("date", "string", "date"), ("team_name", "string", "team_name")), optional=("team_name",)),
    Endpoint("sports_nba_get_play_by_play_data_by_game_ids", "/sports/nba/get_play_by_play_data_by_game_ids",
             "Sports: NBA play-by-play data of games by their ids.", (("game_ids", "array", "game_ids"),)),
)
BY_NAME = {e.name: e for e in ENDPOINTS}


def crag_tools(domains: tuple[str, ...] | list[str] | None = None) -> tuple[Any, ...]:
    """The mock API as :class:`~llmlab.backends.base.Tool` definitions (all domains, or only ``domains``).

    Example:
        >>> [t.name for t in crag_tools(["open"])]
        ['open_search_entity_by_name', 'open_get_entity']
    """
    from llmlab.backends.base import Tool

    wanted = set(domains) if domains is not None else set(DOMAINS)
    unknown = wanted - set(DOMAINS)
    if unknown:
        raise ConfigError(f"unknown CRAG API domain(s) {sorted(unknown)}; domains: {', '.join(DOMAINS)}")
    out = []
    for e in ENDPOINTS:
        if e.domain not in wanted:
            continue
        props: dict[str, Any] = {}
        for pname, kind, _ in e.params:
            props[pname] = {"type": kind, **({"items": {"type": "string"}} if kind == "array" else {})}
        required = [p for p, _, _ in e.params if p not in e.optional]
        out.append(Tool(e.name, e.description, {"type": "object", "properties": props, "required": required}))
    return tuple(out)


def request_body(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The HTTP path and JSON body of a tool call (official body keys), after checking the arguments."""
    if name not in BY_NAME:
        raise DataError(f"unknown CRAG API function '{name}'")
    e = BY_NAME[name]
    body: dict[str, Any] = {}
    for pname, _, key in e.params:
        if pname not in arguments and pname not in e.optional:
            raise DataError(f"{name}: missing argument '{pname}'")
        body[key] = arguments.get(pname)
    return e.path, body


async def call_endpoint(base_url: str, name: str, arguments: dict[str, Any], timeout: float = 30.0) -> Any:
    """POST one mock-API call to ``base_url`` and return the ``result`` field of the JSON answer.

    Raises:
        BackendConnectionError: The server is not reachable.
        DataError: Unknown function, bad arguments, or the server answered with an error.
    """
    import httpx

    path, body = request_body(name, arguments)
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            resp = await client.post(base_url.rstrip("/") + path, json=body)
    except httpx.HTTPError as exc:
        raise BackendConnectionError(
            f"CRAG mock API at {base_url} not reachable ({exc.__class__.__name__}); start it with "
            "`llmlab crag serve --kg DIR` or point -t api_url=URL at the official server"
        ) from None
    try:
        payload = resp.json()
    except json.JSONDecodeError:
        payload = {"detail": resp.text[:200]}
    if resp.status_code != 200:
        raise DataError(f"CRAG mock API {name}: HTTP {resp.status_code}: {payload.get('detail', payload)}")
    return payload.get("result") if isinstance(payload, dict) else payload
