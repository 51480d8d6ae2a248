"""A tiny CRAG KG folder in the official cragkg layout, and our mock-API server over it in a thread."""

from __future__ import annotations

import bz2
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def make_kg(root: Path) -> Path:
    """Write a tiny KG (open + movie domains) under ``root`` and return it."""
    (root / "open").mkdir(parents=True)
    (root / "movie").mkdir()
    rows = [["Florida City, Florida", {"summary_text": "a city in florida"}],
            ["Florida", {"summary_text": "a us state"}],
            ["Lake Tahoe", {"summary_text": "a lake"}]]
    for i, part in enumerate((rows[:2], rows[2:])):
        with bz2.open(root / "open" / f"kg.{i}.jsonl.bz2", "wt", encoding="utf8") as f:
            for r in part:
                f.write(json.dumps(r) + "\n")
    movies = {"the matrix": {"id": 603, "title": "The Matrix", "release_date": "1999-03-30"},
              "matrix reloaded": {"id": 604, "title": "The Matrix Reloaded", "release_date": "2003-05-15"}}
    people = {"keanu reeves": {"id": 6384, "name": "Keanu Reeves", "acted_movies": [603, 604]}}
    years = {"1999": {"movie_list": [603]}}
    for name, obj in (("movie_db", movies), ("person_db", people), ("year_db", years)):
        (root / "movie" / f"{name}.json").write_text(json.dumps(obj))
    (root / "finance").mkdir()
    # >= 3 names: with 2 documents BM25's idf of a term in one of them is exactly 0 (as in rank_bm25)
    companies = "Name,Symbol\nMeta Platforms Inc,META\nApple Inc,AAPL\nTesla Inc,TSLA\nIntel Corp,INTC\n"
    (root / "finance" / "company_name.dict").write_text(companies)
    stores = {"price": {"META": {"2024-02-28 00:00:00 EST": {"Open": 484.0, "Close": 490.2}}},
              "detailed_price": {}, "dividend": {"AAPL": {"2024-02-09 00:00:00 EST": 0.24}},
              "marketcap": {"META": 1.25e12}, "info": {"META": {"forwardEps": 20.1, "forwardPE": 24.4}}}
    for name, table in stores.items():
        write_sqlitedict(root / "finance" / f"finance_{name}.sqlite", table)
    make_sports(root / "sports")
    make_music(root / "music")
    return root


def make_music(d: Path) -> None:
    """The six music pickles in the official layout (tiny)."""
    import pickle

    import pandas as pd

    d.mkdir()
    tables = {
        "artist_dict_simplified": {"Maroon 5": {"country": "US", "birth_date": "1994", "end_date": None,
                                                "members": ["Adam Levine", "James Valentine", "Adam Levine"]},
                                   "Adele": {"country": "GB", "birth_date": "1988-05-05", "end_date": None,
                                             "members": []},
                                   "Arctic Monkeys": {"country": "GB", "birth_date": "2002", "end_date": None,
                                                      "members": []}},
        "song_dict_simplified": {"Hello": {"author": "Adele", "country": "GB", "date": "2015-10-23"},
                                 "Sugar": {"author": "Maroon 5", "country": "US", "date": "2015-01-13"},
                                 "Yellow": {"author": "Coldplay", "country": "GB", "date": "2000-06-26"}},
        "grammy_df": pd.DataFrame({"year": [2009, 2016, 2016], "category": ["Best New Artist", "Song Of The Year",
                                                                            "Album Of The Year"],
                                   "nominee": ["Adele", "Hello", "25"], "artist": [None, "Adele", "Adele"],
                                   "workers": [None, "Adele Adkins", None]}),
        "rank_dict_hot100": {"1": [{"Date": "2015-11-14", "Song": "Hello", "Artist": "Adele"}]},
        # columns as the official reader indexes them: 3 rank, then 4-6 (order depends on a new entry)
        "song_dict_hot100": {"Hello": {"2015-11-14": ["Hello", "Adele", "x", 1, 1, 1, "-"]}},
        "artist_work_dict": {"Adele": ["Hello", "Skyfall"]},
    }
    for name, obj in tables.items():
        with (d / f"{name}.pickle").open("wb") as f:
            pickle.dump(obj, f)


def make_sports(d: Path) -> None:
    """NBA sqlite (``game``, ``play_by_play``) and a soccer match table pickle in the official layout."""
    import sqlite3

    import pandas as pd

    d.mkdir()
    conn = sqlite3.connect(d / "nba.sqlite")
    conn.execute("CREATE TABLE game (game_id TEXT, game_date TEXT, team_name_home TEXT, team_name_away TEXT, "
                 "pts_home REAL, wl_home TEXT)")
    conn.executemany("INSERT INTO game VALUES (?, ?, ?, ?, ?, ?)", [
        ("0022300001", "2023-10-24 00:00:00", "Denver Nuggets", "Los Angeles Lakers", 119.0, "W"),
        ("0022300002", "2023-10-25 00:00:00", "Philadelphia 76ers", "Milwaukee Bucks", 117.0, "L"),
        ("0022300003", "2023-11-02 00:00:00", "Los Angeles Lakers", "Phoenix Suns", 95.0, "L")])
    conn.execute("CREATE TABLE play_by_play (game_id TEXT, eventnum INTEGER, homedescription TEXT)")
    conn.executemany("INSERT INTO play_by_play VALUES (?, ?, ?)", [("0022300001", 1, "Jump ball"),
                                                                 ("0022300003", 1, "Tip")])
    conn.commit()
    conn.close()
    idx = pd.MultiIndex.from_tuples([("ENG-Premier League", "2324", "Arsenal", "g1"),
                                     ("ENG-Premier League", "2324", "Chelsea", "g2")],
                                    names=["league", "season", "team", "game"])
    df = pd.DataFrame({"date": pd.to_datetime(["2024-01-20", "2024-02-04"]), "GF": [5, 1]}, index=idx)
    df.to_pickle(d / "soccer_team_match_stats.pkl")


def write_sqlitedict(path: Path, table: dict[str, object]) -> None:
    """A file in sqlitedict's layout (table ``unnamed``, pickled values), as the official finance KG."""
    import pickle
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unnamed (key TEXT PRIMARY KEY, value BLOB)")
    conn.executemany("INSERT INTO unnamed VALUES (?, ?)", [(k, pickle.dumps(v)) for k, v in table.items()])
    conn.commit()
    conn.close()


@contextlib.contextmanager
def serve_crag(kg_dir: Path) -> Iterator[str]:
    """Our mock-API server over ``kg_dir`` in a uvicorn thread; yields its base URL."""
    import socket

    import uvicorn

    from llmlab.tasks.crag.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(kg_dir), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
