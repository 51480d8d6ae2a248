"""Black-box confidence estimation from query access: consistency features + logistic regression.

Paper: "Large Language Model Confidence Estimation via Black-Box Access", Pedapati, Dhurandhar, Ghosh, Dan,
Sattigeri (IBM), arXiv 2406.04370 (TMLR 2025). No official code.

Implements (§3, Algorithms 1-7 as described in the paper's framework):

- Perturbations of the input or of decoding, each answered by the model (:class:`ConfidenceEstimator`):
  stochastic decoding (SD, ``n`` samples), paraphrasing by back-translation (PP, an injected or
  LLM-based translator), question rephrasing (QR, the LLM rephrases), sentence permutation of a context
  (SP), entity frequency amplification (EFA, sentences with entities repeated), stopword removal (SR),
  in-context perturbation (ICP, an extra in-context example), and verbalized confidence (VC, the model
  states 0-100).
- Per perturbation, features between the original response ``r0`` and the perturbed responses ``R``
  (:func:`consistency_features`): number of semantic sets of ``{r0} ∪ R`` (bidirectional-entailment
  clustering, Kuhn et al. 2023, with an injected NLI or a normalised-match equivalence), lexical similarity
  (mean pairwise ROUGE-L F), and agreement (fraction of ``R`` equivalent to ``r0``).
- Split response consistency (SRC, :func:`split_response_consistency`): the response is split at random
  word boundaries and an NLI scores contradiction between the two parts; features max and min.
- A logistic-regression confidence model on the feature vector (scikit-learn), AUROC/ECE/Brier, a
  cross-validated report (:func:`cross_validated_report`), and transfer (fit on one table, score another).
- The real-data check (:func:`triviaqa_feature_table`): the 20 LLaMA-13B samples per TriviaQA question
  released with Lin et al.'s UQ-NLG (``uq-triviaqa-llama13b``); the original response is sample 0, the
  other samples are the SD responses; the label is sample 0's correctness.

Deliberate deviations:

- No NLI model is available offline, so the real-data semantic sets use a normalised-match equivalence
  (SQuAD normalisation, then equality or containment of one normalised answer in the other); the NLI is
  an injected callable (:data:`NLI`) everywhere, e.g. a DeBERTa-MNLI pipeline, for users who have one.
  SRC needs an NLI and is left out of the real-data table (its answers are a few words long anyway).
- Only SD is measurable on the released data (it has samples, not perturbed prompts); the other
  perturbations run against a live model (``ConfidenceEstimator.features``).
- Correctness: normalised exact match (SQuAD normalisation; the reference or the answer contained in the
  other counts) against the reference; Lin et al.'s ROUGE-L > 0.3 label is offered as ``label="rougeL"``.
- Back-translation by default asks the same LLM to translate (query access only); the paper used
  MarianMT-style translation models, which an injected ``translate`` callable can supply.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Roles
from llmlab.core.errors import ConfigError, DataError, MissingExtraError
from llmlab.grading.text import normalize_answer
from llmlab.stats.correlation import average_ranks

NLI = Callable[[str, str], Mapping[str, float]]
"""``nli(premise, hypothesis) -> {"entailment": p, "neutral": p, "contradiction": p}``."""

# Question words (what, which, who, ...) are kept: dropping them changes what is asked.
_STOPWORDS = (
    "a an the of in on at to for from by with and or but is are was were be been being this that these those "
    "it its as into than then there their they them he she his her him i you we our your "
    "do does did has have had not no so such can could would should will shall may might must"
)
STOPWORDS = frozenset(_STOPWORDS.split())

PARAPHRASE_TRANSLATE = "Translate the following text into {language}. Reply with the translation only.\n\n{text}"
REPHRASE_PROMPT = (
    "Rephrase the following question without changing its meaning. Reply with the question only.\n\n{text}"
)
VERBAL_PROMPT = (
    "{prompt}{answer}\n\nHow confident are you that this answer is correct? Reply with a number from 0 to 100 only."
)
ICP_EXAMPLE = "Q: What is the boiling point of water at sea level in degrees Celsius?\nA: 100\n"


# -- answer normalisation and lexical similarity ----------------------------------------------------------




def normalized_match(a: str, b: str) -> bool:
    """Equal after normalisation, or one normalised (non-empty) answer contains the other as whole words.

    Example:
        >>> normalized_match("Botswana", "botswana."), normalized_match("Botswana and South Africa", "Botswana")
        (True, True)
    """
    na, nb = normalize_answer(a), normalize_answer(b)
    if not na or not nb:
        return na == nb
    return na == nb or f" {na} " in f" {nb} " or f" {nb} " in f" {na} "


def _tokens(s: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", s.lower())


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 of the longest common subsequence of lower-cased alphanumeric tokens (no stemming).

    Example:
        >>> rouge_l("the cat sat", "the cat ran"), rouge_l("", "x")
        (0.6666666666666666, 0.0)
    """
    x, y = _tokens(a), _tokens(b)
    if not x or not y:
        return 1.0 if not x and not y else 0.0
    prev = [0] * (len(y) + 1)
    for xi in x:
        cur = [0]
        for j, yj in enumerate(y):
            cur.append(prev[j] + 1 if xi == yj else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(y), lcs / len(x)
    return 2 * p * r / (p + r)


def lexical_similarity(responses: Sequence[str]) -> float:
    """Mean ROUGE-L over ordered pairs ``i != j`` (Lin et al.'s ``lexical_sim``); 1.0 for fewer than 2."""
    n = len(responses)
    if n < 2:
        return 1.0
    counts = Counter(responses)  # identical responses share one ROUGE-L computation
    uniq = list(counts)
    total = 0.0
    for a_i, a in enumerate(uniq):
        total += counts[a] * (counts[a] - 1) * rouge_l(a, a)  # pairs of equal strings (i != j)
        for b in uniq[a_i + 1:]:
            total += 2 * counts[a] * counts[b] * rouge_l(a, b)
    return total / (n * (n - 1))


# -- semantic sets, SRC -------------------------------------------------------------------------------------


def nli_equivalence(nli: NLI, threshold: float = 0.5) -> Callable[[str, str], bool]:
    """Bidirectional entailment: ``a ≡ b`` iff each entails the other (argmax, or p(entail) > threshold)."""

    def entails(p: str, h: str) -> bool:
        probs = nli(p, h)
        return max(probs, key=lambda k: probs[k]) == "entailment" or probs.get("entailment", 0.0) > threshold

    return lambda a, b: entails(a, b) and entails(b, a)


def semantic_sets(responses: Sequence[str], equivalent: Callable[[str, str], bool] = normalized_match) -> list[int]:
    """Set id of each response: a response joins the first set whose first member it is equivalent to.

    This is Kuhn et al.'s greedy clustering (compare with one representative per set). Equivalence costs
    at most ``len(responses) * #sets`` calls.

    Example:
        >>> semantic_sets(["Paris", "paris.", "Lyon", "The Paris"])
        [0, 0, 1, 0]
    """
    reps: list[str] = []
    ids: list[int] = []
    for r in responses:
        for k, rep in enumerate(reps):
            if equivalent(rep, r):
                ids.append(k)
                break
        else:
            reps.append(r)
            ids.append(len(reps) - 1)
    return ids


def consistency_features(original: str, perturbed: Sequence[str], prefix: str,
                         equivalent: Callable[[str, str], bool] = normalized_match) -> dict[str, float]:
    """``{prefix}_numsets``, ``{prefix}_lexsim`` (over ``[original, *perturbed]``) and ``{prefix}_agree``."""
    allr = [original, *perturbed]
    return {
        f"{prefix}_numsets": float(len(set(semantic_sets(allr, equivalent)))),
        f"{prefix}_lexsim": lexical_similarity(allr),
        f"{prefix}_agree": (sum(equivalent(original, r) for r in perturbed) / len(perturbed)) if perturbed else 1.0,
    }


def split_response_consistency(response: str, nli: NLI, n_splits: int = 5, seed: int = 0) -> dict[str, float]:
    """SRC: split the response at ``n_splits`` random word boundaries; NLI contradiction between the parts.

    Returns ``{"src_max": max p(contradiction), "src_min": min ...}`` (0 for a response under 2 words).
    """
    words = response.split()
    if len(words) < 2:
        return {"src_max": 0.0, "src_min": 0.0}
    rng = random.Random(seed)
    scores = []
    for _ in range(n_splits):
        k = rng.randint(1, len(words) - 1)
        scores.append(float(nli(" ".join(words[:k]), " ".join(words[k:])).get("contradiction", 0.0)))
    return {"src_max": max(scores), "src_min": min(scores)}


# -- deterministic input perturbations ----------------------------------------------------------------------


def remove_stopwords(text: str) -> str:
    """SR: drop :data:`STOPWORDS` (case-insensitive, punctuation kept on the remaining words).

    Example:
        >>> remove_stopwords("What is the capital of France?")
        'What capital France?'
    """
    return " ".join(w for w in text.split() if w.lower().strip(string.punctuation) not in STOPWORDS)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def permute_sentences(text: str, seed: int) -> str:
    """SP: shuffle the sentences of a context (seeded)."""
    sents = _sentences(text)
    random.Random(seed).shuffle(sents)
    return " ".join(sents)


def _has_entity(sentence: str) -> bool:
    words = sentence.split()
    return any(w[:1].isupper() for w in words[1:]) or any(ch.isdigit() for ch in sentence)


def amplify_entities(text: str, times: int = 1, has_entity: Callable[[str], bool] = _has_entity) -> str:
    """EFA: each sentence that mentions an entity is repeated ``times`` more times right after itself.

    The default entity detector is a capitalised non-initial word or a digit (an NER model can be passed).

    Example:
        >>> amplify_entities("It rained. The Seine rose.")
        'It rained. The Seine rose. The Seine rose.'
    """
    out: list[str] = []
    for s in _sentences(text):
        out.extend([s] * (1 + times if has_entity(s) else 1))
    return " ".join(out)


# -- metrics ------------------------------------------------------------------------------------------------


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    Raises:
        ConfigError: When only one class is present.

    Example:
        >>> auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
        0.75
    """
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        raise ConfigError("AUROC needs both correct and incorrect examples")
    ranks = average_ranks(scores)  # ties share their average rank
    rank_pos = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def expected_calibration_error(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """ECE with ``bins`` equal-width bins: Σ_b |B|/N · |acc(B) − conf(B)| (a prob of 1.0 goes to the last bin)."""
    n = len(probs)
    total = 0.0
    for b in range(bins):
        idx = [i for i, p in enumerate(probs) if min(int(p * bins), bins - 1) == b]
        if idx:
            acc = sum(labels[i] for i in idx) / len(idx)
            conf = sum(probs[i] for i in idx) / len(idx)
            total += len(idx) / n * abs(acc - conf)
    return total


def brier_score(probs: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean squared error of the probabilities against 0/1 labels."""
    return sum((p - float(y)) ** 2 for p, y in zip(probs, labels, strict=True)) / len(probs)


# -- the confidence model ---------------------------------------------------------------------------------


def _sklearn() -> Any:
    try:
        import sklearn.linear_model
        import sklearn.model_selection
        import sklearn.pipeline
        import sklearn.preprocessing
    except ImportError:
        raise MissingExtraError("scikit-learn", "trust", "the confidence model (logistic regression)") from None
    return sklearn


@dataclass
class FeatureTable:
    """Rows of features with their labels (``names`` fixes the column order)."""

    names: list[str]
    rows: list[list[float]]
    labels: list[bool]
    ids: list[str] = field(default_factory=list)

    @staticmethod
    def from_dicts(feats: Sequence[Mapping[str, float]], labels: Sequence[bool], ids: Sequence[str] = ()
                   ) -> FeatureTable:
        names = sorted(feats[0]) if feats else []
        return FeatureTable(names, [[float(f[n]) for n in names] for f in feats], list(labels), list(ids))

    def column(self, name: str) -> list[float]:
        k = self.names.index(name)
        return [r[k] for r in self.rows]


class ConfidenceModel:
    """Standardised features → L2 logistic regression; ``predict`` gives P(correct).

    Example:
        >>> t = FeatureTable(["agree"], [[0.0], [0.1], [0.9], [1.0]], [False, False, True, True])
        >>> m = ConfidenceModel().fit(t)
        >>> auroc(m.predict(t), t.labels)
        1.0
    """

    def __init__(self, c: float = 1.0, seed: int = 0) -> None:
        self.c = c
        self.seed = seed
        self.names: list[str] = []
        self.pipeline: Any = None

    def fit(self, table: FeatureTable) -> ConfidenceModel:
        sk = _sklearn()
        self.names = list(table.names)
        self.pipeline = sk.pipeline.make_pipeline(
            sk.preprocessing.StandardScaler(),
            sk.linear_model.LogisticRegression(C=self.c, max_iter=1000, random_state=self.seed))
        self.pipeline.fit(table.rows, [int(y) for y in table.labels])
        return self

    def predict(self, table: FeatureTable) -> list[float]:
        """P(correct) per row. A table with other feature names is refused (transfer needs the same features)."""
        if self.pipeline is None:
            raise ConfigError("fit the confidence model before predicting")
        if table.names != self.names:
            raise ConfigError(f"feature names differ: model has {self.names}, table has {table.names}")
        return [float(p) for p in self.pipeline.predict_proba(table.rows)[:, 1]]

    def coefficients(self) -> dict[str, float]:
        """Coefficient per (standardised) feature: the model is interpretable."""
        lr = self.pipeline[-1]
        return {n: float(c) for n, c in zip(self.names, lr.coef_[0], strict=True)}


def evaluate_probs(probs: Sequence[float], labels: Sequence[bool]) -> dict[str, float]:
    """AUROC, ECE and Brier of confidences against correctness."""
    return {"auroc": auroc(probs, labels), "ece": expected_calibration_error(probs, labels),
            "brier": brier_score(probs, labels)}


def cross_validated_report(table: FeatureTable, folds: int = 5, seed: int = 0,
                           directions: Mapping[str, float] | None = None) -> dict[str, Any]:
    """AUROC of each feature alone and out-of-fold AUROC/ECE/Brier of the combined logistic regression.

    Each feature's AUROC uses its a-priori direction (``directions[name]`` = +1 if higher means more
    likely correct, -1 otherwise; default: :func:`feature_direction`), never the direction fitted on the data.

    Returns:
        ``{"n", "accuracy", "features": {name: auroc}, "combined": {auroc, ece, brier}, "coefficients"}``.
    """
    sk = _sklearn()
    dirs = dict(directions) if directions is not None else {n: feature_direction(n) for n in table.names}
    per_feature = {n: auroc([dirs[n] * v for v in table.column(n)], table.labels) for n in table.names}
    oof = [0.0] * len(table.rows)
    kf = sk.model_selection.StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in kf.split(table.rows, [int(y) for y in table.labels]):
        sub = FeatureTable(table.names, [table.rows[i] for i in train_idx], [table.labels[i] for i in train_idx])
        test = FeatureTable(table.names, [table.rows[i] for i in test_idx], [table.labels[i] for i in test_idx])
        for i, p in zip(test_idx, ConfidenceModel(seed=seed).fit(sub).predict(test), strict=True):
            oof[int(i)] = p
    full = ConfidenceModel(seed=seed).fit(table)
    return {"n": len(table.rows), "accuracy": sum(table.labels) / len(table.labels), "features": per_feature,
            "combined": evaluate_probs(oof, table.labels), "coefficients": full.coefficients(), "folds": folds}


def transfer_report(train: FeatureTable, test: FeatureTable) -> dict[str, float]:
    """Fit on one (model, dataset) table, evaluate zero-shot on another with the same features."""
    return evaluate_probs(ConfidenceModel().fit(train).predict(test), test.labels)


def feature_direction(name: str) -> float:
    """+1 when a higher value should mean "more likely correct" (agreement, similarity, verbal), else -1."""
    return -1.0 if name.endswith(("_numsets", "src_max", "src_min")) else 1.0


# -- the real generations (UQ-NLG TriviaQA LLaMA-13B) ---------------------------------------------------------


def load_uq_generations(path: Path) -> list[dict[str, Any]]:
    """Read the UQ-NLG demo file: ``{id, question, answer, generations{text_cleaned[20]}}`` per line."""
    from llmlab.core.jsonl import read_jsonl

    rows = []
    for where, rec in read_jsonl(path, what="UQ generations file"):
        gens = rec.get("generations", {}).get("text_cleaned") if isinstance(rec.get("generations"), dict) else None
        if not isinstance(gens, list) or not gens or not isinstance(rec.get("answer"), str):
            raise DataError(f"{where}: each line needs 'answer' and 'generations.text_cleaned' (a list of strings)")
        rows.append({"id": str(rec.get("id", where)), "question": rec.get("question", ""), "answer": rec["answer"],
                     "samples": [str(g) for g in gens]})
    return rows


def is_correct(response: str, reference: str, label: str = "match") -> bool:
    """Correctness of a response: ``match`` (:func:`normalized_match`) or ``rougeL`` (ROUGE-L > 0.3)."""
    if label == "match":
        return normalized_match(response, reference)
    if label == "rougeL":
        return rouge_l(response, reference) > 0.3
    raise ConfigError(f"unknown label {label!r}; use 'match' or 'rougeL'")


def triviaqa_feature_table(rows: Sequence[Mapping[str, Any]], num_gens: int = 20, label: str = "match",
                           equivalent: Callable[[str, str], bool] = normalized_match) -> FeatureTable:
    """SD features of sample 0 against samples ``1..num_gens-1``, labelled by sample 0's correctness.

    Also the two baselines of Lin et al.'s code over all ``num_gens`` samples: ``base_numsets`` (number of
    semantic sets) and ``base_lexsim`` (mean pairwise ROUGE-L); they equal ``sd_numsets``/``sd_lexsim``
    by construction here, so the table keeps only the ``sd_*`` columns.
    """
    if num_gens < 2:
        raise ConfigError(f"num_gens must be >= 2, got {num_gens}")
    feats, labels, ids = [], [], []
    for r in rows:
        samples = r["samples"][:num_gens]
        feats.append(consistency_features(samples[0], samples[1:], "sd", equivalent))
        labels.append(is_correct(samples[0], r["answer"], label))
        ids.append(r["id"])
    return FeatureTable.from_dicts(feats, labels, ids)


# -- live estimator (query access) ------------------------------------------------------------------------------


class ConfidenceConfig(LabConfig):
    """Options of the live estimator.

    Args:
        perturbations: Which of ``sd``, ``pp``, ``qr``, ``sr``, ``efa``, ``sp``, ``icp``, ``vc``, ``src`` to run.
        samples: Responses per perturbation (SD samples; paraphrases; rephrasings).
        temperature: Sampling temperature of SD and of the perturbation generators.
        max_tokens: Completion budget of answers.
        pivot_languages: Pivots of back-translation (one paraphrase per pivot, cycled to ``samples``).
        seed: Seed of SP shuffles and SRC splits.
    """

    perturbations: tuple[str, ...] = ("sd", "pp", "qr", "sr", "efa", "icp", "vc")
    samples: int = Field(default=5, ge=1, le=1000)
    temperature: float = Field(default=1.0, ge=0.0)
    max_tokens: int = Field(default=64, ge=1)
    pivot_languages: tuple[str, ...] = ("French", "German", "Spanish")
    seed: int = 0


KNOWN_PERTURBATIONS = frozenset({"sd", "pp", "qr", "sr", "efa", "sp", "icp", "vc", "src"})


def parse_verbal_confidence(text: str) -> float | None:
    """The first number 0-100 in ``text`` as a probability, else ``None``.

    Example:
        >>> parse_verbal_confidence("I'd say 85%."), parse_verbal_confidence("no idea")
        (0.85, None)
    """
    m = re.search(r"\d+(?:\.\d+)?", text)
    if m is None:
        return None
    v = float(m.group(0))
    return v / 100 if 0 <= v <= 100 else None


class ConfidenceEstimator:
    r"""Queries a model under perturbations and returns the feature dict of one (prompt, response).

    The prompt is a raw completion prompt ``"...Q: <question>\nA:"`` (the TriviaQA format) or any text;
    ``question`` is the part the input perturbations rewrite. ``translate(text, language)`` and ``nli``
    are injected; without them back-translation asks the model and SRC is skipped.
    """

    def __init__(self, config: ConfidenceConfig | Mapping[str, Any] | None = None, *,
                 equivalent: Callable[[str, str], bool] = normalized_match, nli: NLI | None = None,
                 translate: Callable[[str, str], Awaitable[str]] | None = None) -> None:
        self.config = config if isinstance(config, ConfidenceConfig) else build_config(ConfidenceConfig, config)
        unknown = set(self.config.perturbations) - KNOWN_PERTURBATIONS
        if unknown:
            raise ConfigError(f"unknown perturbation(s) {sorted(unknown)}; known: {sorted(KNOWN_PERTURBATIONS)}")
        self.equivalent = equivalent
        self.nli = nli
        self.translate = translate

    async def _answer(self, roles: Roles, prompt: str, index: int, temperature: float | None = None) -> str:
        resp = await roles.default.generate(GenerateRequest(
            prompt=prompt, temperature=temperature if temperature is not None else 0.0,
            max_tokens=self.config.max_tokens, sample_index=index, stop=("\n",)))
        return resp.text.strip()

    async def _chat(self, roles: Roles, text: str, index: int) -> str:
        resp = await roles.default.generate(GenerateRequest(
            messages=(Message("user", text),), temperature=self.config.temperature, max_tokens=256,
            sample_index=index))
        return resp.text.strip()

    async def _back_translate(self, roles: Roles, text: str, language: str, index: int) -> str:
        if self.translate is not None:
            return await self.translate(await self.translate(text, language), "English")
        there = await self._chat(roles, PARAPHRASE_TRANSLATE.format(language=language, text=text), index)
        return await self._chat(roles, PARAPHRASE_TRANSLATE.format(language="English", text=there), index)

    async def perturbed_prompts(self, name: str, prompt: str, question: str, roles: Roles) -> list[str]:
        """The prompts of one input perturbation (the question inside ``prompt`` rewritten)."""
        cfg = self.config
        if name == "pp":
            langs = [cfg.pivot_languages[i % len(cfg.pivot_languages)] for i in range(cfg.samples)]
            new = await gather([lambda i=i, lang=lang: self._back_translate(roles, question, lang, i)  # type: ignore[misc]
                                for i, lang in enumerate(langs)])
        elif name == "qr":
            new = await gather([lambda i=i: self._chat(roles, REPHRASE_PROMPT.format(text=question), 100 + i)  # type: ignore[misc]
                                for i in range(cfg.samples)])
        elif name == "sr":
            new = [remove_stopwords(question)]
        elif name == "efa":
            new = [amplify_entities(question)]
        elif name == "sp":
            new = [permute_sentences(question, cfg.seed + i) for i in range(cfg.samples)]
        elif name == "icp":
            return [ICP_EXAMPLE + prompt]
        else:
            raise ConfigError(f"{name!r} is not an input perturbation")
        return [prompt.replace(question, q, 1) for q in new]

    async def features(self, prompt: str, question: str, roles: Roles) -> tuple[str, dict[str, float]]:
        """``(original greedy response, features)`` for one prompt.

        Call count: 1 original + ``samples`` (SD) + per input perturbation its prompts (PP: ``samples`` × 3
        calls with the LLM translator; QR: 2 × ``samples``; SR/EFA/ICP: 1; SP: ``samples``) + 1 (VC).
        Equivalence/NLI calls are O(m · #sets) per perturbation.
        """
        cfg = self.config
        original = await self._answer(roles, prompt, 0)
        feats: dict[str, float] = {}
        for name in cfg.perturbations:
            if name == "sd":
                resp = await gather([lambda i=i: self._answer(roles, prompt, 1 + i, cfg.temperature)  # type: ignore[misc]
                                     for i in range(cfg.samples)])
            elif name == "vc":
                text = await self._chat(roles, VERBAL_PROMPT.format(prompt=prompt, answer=" " + original), 500)
                v = parse_verbal_confidence(text)
                feats["vc"] = v if v is not None else 0.5
                continue
            elif name == "src":
                if self.nli is not None:
                    feats.update(split_response_consistency(original, self.nli, seed=cfg.seed))
                continue
            else:
                prompts = await self.perturbed_prompts(name, prompt, question, roles)
                resp = await gather([lambda p=p: self._answer(roles, p, 0) for p in prompts])  # type: ignore[misc]
            feats.update(consistency_features(original, resp, name, self.equivalent))
        return original, feats


def format_report(report: Mapping[str, Any]) -> str:
    """A plain-text table of a :func:`cross_validated_report`."""
    lines = [f"n={report['n']}  accuracy={report['accuracy']:.3f}  ({report['folds']}-fold CV)",
             f"{'feature':<22}{'AUROC':>8}"]
    for name, v in sorted(report["features"].items()):
        lines.append(f"{name:<22}{v:>8.3f}")
    c = report["combined"]
    lines.append(f"{'combined (LR, CV)':<22}{c['auroc']:>8.3f}   ECE {c['ece']:.3f}   Brier {c['brier']:.3f}")
    return "\n".join(lines)

