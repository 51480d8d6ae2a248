"""A small local server for the CRAG mock API over user-supplied knowledge-graph files.

``llmlab crag serve --kg DIR`` serves the official endpoint paths (:data:`~llmlab.tasks.crag.api.ENDPOINTS`,
POST, JSON bodies, ``{"result": ...}`` answers) over a KG folder in the official ``mock_api/cragkg``
layout. The KG files are Git-LFS objects of facebookresearch/CRAG (CC BY-NC 4.0) and are never shipped.

Served here (read with the official file formats and search semantics):

- ``open``: ``open/kg.0.jsonl.bz2``, ``open/kg.1.jsonl.bz2`` (lines ``[name, entity]``); entity search is
  BM25 (Okapi, k1=1.5, b=0.75, ε=0.25 as ``rank_bm25``) over normalised names, top 10 with a non-zero score.
- ``movie``: ``movie/{movie_db,person_db,year_db}.json``; BM25 search over the database keys, lookups by id,
  years 1990-2021.
- ``finance``: ``finance/company_name.dict`` (CSV ``Name,Symbol``; BM25 company search) and the five
  sqlitedict stores ``finance/finance_{price,detailed_price,dividend,marketcap,info}.sqlite`` (values are
  pickles: open only the official files); EPS and P/E are ``forwardEps`` / ``forwardPE`` of the info record.

- ``sports``: ``sports/nba.sqlite`` (tables ``game``, ``play_by_play``; parameterised queries, where the
  official server formats the arguments into the SQL text) and ``sports/soccer_team_match_stats.pkl`` (a
  pandas pickle, read with pandas); results are the ``DataFrame.to_json()`` strings the official returns.

- ``music``: the six official pickles (artist and song dicts, Billboard Hot 100 rank and song tables, the
  Grammy DataFrame, artist works), all 20 functions. Pickles are code: open only the official files.

The tool set and client work with this server or the official ``mock_api/server.py`` (``-t api_url=``).

Deviations: a domain is served when all its files are present (the official server needs every domain);
music entity search uses the same Okapi BM25 as the other domains (the official uses its ``fast_bm25``
``get_top_n``, whose idf cut-off differs slightly); ``get_members`` is sorted (official: set order); a
``get_billboard_rank_date`` date that is not in the chart gives ``[[], []]`` (official: falls through to the
same empty lists); ties in BM25 scores are broken by entity order (official: ``numpy.argsort`` order, unspecified).
"""

from __future__ import annotations

import bz2
import json
import math
import string
from collections import Counter
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError

_PUNCT = str.maketrans("", "", string.punctuation)
SERVED = ("open", "movie", "finance", "music", "sports")
MUSIC_FILES = ("artist_dict_simplified", "song_dict_simplified", "grammy_df", "rank_dict_hot100", "song_dict_hot100",
               "artist_work_dict")
FINANCE_DBS = ("price", "detailed_price", "dividend", "marketcap", "info")
FILES = {"open": ("open/kg.0.jsonl.bz2", "open/kg.1.jsonl.bz2"),
         "movie": ("movie/movie_db.json", "movie/person_db.json", "movie/year_db.json"),
         "finance": ("finance/company_name.dict", *(f"finance/finance_{n}.sqlite" for n in FINANCE_DBS)),
         "music": tuple(f"music/{n}.pickle" for n in MUSIC_FILES),
         "sports": ("sports/nba.sqlite", "sports/soccer_team_match_stats.pkl")}


def normalize(x: str) -> str:
    """Lower-case, ``_`` → space, punctuation removed, whitespace collapsed (the official normaliser)."""
    return " ".join(x.lower().replace("_", " ").translate(_PUNCT).split())


class BM25:
    """Okapi BM25 with ``rank_bm25``'s defaults (k1=1.5, b=0.75, negative idf floored at ε·mean idf)."""

    def __init__(self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(doc) for doc in corpus]
        self.lens = [len(doc) for doc in corpus]
        n = len(corpus)
        self.avgdl = sum(self.lens) / n if n else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        idf = {w: math.log(n - f + 0.5) - math.log(f + 0.5) for w, f in df.items()}
        floor = epsilon * (sum(idf.values()) / len(idf)) if idf else 0.0
        self.idf = {w: (v if v >= 0 else floor) for w, v in idf.items()}

    def scores(self, query: list[str]) -> list[float]:
        out = []
        for tf, dl in zip(self.tfs, self.lens, strict=True):
            s = 0.0
            for w in query:
                f = tf.get(w, 0)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * dl / self.avgdl))
            out.append(s)
        return out

    def top(self, query: list[str], n: int = 10) -> list[int]:
        sc = self.scores(query)
        order = sorted(range(len(sc)), key=lambda i: -sc[i])
        return [i for i in order[:n] if sc[i] != 0]


class OpenKG:
    """The encyclopedia domain over ``open/kg.*.jsonl.bz2``."""

    def __init__(self, root: Path) -> None:
        self.kg: dict[str, Any] = {}
        for rel in FILES["open"]:
            with bz2.open(root / rel, "rt", encoding="utf8") as f:
                for line in f:
                    if line.strip():
                        name, entity = json.loads(line)
                        self.kg[name] = entity
        self.key_map: dict[str, list[str]] = {}
        for e in self.kg:
            self.key_map.setdefault(normalize(e), []).append(e)
        self.corpus = sorted(self.key_map)
        self.bm25 = BM25([ne.split() for ne in self.corpus])

    def search_entity_by_name(self, query: str) -> list[str]:
        out: list[str] = []
        for i in self.bm25.top(normalize(query).split()):
            out += self.key_map[self.corpus[i]]
        return out[:10]

    def get_entity(self, entity: str) -> Any:
        return self.kg.get(entity)


class MovieKG:
    """The movie domain over ``movie/{movie_db,person_db,year_db}.json``."""

    def __init__(self, root: Path) -> None:
        self.movies: dict[str, Any] = json.loads((root / "movie/movie_db.json").read_text(encoding="utf8"))
        self.people: dict[str, Any] = json.loads((root / "movie/person_db.json").read_text(encoding="utf8"))
        self.years: dict[str, Any] = json.loads((root / "movie/year_db.json").read_text(encoding="utf8"))
        self.movie_by_id = {v["id"]: v for v in self.movies.values() if "id" in v}
        self.person_by_id = {v["id"]: v for v in self.people.values() if "id" in v}
        self.movie_keys, self.person_keys = list(self.movies), list(self.people)
        self.movie_bm25 = BM25([k.split() for k in self.movie_keys])
        self.person_bm25 = BM25([k.split() for k in self.person_keys])

    def get_person_info(self, name: str) -> list[Any]:
        return [self.people[self.person_keys[i]] for i in self.person_bm25.top(normalize(name).split())]

    def get_movie_info(self, name: str) -> list[Any]:
        return [self.movies[self.movie_keys[i]] for i in self.movie_bm25.top(normalize(name).split())]

    def get_year_info(self, year: str | int) -> Any:
        if int(year) not in range(1990, 2022):
            raise DataError("Year must be between 1990 and 2021")
        return self.years.get(str(year))


class SqliteDictReader:
    """Read-only access to a ``sqlitedict`` file (table ``unnamed``: ``key`` text, ``value`` a pickle).

    The official finance KG stores are sqlitedict files; their values are Python pickles, so only open KG
    files you trust (the official ones).
    """

    def __init__(self, path: Path) -> None:
        import sqlite3

        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def get(self, key: str) -> Any:
        import pickle

        row = self.conn.execute("SELECT value FROM unnamed WHERE key = ?", (key,)).fetchone()
        return pickle.loads(row[0]) if row is not None else None  # the official KG format


class FinanceKG:
    """The finance domain over ``finance/company_name.dict`` (CSV ``Name,Symbol``) and five sqlitedict stores."""

    def __init__(self, root: Path) -> None:
        import csv

        with (root / "finance/company_name.dict").open(encoding="utf8", newline="") as f:
            self.name_dict = {r["Name"]: r["Symbol"] for r in csv.DictReader(f)}
        self.key_map: dict[str, list[str]] = {}
        self.corpus: list[str] = []
        for e in self.name_dict:
            ne = normalize(e)
            self.key_map.setdefault(ne, []).append(e)
            self.corpus.append(ne)  # one entry per name, duplicates included, as officially
        self.bm25 = BM25([ne.split() for ne in self.corpus])
        self.db = {n: SqliteDictReader(root / f"finance/finance_{n}.sqlite") for n in FINANCE_DBS}

    def get_company_name(self, query: str) -> list[str]:
        out: list[str] = []
        for i in self.bm25.top(normalize(query).split()):
            out += self.key_map[self.corpus[i]]
        return out[:10]

    def info_field(self, ticker: str, field: str) -> Any:
        info = self.db["info"].get(ticker)
        return info.get(field) if isinstance(info, dict) else None


class MusicKG:
    """The music domain over the official pickles (artist/song dicts, Billboard Hot 100, a Grammy DataFrame).

    The pickles need pandas (the Grammy table is a DataFrame) and are code: open only the official files.
    """

    def __init__(self, root: Path) -> None:
        import pickle

        try:
            import pandas  # noqa: F401 - the Grammy pickle is a DataFrame
        except ImportError:  # pragma: no cover
            from llmlab.core.errors import MissingExtraError

            raise MissingExtraError("pandas", "crag", "the CRAG music KG") from None
        data = {}
        for name in MUSIC_FILES:
            with (root / f"music/{name}.pickle").open("rb") as f:
                data[name] = pickle.load(f)  # the official KG format
        self.artists: dict[str, Any] = data["artist_dict_simplified"]
        self.songs: dict[str, Any] = data["song_dict_simplified"]
        self.grammy = data["grammy_df"]
        self.rank_hot: dict[str, Any] = data["rank_dict_hot100"]
        self.song_hot: dict[str, Any] = data["song_dict_hot100"]
        self.works: dict[str, Any] = data["artist_work_dict"]
        self.artist_index = self._index(self.artists)
        self.song_index = self._index(self.songs)

    @staticmethod
    def _index(names: dict[str, Any]) -> tuple[list[str], dict[str, list[str]], BM25]:
        key_map: dict[str, list[str]] = {}
        for e in names:
            key_map.setdefault(normalize(e), []).append(e)
        corpus = sorted(key_map)
        return corpus, key_map, BM25([ne.split() for ne in corpus])

    @staticmethod
    def search(index: tuple[list[str], dict[str, list[str]], BM25], query: str) -> list[str]:
        corpus, key_map, bm25 = index
        out: list[str] = []
        for i in bm25.top(normalize(query).split()):
            out += key_map[corpus[i]]
        return out[:10]

    def billboard_rank_date(self, rank: int, date: str | None) -> Any:
        entries = self.rank_hot.get(str(rank))
        if entries is None:
            return [None, None]
        if date:
            for e in entries:
                if e["Date"] == date:
                    return [[e["Song"]], [e["Artist"]]]
            return [[], []]
        return [[e["Song"] for e in entries], [e["Artist"] for e in entries]]

    def billboard_attribute(self, date: str, attribute: str, song: str) -> Any:
        row = self.song_hot.get(song, {}).get(date)
        if row is None:
            return None
        # the official column layout: positions 4-6 swap meaning when last week's rank is "-" (a new entry)
        cols = {"rank_last_week": 6, "weeks_in_chart": 5, "top_position": 4} if row[6] == "-" else \
            {"rank_last_week": 4, "weeks_in_chart": 6, "top_position": 5}
        return row[cols.get(attribute, 3)]

    def _grammy_by_year(self, category: str, year: int) -> Any:
        if not 1957 <= int(year) <= 2019:
            return None
        g = self.grammy
        return g[(g["category"] == category) & (g["year"] == int(year))]["nominee"].tolist()

    def _grammy_rows_mentioning(self, name: str) -> list[int]:
        g = self.grammy
        rows: list[int] = []
        for col in ("nominee", "artist", "workers"):
            rows += [i for i, v in enumerate(g[col]) if name in str(v)]
        return rows

    def grammy_award_count_by_artist(self, name: str) -> int:
        return len(self._grammy_rows_mentioning(name))  # officially: rows counted once per matching column

    def grammy_award_dates_by_artist(self, name: str) -> list[int]:
        years = self.grammy["year"]
        return sorted({int(years.iloc[i]) for i in set(self._grammy_rows_mentioning(name))})

    def field(self, table: dict[str, Any], key: str, name: str) -> Any:
        entry = table.get(key)
        value = entry.get(name) if isinstance(entry, dict) else None
        return value if value else None


def _date_cond(date: str) -> tuple[str, str]:
    """The SQL ``strftime`` format matching ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY`` (else every row)."""
    fmt = {3: "%Y-%m-%d", 2: "%Y-%m", 1: "%Y"}.get(len(date.split("-")))
    return ("strftime(?, game_date) = ?", fmt) if fmt is not None else ("1 = 1", "")


def _frame_json(cols: list[str], rows: list[tuple[Any, ...]]) -> str | None:
    """A table as ``pandas.DataFrame.to_json()`` writes it (column → {row index → value}); None if empty."""
    if not rows:
        return None
    return json.dumps({c: {str(i): r[j] for i, r in enumerate(rows)} for j, c in enumerate(cols)},
                      separators=(",", ":"))


class SportsKG:
    """The sports domain: NBA games and play-by-play (``sports/nba.sqlite``), soccer matches (pandas pickle).

    NBA queries are parameterised; the official server pastes the model's arguments into the SQL text (an
    apostrophe in a team name breaks it, and any argument can inject SQL).
    """

    def __init__(self, root: Path) -> None:
        import sqlite3

        self.conn = sqlite3.connect(f"file:{root / 'sports/nba.sqlite'}?mode=ro", uri=True, check_same_thread=False)
        self.soccer_path = root / "sports/soccer_team_match_stats.pkl"
        self._soccer: Any = None

    def _select(self, sql: str, params: tuple[Any, ...]) -> str | None:
        cur = self.conn.execute(sql, params)
        return _frame_json([d[0] for d in cur.description], cur.fetchall())

    def nba_games(self, date: str, team: str | None) -> str | None:
        cond, fmt = _date_cond(date)
        params: tuple[Any, ...] = (fmt, date) if fmt else ()
        if team is not None:
            return self._select(f"SELECT * FROM game WHERE (team_name_home = ? OR team_name_away = ?) AND {cond}",
                                (team, team, *params))
        return self._select(f"SELECT * FROM game WHERE {cond}", params)

    def nba_play_by_play(self, game_ids: list[str]) -> str | None:
        marks = ", ".join("?" for _ in game_ids)
        return self._select(f"SELECT * FROM play_by_play WHERE game_id IN ({marks})", tuple(map(str, game_ids)))

    def soccer_games(self, date: str, team: str | None) -> str | None:
        if self._soccer is None:
            try:
                import pandas as pd
            except ImportError:  # pragma: no cover
                from llmlab.core.errors import MissingExtraError

                raise MissingExtraError("pandas", "crag", "the CRAG soccer KG") from None
            df = pd.read_pickle(self.soccer_path)  # the official KG format (a pickle: trusted files only)
            self._soccer = df[df.index.get_level_values("league").notna()]
        df = self._soccer
        if team is not None:
            df = df[df.index.get_level_values(2) == team]
        fmt = {3: "%Y-%m-%d", 2: "%Y-%m", 1: "%Y"}.get(len(date.split("-")))
        if fmt is None:
            return None
        df = df[df["date"].dt.strftime(fmt) == date]
        return str(df.to_json(date_format="iso")) if len(df) > 0 else None


def check_kg_dir(kg_dir: str | Path) -> list[str]:
    """The domains of :data:`SERVED` whose files are all present in ``kg_dir``.

    Raises:
        DataError: The folder does not exist or holds none of the served domains' files.
    """
    root = Path(kg_dir)
    if not root.is_dir():
        raise DataError(f"CRAG KG folder {root} not found; the KG files are Git-LFS objects of "
                        "facebookresearch/CRAG (mock_api/cragkg/); download them and pass --kg DIR")
    found = [d for d in SERVED if all((root / rel).is_file() for rel in FILES[d])]
    if not found:
        wanted = ", ".join(rel for d in SERVED for rel in FILES[d])
        raise DataError(f"CRAG KG folder {root} holds none of the files this server reads ({wanted}); "
                        "LFS pointer files are not data: fetch the objects first")
    return found


def create_app(kg_dir: str | Path) -> Any:
    """The FastAPI app serving the mock API over ``kg_dir`` (domains loaded on first use)."""
    try:
        from fastapi import Body, FastAPI, HTTPException
    except ImportError:  # pragma: no cover - depends on the environment
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("fastapi", "web", "the CRAG mock-API server") from None
    from llmlab.tasks.crag.api import ENDPOINTS

    root = Path(kg_dir)
    available = check_kg_dir(root)
    stores: dict[str, Any] = {}

    def store(domain: str) -> Any:
        if domain not in SERVED:
            raise HTTPException(501, f"domain '{domain}' is not served by llmlab's server; run the official "
                                     "mock_api/server.py over the same KG and point api_url at it")
        if domain not in available:
            raise HTTPException(404, f"domain '{domain}': KG files {', '.join(FILES[domain])} not in {root}")
        if domain not in stores:
            stores[domain] = {"open": OpenKG, "movie": MovieKG, "finance": FinanceKG, "music": MusicKG,
                              "sports": SportsKG}[domain](root)
        return stores[domain]

    handlers: dict[str, Any] = {
        "open_search_entity_by_name": lambda kg, b: kg.search_entity_by_name(str(b["query"])),
        "open_get_entity": lambda kg, b: kg.get_entity(str(b["query"])),
        "movie_get_person_info": lambda kg, b: kg.get_person_info(str(b["query"])),
        "movie_get_movie_info": lambda kg, b: kg.get_movie_info(str(b["query"])),
        "movie_get_year_info": lambda kg, b: kg.get_year_info(b["query"]),
        "movie_get_movie_info_by_id": lambda kg, b: kg.movie_by_id.get(int(b["query"])),
        "movie_get_person_info_by_id": lambda kg, b: kg.person_by_id.get(int(b["query"])),
        "finance_get_company_name": lambda kg, b: kg.get_company_name(str(b["query"])),
        "finance_get_ticker_by_name": lambda kg, b: kg.name_dict.get(str(b["query"])),
        "finance_get_price_history": lambda kg, b: kg.db["price"].get(str(b["query"])),
        "finance_get_detailed_price_history": lambda kg, b: kg.db["detailed_price"].get(str(b["query"])),
        "finance_get_dividends_history": lambda kg, b: kg.db["dividend"].get(str(b["query"])),
        "finance_get_market_capitalization": lambda kg, b: kg.db["marketcap"].get(str(b["query"])),
        "finance_get_eps": lambda kg, b: kg.info_field(str(b["query"]), "forwardEps"),
        "finance_get_pe_ratio": lambda kg, b: kg.info_field(str(b["query"]), "forwardPE"),
        "finance_get_info": lambda kg, b: kg.db["info"].get(str(b["query"])),
        "music_search_artist_entity_by_name": lambda kg, b: kg.search(kg.artist_index, str(b["query"])),
        "music_search_song_entity_by_name": lambda kg, b: kg.search(kg.song_index, str(b["query"])),
        "music_get_billboard_rank_date": lambda kg, b: kg.billboard_rank_date(int(b["rank"]), b.get("date")),
        "music_get_billboard_attributes": lambda kg, b: kg.billboard_attribute(str(b["date"]), str(b["attribute"]),
                                                                               str(b["song_name"])),
        "music_grammy_get_best_artist_by_year": lambda kg, b: kg._grammy_by_year("Best New Artist", b["query"]),
        "music_grammy_get_best_song_by_year": lambda kg, b: kg._grammy_by_year("Song Of The Year", b["query"]),
        "music_grammy_get_best_album_by_year": lambda kg, b: kg._grammy_by_year("Album Of The Year", b["query"]),
        "music_grammy_get_award_count_by_artist": lambda kg, b: kg.grammy_award_count_by_artist(str(b["query"])),
        "music_grammy_get_award_count_by_song": lambda kg, b: int((kg.grammy["nominee"] == str(b["query"])).sum()),
        "music_grammy_get_award_date_by_artist": lambda kg, b: kg.grammy_award_dates_by_artist(str(b["query"])),
        "music_grammy_get_all_awarded_artists": lambda kg, b: kg.grammy[kg.grammy["category"] == "Best New Artist"][
            "nominee"].dropna().unique().tolist(),
        "music_get_artist_birth_place": lambda kg, b: kg.field(kg.artists, str(b["query"]), "country"),
        "music_get_artist_birth_date": lambda kg, b: kg.field(kg.artists, str(b["query"]), "birth_date"),
        "music_get_members": lambda kg, b: (sorted(set(kg.artists[str(b["query"])]["members"]))
                                            if str(b["query"]) in kg.artists else None),
        "music_get_lifespan": lambda kg, b: [kg.field(kg.artists, str(b["query"]), "birth_date"),
                                             kg.field(kg.artists, str(b["query"]), "end_date")],
        "music_get_song_author": lambda kg, b: kg.field(kg.songs, str(b["query"]), "author"),
        "music_get_song_release_country": lambda kg, b: kg.field(kg.songs, str(b["query"]), "country"),
        "music_get_song_release_date": lambda kg, b: kg.field(kg.songs, str(b["query"]), "date"),
        "music_get_artist_all_works": lambda kg, b: kg.works.get(str(b["query"])),
        "sports_nba_get_games_on_date": lambda kg, b: kg.nba_games(str(b["date"]), b.get("team_name")),
        "sports_nba_get_play_by_play_data_by_game_ids": lambda kg, b: kg.nba_play_by_play(list(b["game_ids"])),
        "sports_soccer_get_games_on_date": lambda kg, b: kg.soccer_games(str(b["date"]), b.get("team_name")),
    }
    app = FastAPI(title="CRAG mock API (llmlab)")

    @app.get("/")
    async def root_info() -> dict[str, Any]:
        return {"message": "CRAG mock API (llmlab)", "domains": available}

    def make(name: str, domain: str) -> Any:
        async def endpoint(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
            kg = store(domain)
            if name not in handlers:
                raise HTTPException(501, f"{name} is not served by llmlab's server")
            try:
                return {"result": handlers[name](kg, body)}
            except (KeyError, ValueError, TypeError) as exc:
                raise HTTPException(422, f"{name}: bad request body ({exc})") from None
            except DataError as exc:
                raise HTTPException(422, str(exc)) from None
        endpoint.__name__ = name
        return endpoint

    for e in ENDPOINTS:
        app.post(e.path)(make(e.name, e.domain))
    return app


def serve(kg_dir: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the server (blocking) with uvicorn."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("uvicorn", "web", "the CRAG mock-API server") from None
    uvicorn.run(create_app(kg_dir), host=host, port=port, log_level="warning")
