import json
from dataclasses import asdict

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from llmlab.core.errors import ConfigError, DataError  # noqa: E402
from llmlab.models.samba import SambaLM  # noqa: E402
from llmlab.models.shiftadd.cli import quantize_cmd  # noqa: E402
from llmlab.training.tiny_lm import TrainConfig  # noqa: E402


def _model_dir(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"f{i}.py").write_text(f"def f{i}(x):\n    return x * {i} + 1  # comment\n" * 40)
    cfg = TrainConfig(arch="transformer", n_layer=1, n_embd=32, n_head=4, intermediate_size=64, seq_len=32,
                      eval_windows=4, corpus=str(corpus))
    torch.manual_seed(0)
    model = SambaLM(cfg.model_config())
    d = tmp_path / "model"
    d.mkdir()
    (d / "result.json").write_text(json.dumps({"config": asdict(cfg)}))
    torch.save(model.state_dict(), d / "model.pt")
    return d


def test_quantize_command_writes_record(tmp_path):
    d = _model_dir(tmp_path)
    res = CliRunner().invoke(quantize_cmd, [str(d), "--method", "gptq", "--bits", "3", "--group", "32",
                                            "--calib", "8"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    rec = json.loads((d / "quant-gptq-3.json").read_text())
    assert out["avg_bits"] == 3.0 and rec["layer_bits"] and set(rec["layer_bits"].values()) == {3}
    assert "lm_head" not in rec["layer_bits"]
    assert rec["val_bpb"] == pytest.approx(out["val_bpb"], abs=1e-4)


def test_quantize_command_user_errors(tmp_path):
    with pytest.raises(DataError, match="llmlab lab train"):
        CliRunner().invoke(quantize_cmd, [str(tmp_path)], catch_exceptions=False)
    d = _model_dir(tmp_path)
    with pytest.raises(ConfigError, match="--budget"):
        CliRunner().invoke(quantize_cmd, [str(d), "--bits", "2", "--budget", "3.5"], catch_exceptions=False)


@pytest.mark.slow
def test_experiment_quant_ladder_real_run():
    # minutes: trains a ~1M-parameter byte LM on the standard library, then quantizes it 11 ways
    from llmlab.models.shiftadd.cli import experiment_quant_ladder

    r = experiment_quant_ladder(quick=False)
    m = r["measured"]
    assert len(m) == 12 and all(v == v and v < 8 for v in m.values())
    # mechanism (not the paper's numbers): error compensation helps at 2 bits, the budget is respected
    assert m["gptq-2"] < m["rtn-2"]
    assert m["shiftadd-2"] < m["bcq-2"]
    assert r["runs"]["shiftadd-mixed-2.2"]["avg_bits"] <= 2.2 + 1e-9
    # docs/experiments.md (seed 0, 2026-12-04, BCQ <= official): fp32 < ShiftAdd and GPTQ/ShiftAdd < RTN
    # hold; ShiftAdd <= GPTQ does NOT hold at 3 bits but ShiftAdd beats GPTQ at 2 bits; plain BCQ-2 beats
    # RTN-2 but loses > 0.1 bpb to fp32; the LUT row layout costs < 0.005 at 3 bits; mixed 2.2 bits beats
    # uniform 2 bits by less than 0.02
    h = r["claim_direction_holds"]
    assert h["fp32 < shiftadd-3"] and h["gptq-3 < rtn-3"] and h["shiftadd-2 < rtn-2"]
    assert not h["shiftadd-3 <= gptq-3"] and m["shiftadd-2"] < m["gptq-2"]
    assert m["bcq-2"] < m["rtn-2"]
    assert abs(m["shiftadd-lat-3"] - m["shiftadd-3"]) < 0.005
    assert 0 < m["shiftadd-2"] - m["shiftadd-mixed-2.2"] < 0.02
    assert m["shiftadd-2"] - m["fp32"] < 0.1 < m["bcq-2"] - m["fp32"]
