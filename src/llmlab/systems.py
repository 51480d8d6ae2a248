"""The catalogue of the 31 systems llmlab implements, with their status.

This is the single source of ``llmlab list`` and of the table in ``docs/systems.md`` (a test checks that
the two agree). A status says what holds now: ``works`` only when the system's issue acceptance holds,
``partial`` when some of it is built and tested, ``planned`` when nothing is built yet.
"""

from __future__ import annotations

from typing import NamedTuple


class System(NamedTuple):
    name: str
    arxiv: str
    kind: str  # method | task | model
    official_code: str
    module: str
    status: str  # works | partial | planned
    note: str = ""


SYSTEMS: tuple[System, ...] = (
    # -- inference-time methods --
    System("Mixture-of-Agents", "2406.04692", "method", "togethercomputer/MoA", "methods/moa.py", "works",
           "layers concurrent; injection identical to official on 7/7 cases; 4.2x official flow"),
    System("MCTS Self-Refine (MCTSr)", "2406.07394", "method", "trotsky1997/MathBlackBox", "methods/mcts_sr.py",
           "works",
           "selection accuracy and oracle pass@k kept apart; tree identical to official in 120 runs"),
    System("TextGrad", "2406.07496", "method", "zou-group/textgrad", "methods/textgrad/", "planned"),
    System("Husky", "2406.06469", "method", "agent-husky/Husky-v1", "methods/husky.py", "planned"),
    System("OmegaPRM", "2406.06592", "method", "(none; openr reimplementation)", "methods/omega_prm.py", "planned"),
    System("Black-box confidence", "2406.04370", "method", "(none)", "methods/confidence.py", "planned"),
    System("The Prompt Report", "2406.06608", "method", "trigaten/The_Prompt_Report", "methods/prompting/",
           "planned"),
    System("Visual Sketchpad", "2406.09403", "method", "Yushi-Hu/VisualSketchpad", "methods/sketchpad.py",
           "planned"),
    System("ECO unlearning", "2406.07933", "method", "chrisliu298/llm-unlearn-eco", "methods/eco.py", "planned"),
    System("MedFuzz", "2406.06573", "method", "(none)", "methods/medfuzz.py", "planned"),
    System("Magpie", "2406.08464", "method", "magpie-align/magpie", "data/magpie.py", "planned"),
    # -- benchmarks, judges, statistics --
    System("NATURAL PLAN", "2406.04520", "task", "google-deepmind/natural-plan", "tasks/natural_plan/",
           "works",
           "official-equivalent + strict scorers, exact-solver generator; official data not available offline"),
    System("Test of Time", "2406.09170", "task", "(HF baharef/ToT)", "tasks/test_of_time/", "works",
           "ToT-Arithmetic on the real 1850 rows; ToT-Semantic generator (no official one exists)"),
    System("WildBench", "2406.04770", "task", "allenai/WildBench", "tasks/wildbench/", "works",
           "WB-Reward/WB-Score with judge role; verify-leaderboard passes; WB-Elo not built"),
    System("CRAG", "2406.04744", "task", "facebookresearch/CRAG", "tasks/crag.py", "planned"),
    System("MMLU-Redux", "2406.04127", "task", "aryopg/mmlu-redux", "tasks/mmlu_redux/", "works",
           "57 CSVs, label counts as paper; Virology 57% erroneous"),
    System("CS-Bench", "2406.08587", "task", "csbench/csbench", "tasks/cs_bench.py", "planned"),
    System("McEval", "2406.07436", "task", "MCEVAL/McEval", "tasks/mceval.py", "planned"),
    System("GenAI-Arena ratings", "2406.04485", "task", "TIGER-AI-Lab/GenAI-Arena", "stats/arena.py", "works",
           "Elo/BT/bootstrap vs fschat; voting page tested in Chromium"),
    System("Downstream-scaling analysis", "2406.04391", "task",
           "RylanSchaeffer/KoyejoLab-Why-Has-Predicting-Downstream-Capabilities-Remained-Elusive",
           "stats/scaling.py", "planned"),
    # -- models, training, data --
    System("Samba", "2406.07522", "model", "microsoft/Samba", "models/samba.py", "works",
           "scan 7x reference on CPU (numba); window enforced on every path; step decode = forward"),
    System("Skywork-MoE", "2406.06563", "model", "SkyworkAI/Skywork-MoE", "models/moe.py", "works",
           "gating-logit normalization, adaptive aux coefficient, upcycling"),
    System("TurboSparse (dReLU)", "2406.05955", "model", "(models: PowerInfer/* on HF)", "models/sparse_ffn.py",
           "works",
           "dReLU gives 86-90% zeros at equal loss on a tiny LM"),
    System("PowerInfer-2", "2406.06282", "model", "SJTU-IPADS/PowerInfer", "models/sparse_ffn.py", "partial",
           "predictor + hot/cold sparse FFN (4.5x at 90%); no neuron-cluster flash I/O pipeline"),
    System("ShiftAddLLM", "2406.05981", "model", "GATECH-EIC/ShiftAddLLM", "models/shiftadd/", "works",
           "BCQ + LUT GEMV (1.5x dense on CPU); at our tiny scale GPTQ beats ShiftAdd (see experiments.md)"),
    System("DiscoPOP", "2406.08414", "model", "SakanaAI/DiscoPOP", "training/discopop/", "works",
           "LRML loss equals TRL to 1e-6; discovery loop; tiny-LM alignment does not reproduce the paper's gain"),
    System("SliME", "2406.08487", "model", "yfzhang114/SliME", "models/slime.py", "planned"),
    System("mOSCAR filtering", "2406.08707", "model", "oscar-project/mOSCAR", "data/moscar.py", "planned"),
    System("C4 simulator", "2406.04594", "model", "(none)", "data/c4_sim.py", "planned"),
    System("Tx-LLM evaluation", "2406.06316", "model", "(none)", "tasks/tx_llm.py", "planned"),
    System("PH-LLM evaluation", "2406.06474", "model", "(none)", "tasks/ph_llm.py", "planned"),
)


def systems_markdown() -> str:
    """The table of ``docs/systems.md`` (between its markers), generated from :data:`SYSTEMS`."""
    lines = [
        "| # | system | paper | kind | official code | module | status | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(SYSTEMS, 1):
        lines.append(
            f"| {i} | {s.name} | [arXiv {s.arxiv}](https://arxiv.org/abs/{s.arxiv}) | {s.kind} | "
            f"{s.official_code} | `{s.module}` | {s.status} | {s.note} |"
        )
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- systems:begin -->", "<!-- systems:end -->"


def sync_docs(path: str = "docs/systems.md") -> bool:
    """Rewrite the generated table in ``path``; returns whether it changed."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{systems_markdown()}{END}{tail}"
    p.write_text(new)
    return new != text


if __name__ == "__main__":
    print("docs/systems.md", "updated" if sync_docs() else "unchanged")
