"""Tx-LLM's fine-tuning recipe on an open model: LoRA SFT on the mixture of TxT-formatted TDC tasks.

Paper: "Tx-LLM: A Large Language Model for Therapeutics" (arXiv 2406.06316), §2-3: one set of weights
fine-tuned on the mixture of all TDC tasks, each formatted as a TxT prompt (Instructions, Context, Question,
Answer; :mod:`llmlab.tasks.tx_llm`). Here: every train row of the chosen tasks becomes one
``(prompt, " " + answer)`` pair; LoRA SFT (:func:`llmlab.training.lora_sft.lora_sft`) on the mixture, sampled
proportionally to task size (the concatenated mixture) or uniformly over tasks; then each task's test split
is scored with its TDC metric before and after fine-tuning, and compared with :data:`~llmlab.tasks.tx_llm.SOTA`.

Scoring: binary tasks by the model's probability of ``(B)`` against ``(A)`` (a ranking score, so AUROC and
AUPRC are meaningful); regression by the greedy answer's bin mapped back to the target's unit (an unparsed
answer predicts the train median); generation by greedy decoding compared as canonical SMILES sets.

Deviations: PaLM-2 was fully fine-tuned at Google scale; this is LoRA on whatever open causal LM is given
(tests use a tiny random Llama, whose numbers say nothing about model quality). The mixture weighting and the
hyper-parameters are ours (the paper's are not public).

Entry point: ``llmlab lab finetune --recipe tx_llm --model hf:DIR --data-dir DATA -p steps=200``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llmlab.core.config import LabConfig, build_config
from llmlab.core.errors import ConfigError, DataError, MissingExtraError
from llmlab.models._deps import require_torch
from llmlab.training.lora_sft import LoraSFTConfig, lora_sft


class TxFinetuneConfig(LabConfig):
    """The Tx-LLM recipe's options (``-p key=value``).

    Args:
        tasks: TDC datasets of the mixture (default: every Tx-LLM task found in the data folder).
        mixture: ``proportional`` (each train row equally likely) or ``uniform`` (each task equally likely).
        max_train_per_task: Cap on train rows per task (None: all).
        max_eval_per_task: Cap on test rows scored per task.
        eval_before: Also score the model before fine-tuning (the baseline of the comparison).
        shots: Few-shot exemplars in each prompt (0 as in the paper's fine-tuning prompts).
        sft: The LoRA SFT settings (:class:`~llmlab.training.lora_sft.LoraSFTConfig`), e.g. ``-p sft.steps=200``.
        max_new_tokens: Greedy tokens for generation tasks.
        threads: torch CPU threads (None: torch's default).
    """

    tasks: list[str] | None = None
    mixture: Literal["proportional", "uniform"] = "proportional"
    max_train_per_task: int | None = Field(default=None, ge=1)
    max_eval_per_task: int | None = Field(default=200, ge=1)
    eval_before: bool = True
    shots: int = Field(default=0, ge=0, le=32)
    sft: LoraSFTConfig = Field(default_factory=LoraSFTConfig)
    max_new_tokens: int = Field(default=64, ge=1, le=1024)
    threads: int | None = Field(default=None, ge=1)


def load_hf(spec: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of ``hf:<dir or id>`` (the prefix is optional)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover
        raise MissingExtraError("transformers", "hf", "the fine-tuning recipes") from exc
    path = spec.removeprefix("hf:")
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model {spec}: cannot load a transformers causal LM ({first}); pass hf:<folder> of a "
                          "saved model") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _continuation_logp(model: Any, tokenizer: Any, prompt: str, answers: list[str], max_len: int) -> list[float]:
    """Summed log-probability of each answer continuing ``prompt`` (one batched forward)."""
    torch = require_torch("Tx-LLM scoring")
    from llmlab.training.lora_sft import collate, encode_example

    enc = []
    for a in answers:
        ids, labels = encode_example(tokenizer, prompt, a, max_len)
        if tokenizer.eos_token_id is not None:  # score the answer itself, not its end-of-text
            ids, labels = ids[:-1], labels[:-1]
        enc.append((ids, labels))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids_t, mask, labels = collate(enc, int(pad))
    with torch.no_grad():
        logp = model(input_ids=ids_t, attention_mask=mask).logits[:, :-1].float().log_softmax(-1)  # (B, L-1, V)
    tgt = labels[:, 1:]
    tok_lp = logp.gather(-1, tgt.clamp(min=0)[..., None])[..., 0] * (tgt != -100)  # (B, L-1)
    return [float(v) for v in tok_lp.sum(-1)]


def _greedy(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, max_len: int) -> str:
    torch = require_torch("Tx-LLM scoring")
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])[-(max_len - max_new_tokens):]
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return str(tokenizer.decode(out[0, len(ids):], skip_special_tokens=True))


def evaluate(model: Any, tokenizer: Any, data: Mapping[str, Any], cfg: TxFinetuneConfig) -> dict[str, Any]:
    """Each task's predictions and TDC metric on its test split.

    Returns:
        ``{task: {"metric", "value", "n", "unparsed", "y": [...], "pred": [...]}}``.
    """
    from llmlab.tasks import tx_llm as tx

    out: dict[str, Any] = {}
    model.eval()
    for name, d in data.items():
        task, binning = d.task, d.binning()
        rows = d.splits["test"][: cfg.max_eval_per_task]
        ys: list[float] = []
        preds: list[float] = []
        unparsed = 0
        median = tx.median([binning.unit(float(r[task.target])) for r in d.splits["train"]]) if binning else 0.0
        for row in rows:
            shots = tx.select_exemplars(task, row, d.splits["train"], cfg.shots, "random", cfg.sft.seed)
            prompt = tx.format_prompt(task, row, shots, binning)
            if task.kind == "binary":
                lp_a, lp_b = _continuation_logp(model, tokenizer, prompt, [" (A)", " (B)"], cfg.sft.max_len)
                preds.append(1.0 / (1.0 + math.exp(lp_a - lp_b)))  # p(B) among {A, B}
                ys.append(float(tx.binary_label(row[task.target])))
            elif task.kind == "regression":
                assert binning is not None
                b = tx.parse_bin(_greedy(model, tokenizer, prompt, 6, cfg.sft.max_len))
                unparsed += b is None
                preds.append(binning.from_bin(b) if b is not None else median)
                ys.append(binning.unit(float(row[task.target])))
            else:
                got = tx.parse_smiles(_greedy(model, tokenizer, prompt, cfg.max_new_tokens, cfg.sft.max_len))
                unparsed += got is None
                preds.append(float(tx.same_molecules(got, row[task.target])))
                ys.append(1.0)
        value = tx.task_metric(task.metric, ys, preds)
        out[name] = {"metric": task.metric, "value": value, "n": len(rows), "unparsed": unparsed, "y": ys,
                     "pred": preds}
    return out


def finetune_tx_llm(model: str, data_dir: str | None, params: Mapping[str, Any], out: Path,
                    on_log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The ``tx_llm`` recipe of ``llmlab lab finetune``: mixture → LoRA SFT → per-task metrics vs SOTA.

    Args:
        model: ``hf:<folder or hub id>`` of a causal LM.
        data_dir: Folder holding ``tdc/<Name>/{train,valid,test}.csv`` (None: the usual search order).
        params: :class:`TxFinetuneConfig` fields (``-p`` pairs, parsed).
        out: Folder for ``result.json`` and the LoRA adapter (``adapter/``).
        on_log: Progress lines.

    Returns:
        The result record (also written to ``out/result.json``).

    Raises:
        ConfigError: Bad options or model. DataError: no TDC data found.
    """
    from llmlab.tasks import tx_llm as tx

    cfg = build_config(TxFinetuneConfig, params)
    say = on_log if on_log is not None else (lambda _m: None)
    torch = require_torch("the Tx-LLM fine-tuning recipe")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    names = cfg.tasks if cfg.tasks is not None else [n for n in tx.TASKS if tx.find_tdc_files(n, data_dir)]
    if not names:
        raise DataError("no TDC data found for the Tx-LLM mixture; pass --data-dir DIR holding "
                        "tdc/<Name>/{train,valid,test}.csv")
    data = {n: tx.load_tdc(n, data_dir) for n in names}
    examples: list[tuple[str, str]] = []
    weights: list[float] = []
    sizes: dict[str, int] = {}
    for n, d in data.items():
        binning = d.binning()
        rows = d.splits["train"][: cfg.max_train_per_task]
        if not rows:
            raise DataError(f"{d.source}: the train split of {n} is empty")
        sizes[n] = len(rows)
        for row in rows:
            shots = tx.select_exemplars(d.task, row, d.splits["train"], cfg.shots, "random", cfg.sft.seed)
            answer = " " + tx.format_answer(d.task, row, binning)
            examples.append((tx.format_prompt(d.task, row, shots, binning), answer))
            weights.append(1.0 if cfg.mixture == "proportional" else 1.0 / len(rows))
    lm, tok = load_hf(model)
    t0 = time.perf_counter()
    before = evaluate(lm, tok, data, cfg) if cfg.eval_before else None
    say(f"mixture: {len(examples)} examples from {len(data)} task(s); LoRA r={cfg.sft.rank}, {cfg.sft.steps} steps")
    rec = lora_sft(lm, tok, examples, cfg.sft, weights,
                   on_log=lambda s, loss: say(f"step {s:5d}  answer loss {loss:.4f}"))
    peft_model = rec.pop("model")
    after = evaluate(peft_model, tok, data, cfg)
    tasks: dict[str, Any] = {}
    for n in names:
        a = after[n]
        tasks[n] = {"metric": a["metric"], "after": a["value"], "before": before[n]["value"] if before else None,
                    "n_train": sizes[n], "n_eval": a["n"], "unparsed_after": a["unparsed"],
                    "vs_sota": tx.compare_to_sota(n, a["value"], metric=a["metric"]),
                    "predictions": {"y": a["y"], "after": a["pred"], "before": before[n]["pred"] if before else None}}
        say(f"{n}: {a['metric']} before {tasks[n]['before']} after {a['value']}")
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out / "adapter"))
    result = {"recipe": "tx_llm", "model": model, "config": cfg.model_dump(), "mixture_sizes": sizes,
              "trainable_params": rec["trainable_params"], "total_params": rec["total_params"],
              "history": rec["history"], "tasks": tasks, "seconds": time.perf_counter() - t0,
              "note": "numbers of a tiny or small open model say nothing about Tx-LLM (PaLM-2)"}
    (out / "result.json").write_text(json.dumps(result, indent=2, default=float))
    return result


__all__ = ["TxFinetuneConfig", "evaluate", "finetune_tx_llm", "load_hf"]
