import json

import pytest

pytest.importorskip("torch")

from click.testing import CliRunner

from llmlab.training.discopop import SEED_CODES
from llmlab.training.discopop.cli import discover_cmd


def test_discover_command_with_mock_proposer(tmp_path):
    reply = json.dumps({"thought": "hinge again", "name": "my_hinge", "code": SEED_CODES["hinge"]})
    assert "?" not in reply
    out = tmp_path / "d.json"
    res = CliRunner().invoke(discover_cmd, ["--model", f"mock:text={reply}", "--generations", "2",
                                            "--timeout", "60", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())
    assert [c["name"] for c in rec["history"]] == ["my_hinge", "my_hinge"]
    assert all(c["valid"] and c["fitness"] is not None for c in rec["history"])
    # four seeds scored on the same task, then the two proposals
    assert [a["name"] for a in rec["archive"]] == ["dpo", "hinge", "ipo", "kto_pair", "my_hinge", "my_hinge"]
    # the same loss code on the same seeded task scores the same as the seed it copies
    seed_fit = rec["archive"][1]["fitness"]
    assert rec["history"][0]["fitness"] == pytest.approx(seed_fit)
