from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

import llmlab  # noqa: E402
from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.offload.cli import offload_cmd, parse_bytes  # noqa: E402
from llmlab.models.samba import SambaLM  # noqa: E402
from llmlab.training.tiny_lm import TrainConfig  # noqa: E402
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def test_parse_bytes():
    assert parse_bytes("256MB") == 256_000_000
    assert parse_bytes("1.5MiB") == 1_572_864
    assert parse_bytes("4096") == 4096
    with pytest.raises(ConfigError, match="cannot read the size"):
        parse_bytes("lots")


def _saved_model(folder: Path, ffn: str = "drelu") -> Path:
    cfg = TrainConfig(arch="transformer", ffn=ffn, n_layer=2, n_embd=32, n_head=2, intermediate_size=128,
                      seq_len=32, corpus=str(Path(llmlab.__file__).parent))
    torch.manual_seed(0)
    model = SambaLM(cfg.model_config())
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"config": asdict(cfg)}))
    torch.save(model.state_dict(), folder / "model.pt")
    return folder


def test_lab_offload_decodes_the_same_tokens_as_in_memory_under_half_the_ffn_bytes(tmp_path):
    model = _saved_model(tmp_path / "m")
    out = tmp_path / "out"
    ffn_bytes = 2 * 3 * 32 * 128 * 4
    # an untrained model's predictors select ~half the neurons: a quarter budget cannot hold one layer's misses
    res = CliRunner().invoke(offload_cmd, ["--model", str(model), "--budget", str(ffn_bytes // 2), "--tokens", "6",
                                           "--predictor-steps", "20", "--rank", "8", "--hot-fraction", "0.25",
                                           "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "result.json").read_text())
    assert rec["ffn_bytes"] == ffn_bytes and rec["ffn_over_budget"] == pytest.approx(2.0)
    for name in ("offload", "offload_no_pipeline", "dense_stream"):
        row = rec["rows"][name]
        assert row["same_tokens_as_in_memory"], name
    assert rec["rows"]["offload"]["bytes_read_per_token"] < rec["rows"]["dense_stream"]["bytes_read_per_token"]
    assert not (out / "ffn.bin").exists()  # the weight file is removed after the run


def test_lab_offload_rejects_a_swiglu_model(tmp_path):
    model = _saved_model(tmp_path / "m", ffn="swiglu")
    res = CliRunner().invoke(offload_cmd, ["--model", str(model), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)
