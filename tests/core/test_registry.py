import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmlab.core import registry as reg_mod
from llmlab.core.errors import ConfigError, UnknownNameError
from llmlab.core.registry import BACKENDS, COMMANDS, METHODS, TASKS, Provide, Registry, System, add_system


def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(UnknownNameError) as exc:
        METHODS.get("self_consistncy")
    msg = str(exc.value)
    assert msg.startswith("Unknown method 'self_consistncy'.")
    assert "Did you mean 'self_consistency'?" in msg
    assert "direct" in msg and "\n" not in msg


def test_lazy_entries_import_on_first_get():
    reg = Registry("thing")
    reg.register("od", "collections:OrderedDict")
    from collections import OrderedDict

    assert reg.get("od") is OrderedDict
    assert "od" in reg and "od" in reg.names()


def test_bad_entry_string_is_config_error():
    with pytest.raises(ConfigError):
        Registry("thing").register("a", "no_colon_here")


def test_builtins_registered_from_the_system_records():
    assert {"openai", "hf", "mock"} <= set(BACKENDS.names())
    assert "gsm8k" in TASKS.names()
    assert BACKENDS.get("mock").name == "mock"
    assert METHODS.owner("moa") == "Mixture-of-Agents"
    assert COMMANDS.owner("arena") == "GenAI-Arena ratings"


def test_unknown_kind_in_a_system_is_one_line():
    with pytest.raises(ConfigError, match="unknown kind 'widget'"):
        add_system(System("x", "0", "method", "", "", "planned", "", (Provide("widget", "w", "a:b"),)))


def test_every_registered_target_resolves():
    """Each "module:attr" of every system imports (torch-backed ones where torch is installed)."""
    for kind, reg in reg_mod.REGISTRIES.items():
        if kind == "dataset":
            continue
        for name in reg.names():
            assert reg.get(name) is not None, (kind, name)


PLUGIN = '''
from llmlab.core.registry import Provide, System
from llmlab.core.contracts import Solution
from llmlab.methods.base import Method
import click


class Shout(Method):
    name = "shout"

    async def solve(self, query, roles):
        return Solution(text=query.text.upper(), answer=query.text.upper())


@click.command("hello")
def hello():
    """Say hello from a plugin."""
    click.echo("hello from plugin")


SYSTEM = System("Shouting", "0000.00000", "method", "(test)", "plugin", "works", "a test plugin", (
    Provide("method", "shout", "llmlab_test_plugin:Shout"),
    Provide("command", "hello", "llmlab_test_plugin:hello", "Say hello from a plugin."),
    Provide("backend", "mockalias", "llmlab.backends.mock:MockBackend"),
))
'''


@pytest.fixture
def installed_plugin(tmp_path: Path) -> dict[str, str]:
    """A third-party package installed into a folder on sys.path (module + dist-info with entry points)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "llmlab_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = site / "llmlab_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: llmlab-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[llmlab.plugins]\nshouting = llmlab_test_plugin:SYSTEM\n")
    (dist / "RECORD").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmlab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_plugin_package_adds_method_command_and_backend(installed_plugin, tmp_path):
    listed = _cli(installed_plugin, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert "shout" in data["methods"] and "mockalias" in data["backends"]
    assert any(s["name"] == "Shouting" for s in data["plugins"])

    hello = _cli(installed_plugin, "hello")
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from plugin"

    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    (tmp_path / "data" / "gsm8k" / "test.jsonl").write_text('{"question": "abc", "answer": "x\\n#### 1"}\n')
    run = _cli(installed_plugin, "eval", "gsm8k", "--method", "shout", "--model", "mockalias:echo",
               "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"), "--run-id", "p1",
               "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "shout" in run.stdout


def test_broken_plugin_is_a_warning_not_a_crash(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    dist = site / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[llmlab.plugins]\nbroken = no_such_module_xyz:SYSTEM\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = _cli(env, "list", "--json")
    assert out.returncode == 0
    assert "plugin 'broken'" in out.stderr and "not loaded" in out.stderr
