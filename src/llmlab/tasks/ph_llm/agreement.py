r"""Agreement between raters of PH-LLM case studies: experts with each other, AutoEval with experts.

Implements the analyses behind the paper's agreement figures (Nature Medicine version; the official
``phllm/figures/phllm_figures.ipynb`` draws them from the released ratings, dataset ``ph-llm``):

* Extended Data Fig. 3 — pairwise Gwet's AC2 with quadratic weights for every pair of expert raters that
  rated the same (case study, section, principle, response source), with bootstrap 95% CIs.
* Extended Data Fig. 4 — the 5×5 contingency table of each such pair.
* Extended Data Fig. 6 — the AutoEval rater fine-tuned on one expert's ratings (``primary_c``, "high
  variance" sampling) against that expert and against the other experts.
* Extended Data Figs. 7–8 — mean ratings per response source by AutoEval; here also compared with the
  experts' ordering of the same sources (Spearman over sources).

Gwet's AC2 for two raters over ``n`` items with observed categories ``c_1 < … < c_q`` and quadratic weights
``w_kl = 1 − ((c_k − c_l)/(c_q − c_1))²``: ``p_a = mean w(x_i, y_i)``, ``π_k`` = share of all ``2n``
ratings in category ``k``, ``p_e = Σw / (q(q−1)) · Σ_k π_k(1 − π_k)``, ``AC2 = (p_a − p_e)/(1 − p_e)``
(Gwet 2014; equals ``irrCAC.raw.CAC(df, weights="quadratic").gwet()`` — the official call — which takes
the categories from the data, as here; see ``tests/parity/test_ph_llm_irrcac.py``).

Deviations: CIs are percentile bootstraps over items (1000 draws, seeded), not the official helper's; the
expert pivot averages duplicate ratings like the official ``pivot_table`` (the released files have none).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError
from llmlab.stats import correlation

Key = tuple[str, str, str, str]  # (case_study_id, tag, principle, conversation_source)
LIKERT = (1, 2, 3, 4, 5)

# The AutoEval rater released per vertical: fine-tuned on one expert's ratings (paper: the best AutoRater).
AUTOEVAL_COLUMNS = {
    "sleep": ("rating_autoeval_sleep_primary_c_high_var", "sleep_primary_c"),
    "fitness": ("rating_autoeval_fitness_primary_c_high_var", "fitness_primary_c"),
}
BASELINE_COLUMN = "rating_autoeval_gemini_pro_baseline"
NO_RATER = "no_human_rater"


def read_tsv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header.

    Raises:
        DataError: The file is missing or lacks a required column.
    """
    if not path.is_file():
        raise DataError(f"ratings file {path} not found; pass --data-dir DIR holding ph-llm/autoeval_ratings/")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = set(required) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {sorted(missing)}")
        return list(reader)


def quadratic_weights(categories: Sequence[float]) -> list[list[float]]:
    """``w_kl = 1 − ((c_k − c_l) / (c_max − c_min))²`` (the identity matrix for a single category)."""
    q = len(categories)
    span = (max(categories) - min(categories)) if q > 1 else 1.0
    return [[1.0 - ((a - b) / span) ** 2 for b in categories] for a in categories]


def gwet_ac2(a: Sequence[float], b: Sequence[float], categories: Sequence[float] | None = None) -> float:
    """Gwet's AC2 (quadratic weights) of two raters' paired ratings.

    Args:
        a: Rater A's ratings.
        b: Rater B's ratings of the same items, same order.
        categories: The rating categories (default: those observed in ``a`` and ``b``, like irrCAC).

    Raises:
        DataError: Empty or unequal-length inputs.

    Example:
        >>> gwet_ac2([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
        1.0
        >>> round(gwet_ac2([5, 5, 4, 5], [5, 4, 4, 5]), 4)
        0.9231
    """
    if len(a) != len(b) or not a:
        raise DataError(f"AC2 needs two equal-length, non-empty rating lists (got {len(a)} and {len(b)})")
    cats = sorted(set(a) | set(b)) if categories is None else sorted(categories)
    q = len(cats)
    idx = {c: i for i, c in enumerate(cats)}
    w = quadratic_weights(cats)
    n = len(a)
    pa = sum(w[idx[x]][idx[y]] for x, y in zip(a, b, strict=True)) / n
    counts = [0] * q
    for x in itertools.chain(a, b):
        counts[idx[x]] += 1
    pi = [c / (2 * n) for c in counts]
    # a single category: irrCAC's convention pe = 1 - 1e-15
    pe = 1 - 1e-15 if q < 2 else sum(map(sum, w)) * sum(p * (1 - p) for p in pi) / (q * (q - 1))
    return (pa - pe) / (1 - pe)


def contingency(a: Sequence[float], b: Sequence[float], labels: Sequence[int] = LIKERT) -> list[list[int]]:
    """Counts ``m[i][j]`` of items rated ``labels[i]`` by A and ``labels[j]`` by B.

    Example:
        >>> contingency([5, 4], [5, 5], labels=(4, 5))
        [[0, 1], [0, 1]]
    """
    pos = {lab: i for i, lab in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for x, y in zip(a, b, strict=True):
        if x in pos and y in pos:
            m[pos[int(x)]][pos[int(y)]] += 1
    return m


def bootstrap_ci(a: Sequence[float], b: Sequence[float], n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of :func:`gwet_ac2` over resampled items (vectorised with numpy).

    Every draw uses the categories observed in the full sample (a draw that loses a category keeps its
    weight matrix), so the CI is of the same statistic as the point estimate.
    """
    import numpy as np

    cats = sorted(set(a) | set(b))
    q = len(cats)
    if q < 2 or n_boot <= 0:
        return math.nan, math.nan
    idx = {c: i for i, c in enumerate(cats)}
    w = np.asarray(quadratic_weights(cats))
    ia = np.asarray([idx[x] for x in a])
    ib = np.asarray([idx[y] for y in b])
    n = len(ia)
    rng = np.random.default_rng(seed)
    vals: list[float] = []
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        draw = rng.integers(0, n, size=(m, n))  # (m, n) item indices
        xa, xb = ia[draw], ib[draw]
        pa = w[xa, xb].mean(axis=1)
        counts = np.zeros((m, q))
        for k in range(q):
            counts[:, k] = (xa == k).sum(axis=1) + (xb == k).sum(axis=1)
        pi = counts / (2 * n)
        pe = w.sum() * (pi * (1 - pi)).sum(axis=1) / (q * (q - 1))
        vals.extend(((pa - pe) / (1 - pe)).tolist())
        done += m
    lo, hi = np.quantile(np.asarray(vals), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rater_type(rater: str) -> str:
    """``primary``, ``secondary`` or ``autoeval`` from a rater id (``sleep_primary_a`` → ``primary``)."""
    if rater.startswith("rating_autoeval"):
        return "autoeval"
    for kind in ("primary", "secondary"):
        if f"_{kind}_" in rater:
            return kind
    raise DataError(f"unexpected rater id {rater!r} (expected <vertical>_primary_<x> or <vertical>_secondary_<x>)")


def row_key(row: Mapping[str, str]) -> Key:
    """The rated unit, without the rater (the official ``_key_no_rater_column``)."""
    return (row["case_study_id"], row["tag"], row["principle"], row["conversation_source"])


def pivot(rows: Iterable[Mapping[str, str]], rating_col: str = "rating",
          rater_col: str = "rater") -> dict[Key, dict[str, float]]:
    """``{unit: {rater: rating}}``; duplicate ratings of a unit by one rater are averaged (``pivot_table``)."""
    acc: dict[Key, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[row_key(r)][r[rater_col]].append(float(r[rating_col]))
    return {k: {rt: sum(v) / len(v) for rt, v in d.items()} for k, d in acc.items()}


def rater_pairs(piv: Mapping[Key, Mapping[str, float]]) -> list[tuple[str, str]]:
    """Every pair of raters (sorted ids) that rated at least one common unit (the official ``get_rater_pairs``)."""
    pairs: set[tuple[str, str]] = set()
    for raters in piv.values():
        pairs.update(itertools.combinations(sorted(raters), 2))
    return sorted(pairs)


@dataclass
class PairAgreement:
    """Agreement of two raters on the units both rated."""

    rater_a: str
    rater_b: str
    kind: str
    n: int
    ac2: float
    ci: tuple[float, float]
    exact: float
    within_one: float
    contingency: list[list[int]] = field(default_factory=list)


def pair_agreement(piv: Mapping[Key, Mapping[str, float]], a: str, b: str, n_boot: int = 1000,
                   seed: int = 0) -> PairAgreement:
    """AC2 (with bootstrap CI), exact and within-one agreement, and the contingency table of raters a and b."""
    xs, ys = [], []
    for raters in piv.values():
        if a in raters and b in raters:
            xs.append(raters[a])
            ys.append(raters[b])
    if not xs:
        raise DataError(f"raters {a} and {b} share no rated unit")
    kind = "-".join(sorted((rater_type(a), rater_type(b))))
    ci = bootstrap_ci(xs, ys, n_boot=n_boot, seed=seed)
    return PairAgreement(a, b, kind, len(xs), gwet_ac2(xs, ys), ci,
                         sum(x == y for x, y in zip(xs, ys, strict=True)) / len(xs),
                         sum(abs(x - y) <= 1 for x, y in zip(xs, ys, strict=True)) / len(xs),
                         contingency(xs, ys))


def expert_agreement(rows: Sequence[Mapping[str, str]], n_boot: int = 1000, seed: int = 0) -> list[PairAgreement]:
    """Extended Data Figs. 3–4: every expert pair with shared units."""
    piv = pivot(rows)
    return [pair_agreement(piv, a, b, n_boot, seed) for a, b in rater_pairs(piv)]


def autoeval_overlap(human_rows: Sequence[Mapping[str, str]], autoeval_rows: Sequence[Mapping[str, str]],
                     autoeval_col: str, trained_rater: str, n_boot: int = 1000,
                     seed: int = 0) -> list[PairAgreement]:
    """Extended Data Fig. 6: the trained expert vs others, the AutoEval rater vs others, and the two together.

    The AutoEval ratings used are those of the units the trained expert rated (rows whose ``rater`` is the
    trained expert), relabelled as the AutoEval rater and merged with the expert ratings (the official
    ``_prep_df``).
    """
    merged = [dict(r) for r in human_rows]
    merged += [{**r, "rater": autoeval_col, "rating": r[autoeval_col]} for r in autoeval_rows
               if r["rater"] == trained_rater]
    piv = pivot(merged)
    out = []
    for a, b in rater_pairs(piv):
        if trained_rater in (a, b) or autoeval_col in (a, b):
            other, me = (b, a) if a in (trained_rater, autoeval_col) and b not in (trained_rater, autoeval_col) \
                else (a, b)
            out.append(pair_agreement(piv, other, me, n_boot, seed))
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ with average ranks for ties (NaN if either side is constant)."""
    rho = correlation.spearman(x, y)
    return math.nan if rho is None else rho


def source_means(rows: Iterable[Mapping[str, str]], rating_col: str) -> dict[str, float]:
    """Mean rating per response source (``conversation_source``)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        acc[r["conversation_source"]].append(float(r[rating_col]))
    return {k: sum(v) / len(v) for k, v in sorted(acc.items())}


def ratings_paths(folder: Path, vertical: str) -> dict[str, Path]:
    """The released ratings files of a vertical inside ``folder`` (``ph-llm/autoeval_ratings``)."""
    return {kind: folder / f"{vertical}_{kind}_ratings.tsv"
            for kind in ("human_expert", "autoeval_external", "autoeval_subsample")}


HUMAN_COLUMNS = ("case_study_id", "rater", "rater_type", "tag", "principle", "conversation_source", "rating")
AUTOEVAL_BASE_COLUMNS = ("case_study_id", "conversation_source", "principle", "rater", "tag", "rating_human_expert")


def analyze_vertical(folder: Path, vertical: str, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every agreement figure of one vertical from the released ratings in ``folder``."""
    col, trained = AUTOEVAL_COLUMNS[vertical]
    paths = ratings_paths(folder, vertical)
    human = read_tsv(paths["human_expert"], HUMAN_COLUMNS)
    external = read_tsv(paths["autoeval_external"], (*AUTOEVAL_BASE_COLUMNS, col, BASELINE_COLUMN))
    subsample = read_tsv(paths["autoeval_subsample"], (*AUTOEVAL_BASE_COLUMNS, col))

    experts = expert_agreement(human, n_boot, seed)
    overlap = autoeval_overlap(human, external, col, trained, n_boot, seed)

    # AutoEval vs the expert rating stored in the same row (rows that have a human rater).
    rated = [r for r in external if r["rater"] != NO_RATER]
    vs_expert: dict[str, Any] = {}
    for name, c in (("autoeval", col), ("gemini_pro_baseline", BASELINE_COLUMN)):
        for scope, rs in (("all_experts", rated), ("trained_expert", [r for r in rated if r["rater"] == trained])):
            xs = [float(r["rating_human_expert"]) for r in rs]
            ys = [float(r[c]) for r in rs]
            vs_expert[f"{name}/{scope}"] = {"n": len(xs), "ac2": gwet_ac2(xs, ys),
                                            "ci": bootstrap_ci(xs, ys, n_boot, seed),
                                            "exact": sum(x == y for x, y in zip(xs, ys, strict=True)) / len(xs)}

    # Ranking of response sources: experts (human file) vs AutoEval (external file, all rows incl. unrated).
    expert_means = source_means(human, "rating")
    auto_means = source_means(external, col)
    common = sorted(set(expert_means) & set(auto_means))
    ranking = {"expert_means": expert_means, "autoeval_means": auto_means,
               "autoeval_subsample_means": source_means(subsample, col), "common_sources": common,
               "spearman": spearman([expert_means[s] for s in common], [auto_means[s] for s in common])}

    ee = [p for p in experts if "autoeval" not in p.kind]
    trained_vs_others = [p.ac2 for p in overlap if p.rater_b == trained and p.rater_a != col]
    auto_vs_others = [p.ac2 for p in overlap if p.rater_b == col and p.rater_a != trained]
    auto_vs_trained = [p.ac2 for p in overlap if {p.rater_a, p.rater_b} == {col, trained}]
    summary = {
        "n_expert_pairs": len(ee),
        "expert_pair_ac2_mean": sum(p.ac2 for p in ee) / len(ee),
        "expert_pair_ac2_range": (min(p.ac2 for p in ee), max(p.ac2 for p in ee)),
        "trained_expert_vs_others_ac2_mean": _mean(trained_vs_others),
        "autoeval_vs_others_ac2_mean": _mean(auto_vs_others),
        "autoeval_vs_trained_expert_ac2": auto_vs_trained[0] if auto_vs_trained else math.nan,
        "autoeval_vs_expert_rows_ac2": vs_expert["autoeval/all_experts"]["ac2"],
        "baseline_vs_expert_rows_ac2": vs_expert["gemini_pro_baseline/all_experts"]["ac2"],
    }
    return {"vertical": vertical, "autoeval_column": col, "trained_expert": trained, "summary": summary,
            "expert_pairs": [asdict(p) for p in experts], "autoeval_overlap": [asdict(p) for p in overlap],
            "autoeval_vs_expert": vs_expert, "ranking": ranking}


def _mean(v: Sequence[float]) -> float:
    return sum(v) / len(v) if v else math.nan


def claims(report: Mapping[str, Mapping[str, Any]]) -> dict[str, bool]:
    """The paper's agreement statements as we read them, checked on a report of both verticals.

    See docs/ph_llm.md for the wording of each and where it comes from.
    """
    out: dict[str, bool] = {}
    n_pairs = {"sleep": 12, "fitness": 11}  # the official notebook asserts these counts for Extended Data Fig. 3
    for v, rep in report.items():
        s = rep["summary"]
        vs = rep["autoeval_vs_expert"]
        out[f"{v}: {n_pairs[v]} expert pairs share rated units"] = s["n_expert_pairs"] == n_pairs[v]
        out[f"{v}: on its training expert's units the fine-tuned AutoEval agrees with that expert more than "
            "untuned Gemini Pro does"] = \
            vs["autoeval/trained_expert"]["ac2"] > vs["gemini_pro_baseline/trained_expert"]["ac2"]
        out[f"{v}: AutoEval agrees with the other experts about as well as its training expert does (within 0.1)"] = \
            abs(s["autoeval_vs_others_ac2_mean"] - s["trained_expert_vs_others_ac2_mean"]) <= 0.1
        rk = rep["ranking"]
        if v == "sleep":
            out["sleep: AutoEval orders the expert-rated response sources as the experts do (Spearman = 1)"] = \
                rk["spearman"] > 0.999
            sub = rk["autoeval_subsample_means"]
            out["sleep: AutoEval rates every fine-tuned variant (25%, 50%, 100% data) above untuned Gemini Ultra"] = \
                all(sub[k] > sub["gemini_ultra"] for k in ("phllm_subsample_25pct", "phllm_subsample_50pct", "phllm"))
        else:
            spread = {k: max(m.values()) - min(m.values()) for k, m in
                      (("experts", {x: rk["expert_means"][x] for x in rk["common_sources"]}),
                       ("autoeval", {x: rk["autoeval_means"][x] for x in rk["common_sources"]}))}
            out["fitness: experts and AutoEval both rate the response sources within 0.1 Likert points of each "
                "other"] = spread["experts"] < 0.1 and spread["autoeval"] < 0.1
    return out


def analyze(folder: Path, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Both verticals' agreement figures and the claim checks, from ``folder`` = ``ph-llm/autoeval_ratings``."""
    report = {v: analyze_vertical(folder, v, n_boot, seed) for v in ("sleep", "fitness")}
    return {"verticals": report, "claims": claims(report)}
