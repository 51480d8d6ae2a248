from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmlab.core.concurrency import run_sync
from llmlab.methods.prm import HFPRMHead, PRMHeadTrainConfig, StepExample
from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture
from tests.helpers.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture


def _examples() -> list[StepExample]:
    out = []
    for a in range(2, 6):
        good = f"Two plus {a} is {a + 2}."
        bad = f"Two plus {a} is {a + 7} hello."
        out.append(StepExample("Add the numbers.", [good, good], [1.0, 1.0]))
        out.append(StepExample("Add the numbers.", [good, bad], [1.0, 0.0]))
        out.append(StepExample("Add the numbers.", [bad, good], [0.0, 0.25]))
    return out


def test_fast_path_matches_reference(tiny_model_dir: Path) -> None:  # noqa: F811
    import torch

    head = HFPRMHead(tiny_model_dir)
    torch.nn.init.normal_(head.head.weight)
    batch = [head.encode("Q?", ["one step", "two steps here"]), head.encode("Longer question?", ["a"])]
    with torch.no_grad():
        fast = head.logits(batch)
        for (ids, ends), f in zip(batch, fast, strict=True):
            torch.testing.assert_close(f, head.reference_logits(ids, ends), atol=1e-5, rtol=1e-5)


def test_soft_label_training_separates_good_and_bad_steps(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    head = HFPRMHead(tiny_model_dir)
    losses = head.train(_examples(), PRMHeadTrainConfig(epochs=15, lr=0.1, batch_size=6))
    assert losses[-1] < 0.5 * losses[0]
    scores = run_sync(head.score_steps("Add the numbers.", ["Two plus 3 is 5.", "Two plus 3 is 10 hello."]))
    assert scores[0] > 0.7 and scores[1] < 0.3
    # Saved and loaded, the head gives the same scores.
    head.save_head(tmp_path / "head.json")
    again = HFPRMHead.load_head(tmp_path / "head.json")
    assert run_sync(again.score_steps("Add the numbers.", ["Two plus 3 is 5."]))[0] == pytest.approx(scores[0])


def test_trains_on_omegaprm_output(tiny_model_dir: Path) -> None:  # noqa: F811
    from llmlab.backends.mock import MockBackend
    from llmlab.backends.model import Model
    from llmlab.methods.omega_prm import OmegaPRM
    from llmlab.methods.prm import tree_to_examples
    from tests.helpers.omega_world import ANSWER, QUESTION, World, mock_script

    world = World()
    res = run_sync(OmegaPRM(Model(MockBackend(mock_script(world))), {"k": 4}).search(QUESTION, ANSWER))
    examples = tree_to_examples(QUESTION, res.tree(), ANSWER)
    head = HFPRMHead(tiny_model_dir)
    losses = head.train(examples, PRMHeadTrainConfig(epochs=10, lr=0.1, batch_size=16))
    assert losses[-1] < losses[0]
    good = [world.good(1), world.good(2)]
    bad = [world.good(1), "Step 2: oops 9, a slip here."]
    s_good = run_sync(head.score_steps(QUESTION, good))
    s_bad = run_sync(head.score_steps(QUESTION, bad))
    assert s_bad[1] < s_good[1] - 0.2


def test_soft_and_hard_objectives(tiny_model_dir: Path) -> None:  # noqa: F811
    # One step labelled MC = 0.25: the soft objective learns about 0.25, the hard one pushes towards 1.
    examples = [StepExample("Add the numbers.", ["Two plus 2 is 4."], [0.25])] * 4
    soft = HFPRMHead(tiny_model_dir)
    soft.train(examples, PRMHeadTrainConfig(epochs=30, lr=0.1, batch_size=4))
    hard = HFPRMHead(tiny_model_dir)
    hard.train(examples, PRMHeadTrainConfig(objective="hard", epochs=30, lr=0.1, batch_size=4))
    (p_soft,) = run_sync(soft.score_steps("Add the numbers.", ["Two plus 2 is 4."]))
    (p_hard,) = run_sync(hard.score_steps("Add the numbers.", ["Two plus 2 is 4."]))
    assert p_soft == pytest.approx(0.25, abs=0.05) and p_hard > 0.9


def test_pairwise_objective_on_omegaprm_siblings(tiny_model_dir: Path) -> None:  # noqa: F811
    from llmlab.backends.mock import MockBackend
    from llmlab.backends.model import Model
    from llmlab.methods.omega_prm import OmegaPRM
    from llmlab.methods.prm import sibling_pairs
    from tests.helpers.omega_world import ANSWER, QUESTION, World, mock_script

    world = World()
    res = run_sync(OmegaPRM(Model(MockBackend(mock_script(world))), {"k": 4}).search(QUESTION, ANSWER))
    pairs = sibling_pairs(QUESTION, res.tree())
    assert pairs and all(not any("oops" in s for s in good) for good, _ in pairs)
    head = HFPRMHead(tiny_model_dir)
    cfg = PRMHeadTrainConfig(epochs=8, lr=0.1, batch_size=16)
    losses = head.train_pairwise([(QUESTION, g, b) for g, b in pairs], cfg)
    assert losses[-1] < losses[0]
    good = run_sync(head.score_steps(QUESTION, [world.good(1), world.good(2)]))
    bad = run_sync(head.score_steps(QUESTION, [world.good(1), "Step 2: oops 9, a slip here."]))
    assert good[1] > bad[1]
