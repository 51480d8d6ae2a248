"""The one registry's records: the 31 systems llmlab implements, and the core they stand on.

Each :class:`~llmlab.core.registry.System` declares, once, its paper metadata and everything it provides
(methods, tasks, command groups, lab commands, experiments, generators, datasets). ``llmlab list``,
``docs/systems.md`` (a test checks it is current: ``python -m llmlab.systems``), the CLI's command groups
and the method/task/backend registries are all views of these records. A status says what holds now:
``works`` only when the system's issue acceptance holds, ``partial`` when some of it is built and tested,
``planned`` when nothing is built yet.

This module is data only: importing it imports none of the systems themselves.
"""

from __future__ import annotations

from llmlab.core.registry import Provide, System

P = Provide

_MCEVAL_RAW = "https://raw.githubusercontent.com/MCEVAL/McEval/09dec129dd5756447227239b3e5b47e543c2e0fd/data/"
_MCEVAL_LANGS = (
    "AWK", "C", "CPP", "C#", "Common Lisp", "CoffeeScript", "Dart", "Emacs Lisp", "Elixir", "Erlang", "Fortran",
    "F#", "Go", "Groovy", "Haskell", "HTML", "Java", "JavaScript", "JSON", "Julia", "Kotlin", "Lua", "Markdown",
    "Pascal", "Perl", "PHP", "PowerShell", "Python", "R", "Racket", "Ruby", "Rust", "Scala", "Scheme", "Shell",
    "Swift", "Tcl", "TypeScript", "Visual Basic", "VimScript")
_MCEVAL_INPUTS = ("AWK/9_1.txt", "AWK/9_2.txt", "AWK/contribution.txt", "AWK/url.txt", "Common Lisp/file.txt")
MCEVAL_FILES = {
    **{f"generation/{lang}.jsonl": _MCEVAL_RAW + lang.replace(" ", "%20").replace("#", "%23") + ".jsonl"
       for lang in _MCEVAL_LANGS},
    **{f"generation/{lang}/{n}.{ext}": f"{_MCEVAL_RAW}{lang}/{n}.{ext}"
       for lang, ext in (("HTML", "html"), ("JSON", "json"), ("Markdown", "md")) for n in range(1, 51)},
    **{f"generation/{f}": _MCEVAL_RAW + f.replace(" ", "%20") for f in _MCEVAL_INPUTS},
}

# Infrastructure every system stands on (not in the table of 31).
CORE: tuple[System, ...] = (
    System("llmlab core", "", "core", "", "core/", "works", "backends, direct method, serve, doctor", (
        P("backend", "openai", "llmlab.backends.openai_compat:OpenAIBackend"),
        P("backend", "openai-sdk", "llmlab.backends.openai_compat:OpenAISDKBackend"),
        P("backend", "hf", "llmlab.backends.hf:HFBackend"),
        P("backend", "mock", "llmlab.backends.mock:MockBackend"),
        P("method", "direct", "llmlab.methods.base:Direct"),
        P("method", "self_consistency", "llmlab.methods.self_consistency:SelfConsistency"),
        P("command", "serve", "llmlab.backends.server:serve_command",
          "Serve any backend as an OpenAI-compatible HTTP API."),
        P("command", "doctor", "llmlab.backends.doctor:doctor_command",
          "Check that a model spec is reachable and what it supports."),
        P("command", "lab", "llmlab.training.cli:lab", "Train and run experiments with the PyTorch model lab."),
        P("command", "generate", "llmlab.tasks.generate_cli:generate",
          "Generate benchmark instances (NATURAL PLAN, ToT-Semantic)."),
        P("command", "data", "llmlab.tasks.data_cli:data",
          "Inspect benchmark data (e.g. MMLU-Redux error statistics)."),
        P("command", "compare", "llmlab.stats.runs:compare_command",
          "Paired difference of two runs on their shared items, with its 95% CI and paired tests."),
        P("command", "view", "llmlab.web.viewer:view_command",
          "Open a local web viewer of the runs: transcripts, filters, two runs side by side."),
    )),
    System("GSM8K", "2110.14168", "task", "openai/grade-school-math", "tasks/gsm8k.py", "works",
           "grade-school math with robust answer extraction", (
               P("task", "gsm8k", "llmlab.tasks.gsm8k:GSM8K"),
               P("dataset", "gsm8k", {
                   name: "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/"
                         f"data/{name}"
                   for name in ("test.jsonl", "train.jsonl", "test_socratic.jsonl", "train_socratic.jsonl")
               }),
           )),
)

SYSTEMS: tuple[System, ...] = (
    # -- inference-time methods --
    System("Mixture-of-Agents", "2406.04692", "method", "togethercomputer/MoA", "methods/moa.py", "works",
           "layers concurrent; injection identical to official on 7/7 cases; 4.2x official flow", (
               P("method", "moa", "llmlab.methods.moa:MixtureOfAgents"),
               P("method", "moa_lite", "llmlab.methods.moa:MixtureOfAgentsLite"),
               P("method", "self_moa", "llmlab.methods.moa:SelfMixtureOfAgents"),
           )),
    System("MCTS Self-Refine (MCTSr)", "2406.07394", "method", "trotsky1997/MathBlackBox", "methods/mcts_sr.py",
           "works",
           "selection accuracy and oracle pass@k kept apart; trees identical to official in 126 runs (tests/parity)", (
               P("method", "mcts_sr", "llmlab.methods.mcts_sr:MCTSr"),
           )),
    System("TextGrad", "2406.07496", "method", "zou-group/textgrad", "methods/textgrad/", "works",
           "3 protocols on scripted models; structure parity with 0.1.8; one step 7.1x textgrad at 1.06x the "
           "critical path; no real-model accuracy", (
               P("method", "textgrad", "llmlab.methods.textgrad.method:TextGrad"),
               P("task", "bbh_object_counting", "llmlab.tasks.bbh:BBHObjectCounting"),
               P("task", "bbh_word_sorting", "llmlab.tasks.bbh:BBHWordSorting"),
               P("task", "gpqa", "llmlab.tasks.gpqa:GPQA"),
               P("command", "textgrad", "llmlab.methods.textgrad.cli:textgrad",
                 "TextGrad: optimize a task's system prompt or LeetCode solutions."),
               P("dataset", "bbh", {
                   f"bbh/{name}.json": "https://raw.githubusercontent.com/suzgunmirac/BIG-Bench-Hard/9ee07bd481feebf959a6b59d61ea57bdcf30964d/bbh/"
                                       f"{name}.json"
                   for name in ("object_counting", "word_sorting")
               }),
               P("dataset", "leetcode-hard", {
                   "leetcode_with_tests.jsonl": "https://raw.githubusercontent.com/vinid/data/"
                                                "835ce8d8fa42d7b51c963e2430777f6acbe96c00/leetcode_with_tests.jsonl",
               }),
           )),
    System("Husky", "2406.06469", "method", "agent-husky/Husky-v1", "methods/husky/", "works",
           "scripted-model loop tests (all 5 tools, caps, failures, concurrency); 5 real eval sets; prompt "
           "structure = official; no real-model runs yet", (
               P("method", "husky", "llmlab.methods.husky.agent:Husky"),
               P("task", "bamboogle", "llmlab.tasks.husky_eval:Bamboogle"),
               P("task", "hotpotqa", "llmlab.tasks.husky_eval:HotpotQA"),
               P("task", "strategyqa", "llmlab.tasks.husky_eval:StrategyQA"),
               P("task", "tabmwp", "llmlab.tasks.husky_eval:TabMWP"),
               P("task", "husky_math", "llmlab.tasks.husky_eval:HuskyMATH"),
               P("dataset", "husky-eval", {
                   f"{name}/test.jsonl": "https://raw.githubusercontent.com/agent-husky/Husky-v1/"
                                         f"1d5dca10e50129b941e83592f956cc52f836c275/husky/dataset/{name}/test.jsonl"
                   for name in ("bamboogle", "hotpotqa", "strategyqa", "tabmwp", "MATH")
               }),
           )),
    System("OmegaPRM", "2406.06592", "method", "(none; openr reimplementation)", "methods/omega_prm.py", "works",
           "scripted checks + openr side by side (1-search trees identical); no real-model MATH numbers yet", (
               P("method", "prm_weighted_sc", "llmlab.methods.prm.weighted_sc:PRMWeightedSC"),
               P("command", "omegaprm", "llmlab.methods.omega_prm_cli:omegaprm",
                 "Collect OmegaPRM process-supervision labels (MCTS + binary search)."),
               P("task", "math", "llmlab.tasks.math:MATH"),
               P("dataset", "math-500", {
                   "test500.jsonl": "https://raw.githubusercontent.com/openreasoner/openr/main/envs/MATH/dataset/"
                                    "test500.jsonl",
               }),
           )),
    System("Black-box confidence", "2406.04370", "method", "(none)", "methods/confidence.py", "works",
           "features+LR; CV AUROC 0.940 on real LLaMA-13B TriviaQA samples; transfer tested on synthetic tables "
           "(one model's real generations offline)", (
               P("command", "confidence", "llmlab.methods.confidence_cli:confidence",
                 "Black-box confidence features, logistic regression, AUROC report."),
               P("dataset", "nq-open", {
                   "NQ-open.dev.jsonl": "https://raw.githubusercontent.com/google-research-datasets/"
                                        "natural-questions/master/nq_open/NQ-open.dev.jsonl",
               }),
           )),
    System("The Prompt Report", "2406.06608", "method", "trigaten/The_Prompt_Report", "methods/prompting/",
           "works", "the issue's techniques (27 of the taxonomy's 49), golden + call-graph tested; bench not yet run "
           "on a real model", (
               P("method", "prompting", "llmlab.methods.prompting.base:Prompting"),
               P("command", "bench", "llmlab.methods.prompting.bench:bench",
                 "Benchmark methods against each other (the Prompt Report's techniques on MMLU-Redux)."),
               P("list_view", "prompting", "llmlab.methods.prompting.taxonomy:taxonomy_table"),
               P("dataset", "prompt-report", {
                   name: f"https://raw.githubusercontent.com/trigaten/The_Prompt_Report/main/data/{name}"
                   for name in ("prompts.json", "mmlu_configs.json")
               }),
           )),
    System("Visual Sketchpad", "2406.09403", "method", "Yushi-Hu/VisualSketchpad", "methods/sketchpad/",
           "works", "sandboxed planner loop, sketches back as image parts, 7 math tasks on real data + no-sketch "
           "baseline; labels vs networkx/sympy/chess 100%/98.4%/100%; scripted-model tested, no real-model "
           "numbers; vision tasks not built", (
               P("method", "sketchpad", "llmlab.methods.sketchpad:Sketchpad"),
               P("method", "sketchpad_baseline", "llmlab.methods.sketchpad:SketchpadBaseline"),
               *(P("task", f"sketchpad.{t}", f"llmlab.tasks.sketchpad_math:{cls}") for t, cls in (
                   ("graph_connectivity", "GraphConnectivity"), ("graph_isomorphism", "GraphIsomorphism"),
                   ("graph_maxflow", "GraphMaxflow"), ("math_convexity", "MathConvexity"),
                   ("math_parity", "MathParity"), ("winner_id", "WinnerId"), ("geometry", "Geometry"))),
           )),
    System("ECO unlearning", "2406.07933", "method", "chrisliu298/llm-unlearn-eco", "methods/eco/", "works",
           "hf-hook ECO (flagged only, weights intact), TOFU metrics = official; tiny LM: forget quality "
           "0.004 -> 0.34 (never-trained-like at 5%), retain set bit-identical", (
               P("command", "eco", "llmlab.methods.eco.cli:eco",
                 "ECO unlearning: tiny-LM experiment, TOFU metrics, prompt classifier."),
               P("experiment", "eco_unlearning", "llmlab.methods.eco.experiment:experiment_eco_unlearning"),
               P("dataset", "eco", {
                   f"local_data/synthetic_wmdp_questions/synthetic_questions_{s}.csv":
                       "https://raw.githubusercontent.com/chrisliu298/llm-unlearn-eco/"
                       "9b0ba1ac6ab0c71868a6ad7d6210d445edd78d07/local_data/synthetic_wmdp_questions/"
                       f"synthetic_questions_{s}.csv"
                   for s in ("bio", "chem", "cyber")
               }),
           )),
    System("MedFuzz", "2406.06573", "method", "(none)", "methods/medfuzz.py", "works",
           "attack loop, permutation test, MedQA task tested with scripted models; no real-model attack run "
           "(none reachable offline)", (
               P("task", "medqa", "llmlab.tasks.medqa:MedQA"),
               P("command", "medfuzz", "llmlab.methods.medfuzz_cli:medfuzz",
                 "MedFuzz: adversarial rewrites of MCQ items with a permutation test."),
               P("dataset", "medqa", {
                   f"{folder}/test.jsonl": "https://raw.githubusercontent.com/xk-huang/medagents-benchmark/"
                                           f"56ca11eb1ef89f6bb7fad6284008bf39e08785b0/data/{folder}/test.jsonl"
                   for folder in ("medqa", "medqa_5options")
               }),
           )),
    System("Magpie", "2406.08464", "method", "magpie-align/magpie", "data/magpie/", "works",
           "file + derived templates agree (6 families); resumable raw-completion generation, MT, variants; "
           "datatrove filters (MinHash, LID-176) local = Ray; sanitiser = official but 2 fixed bugs; "
           "no real-model data yet", (
               P("command", "magpie", "llmlab.data.magpie.cli:magpie",
                 "Magpie: synthesize instruction data from an aligned model's pre-query template."),
               P("dataset", "magpie", {
                   f"{name}": "https://raw.githubusercontent.com/magpie-align/magpie/"
                              f"b734a36818e4ba7ef7f0f582fc55f7e860407d26/{name}"
                   for name in ("configs/model_configs.json", "data_po/example_instructions.jsonl")
               }),
           )),
    # -- benchmarks, judges, statistics --
    System("NATURAL PLAN", "2406.04520", "task", "google-deepmind/natural-plan", "tasks/natural_plan/",
           "works",
           "official-equivalent + strict scorers, exact-solver generator; official data not available offline", (
               P("task", "natural_plan.trip", "llmlab.tasks.natural_plan:TripPlanning"),
               P("task", "natural_plan.meeting", "llmlab.tasks.natural_plan:MeetingPlanning"),
               P("task", "natural_plan.calendar", "llmlab.tasks.natural_plan:CalendarScheduling"),
               P("generator", "natural_plan.trip", "llmlab.tasks.natural_plan:generate_trip"),
               P("generator", "natural_plan.meeting", "llmlab.tasks.natural_plan:generate_meeting"),
               P("generator", "natural_plan.calendar", "llmlab.tasks.natural_plan:generate_calendar"),
           )),
    System("Test of Time", "2406.09170", "task", "(HF baharef/ToT)", "tasks/test_of_time/", "works",
           "ToT-Arithmetic on the real 1850 rows; ToT-Semantic generator (no official one exists)", (
               P("task", "tot_arithmetic", "llmlab.tasks.test_of_time:ToTArithmetic"),
               P("task", "tot_semantic", "llmlab.tasks.test_of_time:ToTSemantic"),
               P("generator", "tot_semantic", "llmlab.tasks.test_of_time:generate_semantic"),
           )),
    System("WildBench", "2406.04770", "task", "allenai/WildBench", "tasks/wildbench/", "works",
           "WB-Reward/WB-Score with judge role; verify-leaderboard passes; WB-Elo not built", (
               P("task", "wildbench", "llmlab.tasks.wildbench:WildBench"),
               P("command", "wildbench", "llmlab.tasks.wildbench.cli:wildbench",
                 "WildBench rewards/scores; verify leaderboard tables."),
           )),
    System("CRAG", "2406.04744", "task", "facebookresearch/CRAG", "tasks/crag/", "works",
           "auto-eval = official on 600/600; 38-tool mock API; KG server tested on official-layout fixtures "
           "(the real KG is user-supplied, not available offline)", (
               P("task", "crag", "llmlab.tasks.crag:CRAG"),
               P("method", "crag_rag", "llmlab.methods.crag_rag:CragRAG"),
               P("method", "crag_rag_api", "llmlab.methods.crag_rag:CragRAGAPI"),
               P("command", "crag", "llmlab.tasks.crag.cli:crag", "CRAG mock knowledge-graph API server."),
               P("dataset", "crag", {
                   f"{d}/{f}": f"https://raw.githubusercontent.com/facebookresearch/CRAG/main/{d}/{f}"
                   for d, f in (("example_data", "dev_data.jsonl.bz2"), ("tokenizer", "tokenizer.json"),
                                ("tokenizer", "tokenizer_config.json"), ("tokenizer", "special_tokens_map.json"),
                                ("tokenizer", "tokenizer.model"))
               }),
           )),
    System("MMLU-Redux", "2406.04127", "task", "aryopg/mmlu-redux", "tasks/mmlu_redux/", "works",
           "57 CSVs, label counts as paper; Virology 57% erroneous", (
               P("task", "mmlu_redux", "llmlab.tasks.mmlu_redux:MMLURedux"),
           )),
    System("CS-Bench", "2406.08587", "task", "csbench/csbench", "tasks/cs_bench/", "works",
           "4 formats x EN/CN/DE/FR; official + fixed MC scores; agrees with official on 1200 crafted", (
               P("task", "cs_bench", "llmlab.tasks.cs_bench:CSBench"),
               P("dataset", "cs-bench", {
                   f"CSBench-{lang}/{split}.json": "https://raw.githubusercontent.com/csbench/csbench/main/Dataset/"
                                                   f"CSBench-{lang}/{split}.json"
                   for lang in ("EN", "CN", "DE", "FR") for split in ("test", "valid")
               }),
           )),
    System("McEval", "2406.07436", "task", "MCEVAL/McEval", "tasks/mceval/", "partial",
           "sandboxed; canonical >=95% in 29/30 installable langs (Kotlin 42/50: Debian's 1.3; Scala, "
           "Groovy 48/50), each failure explained; overhead 3-4 ms/run; 1.62-1.67x parallel on a quiet VM "
           "(goal 1.8x; bwrap set-up scales 1.5x here, C++ alone 1.88x)", (
               P("task", "mceval", "llmlab.tasks.mceval:McEval"),
               P("command", "mceval", "llmlab.tasks.mceval.cli:mceval",
                 "McEval toolchains (apt-get setup) and the canonical-solution positive control."),
               P("dataset", "mceval", MCEVAL_FILES),
           )),
    System("GenAI-Arena ratings", "2406.04485", "task", "TIGER-AI-Lab/GenAI-Arena", "stats/arena.py", "works",
           "Elo/BT/bootstrap vs fschat; voting page tested in Chromium", (
               P("command", "arena", "llmlab.stats.arena_cli:arena",
                 "Arena ratings (Elo, Bradley–Terry, CIs) and the voting page."),
           )),
    System("Downstream-scaling analysis", "2406.04391", "task",
           "RylanSchaeffer/KoyejoLab-Why-Has-Predicting-Downstream-Capabilities-Remained-Elusive",
           "stats/scaling.py", "works",
           "chain + stats vs scipy/sklearn; collect/analyze; 6 tiny LMs: log p 0.99 vs p_choices 0.13 vs acc 0.09", (
               P("command", "scaling", "llmlab.stats.scaling_cli:scaling",
                 "Downstream-scaling analysis: collect per-choice log-likelihoods, analyze the chain."),
               P("experiment", "downstream_scaling", "llmlab.stats.scaling_lab:experiment_downstream_scaling"),
           )),
    # -- models, training, data --
    System("Samba", "2406.07522", "model", "microsoft/Samba", "models/samba.py", "works",
           "scan 7x reference on CPU (numba); window enforced on every path; step decode = forward", (
               P("experiment", "samba_extrapolation", "llmlab.training.tiny_lm:experiment_samba_extrapolation"),
           )),
    System("Skywork-MoE", "2406.06563", "model", "SkyworkAI/Skywork-MoE", "models/moe.py", "works",
           "gating-logit normalization, adaptive aux coefficient, upcycling", (
               P("experiment", "moe_gate_norm", "llmlab.training.tiny_lm:experiment_moe_gate_norm"),
           )),
    System("TurboSparse (dReLU)", "2406.05955", "model", "(models: PowerInfer/* on HF)", "models/sparse_ffn.py",
           "partial",
           "dReLU: 79.5% exact zeros (claim >80%) at -0.1% loss vs SwiGLU on the quick tiny LM with the "
           "current init (asserted by the slow test); 86-90% measured before the init change, "
           "default size not re-measured", (
               P("experiment", "drelu_vs_swiglu", "llmlab.training.tiny_lm:experiment_drelu_vs_swiglu"),
           )),
    System("PowerInfer-2", "2406.06282", "model", "SJTU-IPADS/PowerInfer", "models/offload/", "works",
           "FFN on disk at 4x budget (O_DIRECT bundles, hot+LRU cache, cluster pipeline), tokens = in-memory; "
           "trained dReLU LM (84 MiB FFN, 93-97% zeros, predictor recall 0.92): 5.4-8.2x dense streaming, "
           "hit rate 0.84, pipeline 1.1x; random-weight 384 MiB model 7.1x; model small and briefly trained", (
               P("lab_command", "offload", "llmlab.models.offload.cli:offload_cmd",
                 "PowerInfer-2: decode a lab dReLU model with its FFN on disk under a memory budget."),
           )),
    System("ShiftAddLLM", "2406.05981", "model", "GATECH-EIC/ShiftAddLLM", "models/shiftadd/", "works",
           "BCQ (error <= official bcq/quantize_shift on an 860-config grid) + LUT GEMV (1.5x dense on CPU); "
           "at our tiny scale ShiftAdd beats GPTQ at 2 bits, not at 3 (see experiments.md)", (
               P("lab_command", "quantize", "llmlab.models.shiftadd.cli:quantize_cmd",
                 "ShiftAddLLM: quantize a model from `lab train`."),
               P("experiment", "shiftadd_quant_ladder", "llmlab.models.shiftadd.cli:experiment_quant_ladder"),
           )),
    System("DiscoPOP", "2406.08414", "model", "SakanaAI/DiscoPOP", "training/discopop/", "works",
           "LRML loss equals TRL to 1e-6; discovery loop; tiny-LM alignment does not reproduce the paper's gain", (
               P("lab_command", "discover", "llmlab.training.discopop.cli:discover_cmd",
                 "DiscoPOP: LLM-driven discovery of preference losses."),
               P("lab_command", "align", "llmlab.training.discopop.cli:align_cmd",
                 "DiscoPOP vs DPO reward-vs-KL experiment."),
           )),
    System("SliME", "2406.08487", "model", "yfzhang114/SliME", "models/slime.py", "partial",
           "3 modules + wiring = official (25/25 side by side); staged recipe; toy v2 (cell-aligned ViT, alignment "
           "stages): selector recall@1 0.31 vs random 0.014, but accuracy all-64 0.276 = global 0.275 (seed 0): "
           "less-is-more NOT tested; 3-seed table and joint-vs-alternating NOT measured", (
               P("experiment", "slime_less_is_more", "llmlab.models.slime_lab:experiment_slime_less_is_more"),
           )),
    System("mOSCAR filtering", "2406.08707", "model", "(none public)", "data/moscar.py", "works",
           "datatrove pipeline (LID-176, text/NSFW/URL/image filters, exact+MinHash dedup, audit); planted Debian "
           "corpus: recall >=0.988 per filter, MinHash 0.978 at J>=0.8; Ray = local output (slow test); "
           "0.77x worker scaling on the loaded 2-core VM; joint filter without the negatives ranking", (
               P("command", "moscar", "llmlab.data.moscar_cli:moscar",
                 "mOSCAR document filters on datatrove: filter, audit, planted corpus, evaluate."),
           )),
    System("C4 simulator", "2406.04594", "model", "(none)", "sim/c4/", "works",
           "max-min fluid sim = SimGrid to 1e-6; C4P closes 100% of a 58% ECMP busbw gap (64 nodes); C4D 30/30 "
           "per fault class on synthetic telemetry; 2-tier only", (
               P("command", "sim", "llmlab.sim.cli:sim", "Cluster simulators: C4 diagnosis (C4D) and planning (C4P)."),
           )),
    System("Tx-LLM evaluation", "2406.06316", "model", "(none)", "tasks/tx_llm/", "works",
           "TxT prompts (27 TDC tasks, all of ADMET), 3 answer kinds, TDC metrics = sklearn/scipy, RDKit-checked "
           "TDC data, LoRA SFT recipe "
           "(fixture BBB AUROC 0.74 -> 0.94 on a tiny LM); SOTA = the paper's Tables A.7/A.8 (63 rows, its Table A.6 "
           "recomputed; 27/28 leaderboard rows = TDC entries), 10% near rule; its 43/66 count not reproducible "
           "from its tables; no real-model run", (
               P("task", "tx_llm", "llmlab.tasks.tx_llm:TxLLM"),
               P("recipe", "tx_llm", "llmlab.training.tx_llm:finetune_tx_llm",
                 "Tx-LLM: LoRA SFT on the mixture of TxT-formatted TDC tasks, scored per task vs SOTA."),
               P("command", "txllm", "llmlab.tasks.tx_llm.cli:txllm",
                 "Tx-LLM: check TDC data (RDKit SMILES) and print the per-task SOTA table."),
           )),
    System("PH-LLM evaluation", "2406.06474", "model", "Google-Health/consumer-health-research (phllm/)",
           "tasks/ph_llm/", "works",
           "exams (official prompt structures/parsing, 6 public Qs end to end); 15-principle rubric judge; AC2 = "
           "irrCAC on released ratings, 9/9 agreement claims hold; released PRO: adapter 0.638 = LR 0.638 > text "
           "0.50; toy PRO: adapter 0.78 >> text 0.60 but < LR 0.84; no real-model runs", (
               P("task", "ph_llm.mcq", "llmlab.tasks.ph_llm.mcq:PHLLMExam"),
               P("task", "ph_llm.case_study", "llmlab.tasks.ph_llm.rubric:PHLLMCaseStudy"),
               P("command", "phllm", "llmlab.tasks.ph_llm.cli:phllm",
                 "PH-LLM: rater agreement on the released case-study ratings, released PRO results."),
               P("experiment", "ph_llm_pro", "llmlab.tasks.ph_llm.pro:experiment_ph_llm_pro"),
               P("dataset", "ph-llm", {
                   name: "https://raw.githubusercontent.com/Google-Health/consumer-health-research/"
                         f"300134291a6f5986b283205d5542c0df5623a79f/phllm/data/{name}"
                   for name in ("synthetic_mcq_data.csv", "pro_preds_bootstrap.tsv", "pro_prevalence.tsv",
                                *(f"autoeval_ratings/{v}_{k}_ratings.tsv" for v in ("sleep", "fitness")
                                  for k in ("human_expert", "autoeval_external", "autoeval_subsample")))
               }),
           )),
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
