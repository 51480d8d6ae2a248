"""Deterministic fake image scorers for the mOSCAR image filters (no model is bundled or downloaded)."""

from __future__ import annotations

from typing import Any


class UrlWordNSFW:
    """NSFW score 1.0 for an image whose URL contains 'unsafe', else 0.0."""

    def score(self, images: list[dict[str, Any]]) -> list[float]:
        return [1.0 if "unsafe" in str(im.get("url", "")) else 0.0 for im in images]


class SharedWordSimilarity:
    """Similarity = 1.0 when the image URL's file stem appears as a word of the text node, else 0.0."""

    def similarity(self, images: list[dict[str, Any]], texts: list[str]) -> list[list[float]]:
        stems = [str(im.get("url", "")).rsplit("/", 1)[-1].split(".")[0].lower() for im in images]
        return [[1.0 if s in t.lower().split() else 0.0 for t in texts] for s in stems]


def nsfw() -> UrlWordNSFW:
    return UrlWordNSFW()


def joint() -> SharedWordSimilarity:
    return SharedWordSimilarity()
