"""Where a task finds its data.

Order: an explicit ``data_dir`` (``--data-dir``) → ``$LLMLAB_DATA_DIR`` → a ``shared/data`` folder beside
the working directory (``../shared/data``, the project's development layout) → the local cache
(``$LLMLAB_CACHE_DIR/data`` or ``~/.cache/llmlab/data``) → the dataset's official public source, downloaded
into the cache when the machine is online. Each directory is searched as ``<dir>/<dataset>/<parts...>``.

Datasets are never shipped with llmlab. :data:`OFFICIAL_SOURCES` maps a file to the URL it is published at.
"""

from __future__ import annotations

import os
from pathlib import Path

from llmlab.core.errors import DataError

# dataset -> relative file -> official URL (the upstream repository's raw file).
OFFICIAL_SOURCES: dict[str, dict[str, str]] = {
    "gsm8k": {
        name: f"https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/{name}"
        for name in ("test.jsonl", "train.jsonl", "test_socratic.jsonl", "train_socratic.jsonl")
    },
}


def cache_dir() -> Path:
    root = os.environ.get("LLMLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "llmlab") / "data"


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories searched, in order."""
    out: list[Path] = []
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get("LLMLAB_DATA_DIR")
    if env:
        out.append(Path(env))
    out.append(Path.cwd().parent / "shared" / "data")
    out.append(cache_dir())
    return out


def find_data(
    dataset: str,
    *parts: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
) -> Path:
    """Return the path of ``<dataset>/<parts>``, downloading it from its official source if needed.

    Args:
        dataset: Folder name of the dataset (``"gsm8k"``).
        *parts: Path inside it (``"test.jsonl"``).
        data_dir: An explicit data folder; when given, only it is searched (a user's own copy).
        download: Allow fetching from the official source (default: unless ``LLMLAB_OFFLINE=1`` or
            ``HF_HUB_OFFLINE=1``).

    Raises:
        DataError: Not found anywhere (the message lists where it looked and how to fix it).
    """
    rel = Path(dataset, *parts)
    looked = []
    for d in candidate_dirs(data_dir):
        path = d / rel
        if path.exists():
            return path
        looked.append(str(d))
    if download is None:
        download = os.environ.get("LLMLAB_OFFLINE") != "1" and os.environ.get("HF_HUB_OFFLINE") != "1"
    url = OFFICIAL_SOURCES.get(dataset, {}).get("/".join(parts))
    if data_dir is None and download and url is not None:
        return download_file(url, cache_dir() / rel)
    raise DataError(
        f"data file {rel} not found (looked in: {', '.join(looked)}); pass --data-dir DIR or set "
        f"LLMLAB_DATA_DIR to a folder holding {dataset}/"
    )


def download_file(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically (a partial file never lands at ``dest``).

    Raises:
        DataError: The download failed (offline, HTTP error).
    """
    import httpx

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            r.raise_for_status()
            with tmp.open("wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not download {url} ({exc}); pass --data-dir DIR with a local copy") from None
    tmp.replace(dest)
    return dest
