r"""ECO's claim at our scale: a model unlearned by ECO behaves on the forget set "as if never trained" on it.

Setup (a TOFU in miniature, trained with the lab's trainer :func:`llmlab.training.tiny_lm.train`):

1. A world of fictitious people, each born in one of a few cities: facts ``"Q: Where was <name> born?\nA:
   <city>.\\n"``. A fraction of the people is the forget set.
2. Two byte-level LMs with the same recipe, seed and steps: *full* (trained on every fact) and *retain*
   (trained without the forget facts): the reference "never trained on it".
3. Per question, the loss (mean NLL per answer byte) of the true city and of 3 other cities; the truth
   ratio ``R = exp(mean perturbed loss − true loss)`` (TOFU, :mod:`llmlab.methods.eco.tofu`).
4. ECO on *full*: a prompt classifier (:class:`~llmlab.methods.eco.classifier.PromptClassifier`, trained
   on differently worded questions about the forget and retain people) flags prompts; flagged prompts
   get ``rand_noise_first_n`` on every prompt byte but the last (all ``n_embd`` dims: the paper's n = d
   variant), through a forward hook on the embedding layer that is removed afterwards.
5. σ by the zeroth-order search (:class:`~llmlab.methods.eco.optim.ZerothOrderScalar`) minimising the
   Wasserstein-1 distance between the forget-set log truth ratios of ECO(full, σ) and of retain ("match
   the retained model", the paper's TOFU objective, in the form forget quality tests: a distribution, not
   a mean). The noise is drawn from a generator seeded per question (common random numbers), so ``f`` is
   a deterministic function of σ. ``f`` is not convex in σ, so the search starts at the best point of a
   coarse log grid (0.03 … 10) and refines there; σ* is the best σ it evaluated. The earlier objective,
   the squared gap of the mean true-answer loss, is ``objective_kind="mean_loss"``: it matched the mean
   and left the distribution distinguishable (forget quality 0.004 on the slow run).
6. Report: forget quality (KS p-value of the forget-set truth ratios against the retain model) of
   full and of ECO(full, σ*); the retain-set losses of ECO vs full (identical when no retain prompt is
   flagged); model-utility-like numbers (retain-set mean true-answer probability, accuracy).

Deviations (scale): TOFU has paraphrased answers; we use the true answer itself as its "paraphrase".
One fact per person, byte-level models of ~0.1-0.3M parameters, a few hundred steps on CPU: the numbers
speak to the direction of the claim, not to its size on 7B models.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from llmlab.methods.eco.classifier import PromptClassifier
from llmlab.methods.eco.corrupt import forward_hook, rand_noise_first_n
from llmlab.methods.eco.optim import ZerothOrderScalar
from llmlab.methods.eco.tofu import ks_test, truth_ratio
from llmlab.models._deps import require_torch

SYLLABLES = ("ka", "lo", "mi", "ra", "ze", "tu", "vo", "ni", "sha", "be", "do", "gri", "fen", "qua", "yl", "ox")
CITIES = ("Velmor", "Ostara", "Quinto", "Brakka", "Selune", "Durn", "Amrith", "Kestrel")
QUESTION = "Q: Where was {name} born?\nA:"
CLASSIFIER_TEMPLATES = ("Tell me about {name}.", "Who is {name}?", "What do you know about {name}'s family?",
                        "Describe the life of {name}.")


@dataclass
class World:
    people: list[tuple[str, str]]
    forget: set[int]
    perturbed: list[list[str]]

    def facts(self, which: str) -> list[str]:
        idx = [i for i in range(len(self.people)) if which == "all" or (i in self.forget) == (which == "forget")]
        return [QUESTION.format(name=self.people[i][0]) + f" {self.people[i][1]}.\n" for i in idx]


def make_world(n_people: int, forget_frac: float, seed: int) -> World:
    """Distinct fictitious names, a city each, a forget subset, and 3 wrong cities per person."""
    rng = random.Random(seed)
    names: list[str] = []
    while len(names) < n_people:
        n = (rng.choice(SYLLABLES) + rng.choice(SYLLABLES)).capitalize() + " " + \
            "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
        if n not in names:
            names.append(n)
    people = [(n, rng.choice(CITIES)) for n in names]
    forget = set(rng.sample(range(n_people), max(2, round(n_people * forget_frac))))
    perturbed = [rng.sample([c for c in CITIES if c != city], 3) for _, city in people]
    return World(people, forget, perturbed)


def corpus(lines: list[str], reps: int, seed: int) -> tuple[Any, Any]:
    """The facts shuffled and repeated ``reps`` times as a byte tensor (validation: the first facts)."""
    torch = require_torch("the ECO experiment")
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(reps):
        chunk = lines[:]
        rng.shuffle(chunk)
        out.extend(chunk)
    data = torch.frombuffer(bytearray("".join(out).encode()), dtype=torch.uint8)
    return data, data[: min(4000, data.numel())]


def answer_losses(model: Any, prompt: str, answers: list[str], *, sigma: float | None = None,
                  dims: int | None = None, noise_seed: int = 0) -> list[float]:
    """Mean NLL (nats) per byte of each answer after ``prompt``; with ``sigma``, ECO-corrupted prompt bytes.

    The corruption is installed as a forward hook on ``model.wte`` for this call only (removed on exit).
    """
    torch = require_torch("the ECO experiment")
    p = list(prompt.encode())
    seqs = [p + list(a.encode()) for a in answers]
    width = max(len(s) for s in seqs)
    x = torch.zeros(len(seqs), width - 1, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s) - 1] = torch.tensor(s[:-1])

    def hook(ids: Any, emb: Any) -> Any:
        mask = torch.zeros(emb.shape[:2], dtype=torch.bool)
        mask[:, : len(p) - 1] = True  # every prompt byte except the last (official token selection)
        gen = torch.Generator().manual_seed(noise_seed)
        assert sigma is not None
        return rand_noise_first_n(emb, mask, dims if dims is not None else emb.shape[2], float(sigma), gen)

    model.eval()
    with torch.no_grad():
        if sigma is None:
            logits = model(x)
        else:
            with forward_hook(model.wte, hook):
                logits = model(x)
    logp = torch.log_softmax(logits, dim=-1)  # (B, L, V)
    out = []
    for i, s in enumerate(seqs):
        tgt = torch.tensor(s[len(p):])
        pos = torch.arange(len(p) - 1, len(s) - 1)
        out.append(float(-logp[i, pos, tgt].mean()))
    return out


def question_stats(model: Any, world: World, idx: list[int], flags: list[bool] | None = None,
                   sigma: float | None = None, seed: int = 0) -> dict[str, list[float]]:
    """Per question: true-answer loss and truth ratio (ECO applied to flagged questions when σ is given)."""
    true_loss, tr = [], []
    for k, i in enumerate(idx):
        name, city = world.people[i]
        s = sigma if sigma is not None and (flags is None or flags[k]) else None
        answers = [f" {city}."] + [f" {c}." for c in world.perturbed[i]]
        losses = answer_losses(model, QUESTION.format(name=name), answers, sigma=s, noise_seed=seed * 100_003 + i)
        true_loss.append(losses[0])
        tr.append(truth_ratio(losses[0], losses[1:]))
    return {"true_loss": true_loss, "truth_ratio": tr}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def sizes(quick: bool) -> dict[str, Any]:
    """World and model sizes of the quick (default test suite) and full (slow) variants."""
    if quick:
        return {"n_people": 32, "forget_frac": 0.25, "reps": 120,
                "train": {"n_layer": 2, "n_embd": 48, "n_head": 2, "intermediate_size": 96, "seq_len": 48,
                          "local_window": 48, "batch_size": 16, "steps": 120, "lr": 1e-2, "warmup": 10}}
    return {"n_people": 80, "forget_frac": 0.25, "reps": 200,
            "train": {"n_layer": 2, "n_embd": 64, "n_head": 2, "intermediate_size": 128, "seq_len": 64,
                      "local_window": 64, "batch_size": 16, "steps": 600, "lr": 6e-3, "warmup": 20}}


def w1_log_truth_ratios(a: list[float], b: list[float]) -> float:
    """Wasserstein-1 distance between two equal-size samples of log truth ratios (mean |sorted difference|).

    The continuous counterpart of the KS statistic that TOFU's forget quality tests: zero iff the two
    empirical distributions are the same, and it moves smoothly with σ (the KS p-value is a step function).
    """
    if len(a) != len(b) or not a:
        raise ValueError("w1 needs two non-empty samples of the same size")
    la, lb = sorted(math.log(max(x, 1e-12)) for x in a), sorted(math.log(max(x, 1e-12)) for x in b)
    return sum(abs(x - y) for x, y in zip(la, lb, strict=True)) / len(la)


def run_eco_experiment(quick: bool = False, seed: int = 0, zo_steps: int | None = None,
                       objective_kind: str = "truth_ratio_w1") -> dict[str, Any]:
    """Train full and retain LMs, fit the classifier, search σ, and report forget quality and utility.

    ``objective_kind``: what the σ search matches to the never-trained (retain) model on the forget set:
    ``"truth_ratio_w1"`` (default) the distribution of truth ratios, by Wasserstein-1 distance, which is
    what forget quality tests; ``"mean_loss"`` the squared gap of the mean true-answer loss (the earlier
    choice: it matches the mean and leaves the distribution apart).

    Returns a JSON-able dict (see docs/eco.md); ``"sigma_curve"`` holds f on a σ grid for the plot.
    """
    if objective_kind not in ("truth_ratio_w1", "mean_loss"):
        raise ValueError(f"objective_kind must be 'truth_ratio_w1' or 'mean_loss', got {objective_kind!r}")
    from llmlab.training.tiny_lm import TrainConfig, train

    sz = sizes(quick)
    world = make_world(sz["n_people"], sz["forget_frac"], seed)
    cfg = TrainConfig(arch="transformer", attn_impl="band_mask", eval_windows=4, log_every=50, seed=seed,
                      **sz["train"])
    full = train(cfg, corpus(world.facts("all"), sz["reps"], seed))
    retain = train(cfg, corpus(world.facts("retain"), sz["reps"], seed))
    f_idx = sorted(world.forget)
    r_idx = [i for i in range(len(world.people)) if i not in world.forget]

    # The prompt classifier: other wordings about the same people; evaluated on the eval questions.
    def texts(idx: list[int]) -> list[str]:
        return [t.format(name=world.people[i][0]) for i in idx for t in CLASSIFIER_TEMPLATES]

    clf = PromptClassifier(seed=seed).fit(texts(f_idx), texts(r_idx))
    f_flags = clf.flag([QUESTION.format(name=world.people[i][0]) for i in f_idx])
    r_flags = clf.flag([QUESTION.format(name=world.people[i][0]) for i in r_idx])

    m_full, m_ret = full["model"], retain["model"]
    ret_forget = question_stats(m_ret, world, f_idx)
    full_forget = question_stats(m_full, world, f_idx)
    target = _mean(ret_forget["true_loss"])

    def objective(sigma: float) -> float:
        st = question_stats(m_full, world, f_idx, f_flags, sigma, seed)
        if objective_kind == "mean_loss":
            return (_mean(st["true_loss"]) - target) ** 2
        return w1_log_truth_ratios(st["truth_ratio"], ret_forget["truth_ratio"])

    # The objective is not convex in σ (a W1 curve dips, rises and dips again), so a zeroth-order search
    # from one small σ stops in the first dip. Start it at the best point of a coarse log grid (6
    # evaluations) and let it refine there, with steps scaled to that σ. Deviation: the official script
    # starts from one σ.
    coarse = [(s0, objective(s0)) for s0 in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)]
    start = min(coarse, key=lambda t: t[1])[0]
    opt = ZerothOrderScalar(sigma=start, lr=start, eps=0.2 * start, sigma_min=0.0)
    opt.run(objective, steps=zo_steps if zo_steps is not None else (8 if quick else 20))
    # the search may wander off a plateau; keep the best σ it evaluated (it already paid for those calls)
    seen = [(start, min(t[1] for t in coarse))] + [(h["sigma"] + 0.2 * start, h["f_hi"]) for h in opt.history] + \
        [(max(h["sigma"] - 0.2 * start, 1e-8), h["f_lo"]) for h in opt.history]
    sigma_star = min(seen, key=lambda t: t[1])[0]
    eco_forget = question_stats(m_full, world, f_idx, f_flags, sigma_star, seed)
    eco_retain = question_stats(m_full, world, r_idx, r_flags, sigma_star, seed)
    full_retain = question_stats(m_full, world, r_idx)
    ret_retain = question_stats(m_ret, world, r_idx)
    grid = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0, 3.0, 5.0, 10.0] if not quick else [0.0, 0.1, 0.3, 1.0]

    def acc(st: dict[str, list[float]]) -> float:
        return _mean([1.0 if r > 1 else 0.0 for r in st["truth_ratio"]])

    def summary(st: dict[str, list[float]]) -> dict[str, float]:
        return {"mean_true_loss": _mean(st["true_loss"]),
                "mean_true_prob": _mean([math.exp(-v) for v in st["true_loss"]]), "prefers_true": acc(st)}

    ks_full = ks_test(full_forget["truth_ratio"], ret_forget["truth_ratio"])
    ks_eco = ks_test(eco_forget["truth_ratio"], ret_forget["truth_ratio"])
    return {
        "quick": quick, "seed": seed, "objective": objective_kind, "people": len(world.people), "n_forget": len(f_idx),
        "params": full["params"], "train_seconds": full["seconds"] + retain["seconds"],
        "classifier": {"forget_flagged": _mean([float(f) for f in f_flags]),
                       "retain_flagged": _mean([float(f) for f in r_flags])},
        "zo": {"history": opt.history, "sigma_star": sigma_star, "coarse": coarse, "start": start,
               "evaluations": 2 * len(opt.history),
               "f_initial": objective(0.0), "f_final": objective(sigma_star)},
        "sigma_curve": [(s, objective(s)) for s in grid],
        "forget": {"full": summary(full_forget), "retain_model": summary(ret_forget), "eco": summary(eco_forget)},
        "retain_set": {"full": summary(full_retain), "retain_model": summary(ret_retain), "eco": summary(eco_retain),
                       "eco_identical_to_full": eco_retain["true_loss"] == full_retain["true_loss"]},
        "forget_quality": {"full": ks_full[1], "eco": ks_eco[1], "ks_full": ks_full[0], "ks_eco": ks_eco[0]},
        "truth_ratios": {"full": full_forget["truth_ratio"], "retain_model": ret_forget["truth_ratio"],
                         "eco": eco_forget["truth_ratio"]},
    }


def plot_experiment(result: dict[str, Any], path: str) -> None:
    """Two panels: f(σ) with the zeroth-order path, and the forget-set truth-ratio distributions."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "plot", "the ECO plot") from None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    xs, ys = zip(*result["sigma_curve"], strict=True)
    a.plot(xs, ys, "o-", label="f(σ) on a grid")
    path_s = [h["sigma"] for h in result["zo"]["history"]]
    path_f = [(h["f_hi"] + h["f_lo"]) / 2 for h in result["zo"]["history"]]
    a.plot(path_s, path_f, "x--", label="zeroth-order steps")
    a.axvline(result["zo"]["sigma_star"], color="gray", lw=0.8)
    a.set_xlabel("σ (noise std on flagged prompt bytes)")
    a.set_xscale("symlog", linthresh=0.02)
    a.set_xlim(left=0)
    a.set_ylabel("W1(log truth ratios: ECO vs retain)" if result.get("objective") != "mean_loss"
                 else "(forget loss(ECO) − forget loss(retain))²")
    a.legend()
    for key, label in (("full", "full (trained on forget)"), ("retain_model", "retain (never trained)"),
                       ("eco", f"ECO(full), σ*={result['zo']['sigma_star']:.2f}")):
        vals = sorted(math.log(v) for v in result["truth_ratios"][key])
        b.step(vals, [(i + 1) / len(vals) for i in range(len(vals))], where="post", label=label)
    b.set_xlabel("log truth ratio on the forget set")
    b.set_ylabel("CDF")
    fq = result["forget_quality"]
    b.set_title(f"forget quality (KS p): full {fq['full']:.2g}, ECO {fq['eco']:.2g}")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def experiment_eco_unlearning(quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """The registry's ``eco_unlearning`` experiment (``llmlab lab experiment eco_unlearning``).

    ``claim_direction_holds``: ECO leaves every retain answer bit-identical, the σ search reduces its
    objective, and ECO's forget-set true-answer loss is closer to the retain model's than the full model's.
    """
    res = run_eco_experiment(quick=quick, seed=seed)
    fo = res["forget"]
    closer = abs(fo["eco"]["mean_true_loss"] - fo["retain_model"]["mean_true_loss"]) < \
        abs(fo["full"]["mean_true_loss"] - fo["retain_model"]["mean_true_loss"])
    measured = {
        "sigma_star": res["zo"]["sigma_star"], "f_initial": res["zo"]["f_initial"], "f_final": res["zo"]["f_final"],
        "forget_quality_full": res["forget_quality"]["full"], "forget_quality_eco": res["forget_quality"]["eco"],
        "forget_prefers_true_full": fo["full"]["prefers_true"], "forget_prefers_true_eco": fo["eco"]["prefers_true"],
        "forget_prefers_true_retain": fo["retain_model"]["prefers_true"],
    }
    holds = bool(res["retain_set"]["eco_identical_to_full"] and res["zo"]["f_final"] < res["zo"]["f_initial"]
                 and closer)
    # "runs" without training histories: `llmlab lab experiment` then plots the measured numbers as bars
    return {"experiment": "eco_unlearning", "runs": {"eco": {"sigma_star": res["zo"]["sigma_star"]}},
            "measured": measured, "claim_direction_holds": holds,
            "result": res}
