"""Where a task finds its data: where the user's data lives, never this repository's test layout.

Order: an explicit ``data_dir`` (``--data-dir``) → ``$LLMLAB_DATA_DIR`` → the local cache
(``$LLMLAB_CACHE_DIR/data`` or ``~/.cache/llmlab/data``) → the dataset's official source, fetched into the
cache when the machine is online. Each directory is searched as ``<dir>/<dataset>/<parts...>``.

A dataset's official source is registered by its system (a ``dataset`` entry of the registry) as either a
``{file: url}`` table (a raw file published on the web) or ``{"hf_repo": "owner/name", "files": {...}}``
for a dataset on the Hugging Face hub, fetched with ``huggingface_hub.hf_hub_download`` (its own cache,
``HF_HUB_OFFLINE`` respected). Offline, the lookup fails at once with one line naming ``--data-dir``.
Datasets are never shipped with llmlab.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError

# Extra sources for datasets a user or a test adds at run time: dataset -> {file: url}.
OFFICIAL_SOURCES: dict[str, dict[str, Any]] = {}


def cache_dir() -> Path:
    root = os.environ.get("LLMLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "llmlab") / "data"


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories searched, in order."""
    if data_dir is not None:
        return [Path(data_dir)]
    out: list[Path] = []
    env = os.environ.get("LLMLAB_DATA_DIR")
    if env:
        out.append(Path(env))
    out.append(cache_dir())
    return out


def is_offline() -> bool:
    """True when the user said so (``LLMLAB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return os.environ.get("LLMLAB_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


def official_source(dataset: str) -> dict[str, Any]:
    """The registered official source table of ``dataset`` (empty when it has none)."""
    if dataset in OFFICIAL_SOURCES:
        return OFFICIAL_SOURCES[dataset]
    from llmlab.core.registry import DATASETS

    if dataset in DATASETS:
        src: dict[str, Any] = DATASETS.raw(dataset)
        return src
    return {}


def find_data(
    dataset: str,
    *parts: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
) -> Path:
    """Return the path of ``<dataset>/<parts>``, fetching it from its official source if needed.

    Args:
        dataset: Folder name of the dataset (``"gsm8k"``).
        *parts: Path inside it (``"test.jsonl"``).
        data_dir: An explicit data folder; when given, only it is searched (a user's own copy).
        download: Allow fetching from the official source (default: unless offline, see :func:`is_offline`).

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
        download = not is_offline()
    source = official_source(dataset)
    name = "/".join(parts)
    fix = f"pass --data-dir DIR or set LLMLAB_DATA_DIR to a folder holding {dataset}/"
    if data_dir is None and source:
        if "hf_repo" in source:
            filename = source.get("files", {}).get(name)
            if filename is not None:
                if not download:
                    raise DataError(f"data file {rel} not cached and the machine is offline (HF_HUB_OFFLINE); {fix}")
                return hf_download(source["hf_repo"], filename, cache_dir() / rel, revision=source.get("revision"))
        elif name in source:
            if not download:
                raise DataError(f"data file {rel} not cached and the machine is offline; {fix}")
            return download_file(source[name], cache_dir() / rel)
    raise DataError(f"data file {rel} not found (looked in: {', '.join(looked)}); {fix}")


def hf_download(repo: str, filename: str, dest: Path, revision: str | None = None) -> Path:
    """Fetch ``filename`` of the hub dataset ``repo`` with ``huggingface_hub`` and link it at ``dest``.

    Raises:
        DataError: huggingface_hub is missing, or the file cannot be fetched (offline, gated, absent).
    """
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise DataError(f"fetching {repo} needs huggingface_hub: pip install 'llmlab[hf]' or pass --data-dir") from None
    try:
        got = Path(hf_hub_download(repo, filename, repo_type="dataset", revision=revision,
                                   etag_timeout=5))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not fetch {filename} of hub dataset {repo} ({first}); pass --data-dir DIR "
                        "with a local copy") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        try:
            dest.symlink_to(got)
        except OSError:
            import shutil

            shutil.copyfile(got, dest)
    return dest


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
