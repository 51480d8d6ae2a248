from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmlab.cli import main


def test_lab_cli_module_does_not_import_torch():
    code = "import sys, llmlab.training.cli; assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lab_train_writes_json_and_plot(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(120):
        (corpus / f"f{i}.py").write_text("import os\nprint(os.getcwd())\n" * 20 + f"# {i}\n")
    out = tmp_path / "run"
    rc = main(["lab", "train", "--arch", "swa", "--ffn", "drelu", "--steps", "3", "--seq-len", "16",
               "--batch-size", "2", "--window", "4", "--corpus", str(corpus), "--out", str(out),
               "-p", "n_embd=16", "-p", "n_head=2", "-p", "intermediate_size=32", "-p", "n_layer=2",
               "-p", "eval_windows=2"])
    assert rc == 0
    res = json.loads((out / "result.json").read_text())
    assert res["config"]["arch"] == "swa" and res["config"]["ffn"] == "drelu"
    assert len(res["history"]) == 1 + 1  # step 0 and the last step (log_every=10)
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lab_train_checkpoints_and_a_rerun_resumes_instead_of_retraining(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(120):
        (corpus / f"f{i}.py").write_text("import os\nprint(os.getcwd())\n" * 20 + f"# {i}\n")
    out = tmp_path / "run"
    args = ["lab", "train", "--arch", "transformer", "--ffn", "drelu", "--steps", "4", "--seq-len", "16",
            "--batch-size", "2", "--corpus", str(corpus), "--out", str(out), "--checkpoint-every", "2",
            "-p", "n_embd=16", "-p", "n_head=2", "-p", "intermediate_size=32", "-p", "n_layer=1",
            "-p", "eval_windows=2", "-p", "log_every=1"]
    assert main(args) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    first = json.loads((out / "result.json").read_text())
    assert state["step"] == 4 and len(first["history"]) == 4
    assert main(args) == 0  # the finished checkpoint is loaded: no step is trained again, same record
    again = json.loads((out / "result.json").read_text())
    assert again["history"] == first["history"] and again["val_bpb"] == first["val_bpb"]


def test_lab_train_unknown_param_is_one_line_error(tmp_path, capsys):
    pytest.importorskip("torch")
    rc = main(["lab", "train", "-p", "n_embed=3", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown training option") and "\n" not in err


def test_lab_group_lists_its_own_and_lazily_wired_commands():
    import click

    from llmlab.core.registry import LAB_COMMANDS as REG
    from llmlab.training.cli import lab

    LAB_COMMANDS = REG.names()

    ctx = click.Context(lab)
    names = lab.list_commands(ctx)
    assert {"train", "experiment", *LAB_COMMANDS} <= set(names)
    for name in LAB_COMMANDS:
        try:
            cmd = lab.get_command(ctx, name)
        except click.ClickException:  # the owning module is not importable here
            continue
        assert isinstance(cmd, click.Command) and cmd.name == name


def test_unknown_experiment_is_a_usage_error(capsys):
    rc = main(["lab", "experiment", "nope"])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("args,needle", [
    (["--steps", "0"], "--steps (training option steps) must be between 1 and"),
    (["--seq-len", "-1"], "--seq-len (training option seq_len) must be between 2 and"),
    (["--batch-size", "0"], "--batch-size"),
    (["-p", "lr=-0.1"], "--lr"),
    (["--moe", "2", "--moe-top-k", "3"], "cannot exceed"),
])
def test_bad_training_values_are_one_line(capsys, args, needle):
    from llmlab.cli import main

    assert main(["lab", "train", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err
