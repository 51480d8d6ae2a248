"""The Prompt Report's taxonomy of text techniques (arXiv 2406.06608, §2.2) and what llmlab implements.

The family lists follow the report's taxonomy as given in our spec (``shared/specs/inference-methods.md``
§11(a)); that list was written from memory of the paper's Figure 2.2 and was not checked against the
PDF, so the counts here are ours, not the report's "58".
"""

from __future__ import annotations

# family -> [(technique as the report names it, registry name or None when not built)]
TAXONOMY: dict[str, list[tuple[str, str | None]]] = {
    "few-shot (in-context learning)": [
        ("Few-shot prompting", "few_shot"), ("KNN exemplar selection", "few_shot"), ("Vote-K", None),
        ("Self-Generated ICL (SG-ICL)", None), ("Prompt Mining", None),
    ],
    "zero-shot": [
        ("Role prompting", "role"), ("Style prompting", "style"), ("Emotion prompting", "emotion"),
        ("System 2 Attention (S2A)", "system2_attention"), ("SimToM", None),
        ("Rephrase and Respond (RaR)", "rephrase_and_respond"), ("Re-reading (RE2)", "re2"), ("Self-Ask", None),
    ],
    "thought generation": [
        ("Chain-of-Thought (few-shot CoT)", "few_shot_cot"), ("Zero-shot CoT", "zero_shot_cot"),
        ("Step-Back prompting", "step_back"), ("Analogical prompting", None),
        ("Thread-of-Thought (ThoT)", "thread_of_thought"), ("Tabular CoT (Tab-CoT)", "tab_cot"),
        ("Contrastive CoT", "contrastive_cot"), ("Uncertainty-Routed CoT", None), ("Complexity-based prompting", None),
        ("Active prompting", None), ("Memory-of-Thought", None), ("Automatic CoT (Auto-CoT)", None),
    ],
    "decomposition": [
        ("Least-to-Most", "least_to_most"), ("Decomposed prompting (DECOMP)", "decomposed_prompting"),
        ("Plan-and-Solve", "plan_and_solve"), ("Tree-of-Thought", None), ("Recursion-of-Thought", None),
        ("Program-of-Thoughts", "program_of_thought"), ("Faithful CoT", None),
        ("Skeleton-of-Thought", "skeleton_of_thought"),
    ],
    "ensembling": [
        ("Demonstration Ensembling (DENSE)", None), ("Mixture of Reasoning Experts (MoRE)", None),
        ("Max Mutual Information", "max_mutual_information"), ("Self-Consistency", "self_consistency"),
        ("Universal Self-Consistency", "universal_self_consistency"), ("Meta-Reasoning over Multiple CoTs", None),
        ("DiVeRSe (prompt ensemble)", "prompt_ensemble"), ("COSP", None), ("USP", None), ("Prompt Paraphrasing", None),
    ],
    "self-criticism": [
        ("Self-Calibration", "self_calibration"), ("Self-Refine", "self_refine"), ("Reversing CoT (RCoT)", None),
        ("Self-Verification", "self_verification"), ("Chain-of-Verification (CoVe)", "chain_of_verification"),
        ("Cumulative Reasoning", None),
    ],
}


def taxonomy_rows() -> list[tuple[str, str, str, str]]:
    """``(family, technique, registry name or "-", paper arXiv id or "")`` for every taxonomy entry."""
    from llmlab.methods.prompting.base import TECHNIQUES, _load_all

    _load_all()
    rows = []
    for family, entries in TAXONOMY.items():
        for label, name in entries:
            arxiv = TECHNIQUES[name].arxiv if name is not None else ""
            rows.append((family, label, name if name is not None else "-", arxiv))
    return rows


def taxonomy_table() -> str:
    """The text ``llmlab list prompting`` prints: the taxonomy with what is implemented, and a count."""
    rows = taxonomy_rows()
    widths = [max(len(r[i]) for r in [("family", "technique", "llmlab", "arXiv"), *rows]) for i in range(4)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [line.format("family", "technique", "llmlab", "arXiv").rstrip(), line.format(*("-" * w for w in widths))]
    out += [line.format(*r).rstrip() for r in rows]
    done = sum(r[2] != "-" for r in rows)
    out.append(f"\n{done} of {len(rows)} listed techniques implemented "
               "(compose them: -p technique=\"few_shot(k=5)+zero_shot_cot+self_consistency(n=5)\")")
    return "\n".join(out)
