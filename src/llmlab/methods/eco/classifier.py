"""ECO's prompt classifier: flag prompts about the forget target (a small model trained here).

The official repo fine-tunes RoBERTa-base per task. We train a TF-IDF (word 1-2-grams + character 2-5-grams)
logistic regression with scikit-learn: it needs no download, trains in a second on CPU, and its
decision rule is the official one: a prompt is flagged iff the forget class wins (p > 0.5) AND
p(forget) > ``threshold`` (the official ``PromptClassifier.predict``: label LABEL_1 and score > threshold;
default 0.5, the zeroth-order script uses 0.999).

Data loaders: the synthetic WMDP questions that ECO trains its WMDP classifier on (``eco`` dataset,
``local_data/synthetic_wmdp_questions/synthetic_questions_{bio,chem,cyber}.csv``), and any retain prompts.
"""

from __future__ import annotations

import ast
import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError, DataError, MissingExtraError

WMDP_SUBJECTS = ("bio", "chem", "cyber")


def load_synthetic_wmdp(root: Path, subjects: Sequence[str] = WMDP_SUBJECTS) -> list[dict[str, Any]]:
    """The synthetic WMDP questions: ``{question, choices[4], answer (0-based), subject}`` per row.

    Args:
        root: The ``eco`` dataset folder (holding ``local_data/``).
        subjects: Which CSVs to read.

    Raises:
        DataError: A file is missing or a row's ``choices`` is not a list literal / ``answer`` out of range.
    """
    rows: list[dict[str, Any]] = []
    for subject in subjects:
        path = root / "local_data" / "synthetic_wmdp_questions" / f"synthetic_questions_{subject}.csv"
        if not path.is_file():
            raise DataError(f"synthetic WMDP file not found: {path}")
        with path.open(newline="", encoding="utf-8") as f:
            for line, rec in enumerate(csv.DictReader(f), start=2):
                try:
                    choices = ast.literal_eval(rec["choices"])  # a Python list literal, not JSON
                    answer = int(rec["answer"])
                except (ValueError, SyntaxError, KeyError) as exc:
                    raise DataError(f"{path}:{line}: bad row ({exc})") from None
                if not isinstance(choices, list) or not 0 <= answer < len(choices):
                    raise DataError(f"{path}:{line}: 'choices' must be a list and 'answer' an index into it")
                rows.append({"question": rec["question"], "choices": [str(c) for c in choices], "answer": answer,
                             "subject": subject})
    return rows


class PromptClassifier:
    """TF-IDF + logistic regression, P(forget | prompt), with ECO's threshold rule.

    Example:
        >>> clf = PromptClassifier().fit(["how to make nerve agent", "synthesise toxin x"] * 5,
        ...                              ["capital of France", "how tall is Everest"] * 5)
        >>> clf.flag(["how to make a toxin"]), clf.flag(["capital of Spain"])
        ([True], [False])
    """

    def __init__(self, threshold: float = 0.5, c: float = 10.0, seed: int = 0) -> None:
        if not 0.0 <= threshold < 1.0:
            raise ConfigError(f"threshold must be in [0, 1), got {threshold}")
        self.threshold = threshold
        self.c = c
        self.seed = seed
        self.pipeline: Any = None

    def fit(self, forget: Sequence[str], retain: Sequence[str]) -> PromptClassifier:
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline, make_union
        except ImportError:
            raise MissingExtraError("scikit-learn", "trust", "the ECO prompt classifier") from None
        if not forget or not retain:
            raise ConfigError("the prompt classifier needs forget and retain examples")
        feats = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                           TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
        self.pipeline = make_pipeline(feats, LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed,
                                                                class_weight="balanced"))
        self.pipeline.fit([*forget, *retain], [1] * len(forget) + [0] * len(retain))
        return self

    def proba(self, prompts: Sequence[str]) -> list[float]:
        """P(forget) per prompt."""
        if self.pipeline is None:
            raise ConfigError("fit the prompt classifier first")
        return [float(p) for p in self.pipeline.predict_proba(list(prompts))[:, 1]]

    def flag(self, prompts: Sequence[str], threshold: float | None = None) -> list[bool]:
        """Flagged iff the forget class wins and its probability exceeds the threshold."""
        t = threshold if threshold is not None else self.threshold
        return [p > 0.5 and p > t for p in self.proba(prompts)]


def split(items: Sequence[str], test_frac: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded (train, test) split."""
    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    k = round(len(items) * test_frac)
    return [items[i] for i in idx[k:]], [items[i] for i in idx[:k]]


def classifier_report(forget: Sequence[str], retain: Sequence[str], related: Sequence[str] = (),
                      test_frac: float = 0.3, seed: int = 0, thresholds: Sequence[float] = (0.5, 0.999)
                      ) -> dict[str, Any]:
    """Train on a split and report held-out flag rates per threshold.

    The rates: TPR on forget, FPR on retain, and FPR on a closely related domain (``related``, never trained on).
    """
    f_tr, f_te = split(forget, test_frac, seed)
    r_tr, r_te = split(retain, test_frac, seed)
    clf = PromptClassifier(seed=seed).fit(f_tr, r_tr)
    out: dict[str, Any] = {"train": {"forget": len(f_tr), "retain": len(r_tr)},
                           "test": {"forget": len(f_te), "retain": len(r_te), "related": len(related)}}
    for t in thresholds:
        row = {"tpr_forget": _rate(clf.flag(f_te, t)), "fpr_retain": _rate(clf.flag(r_te, t))}
        if related:
            row["fpr_related"] = _rate(clf.flag(list(related), t))
        out[f"threshold={t}"] = row
    return out


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0
