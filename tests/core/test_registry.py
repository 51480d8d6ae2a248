import pytest

from llmlab.core.errors import ConfigError, UnknownNameError
from llmlab.core.registry import BACKENDS, METHODS, TASKS, Registry


def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(UnknownNameError) as exc:
        METHODS.get("self_consistncy")
    msg = str(exc.value)
    assert msg.startswith("Unknown method 'self_consistncy'.")
    assert "Did you mean 'self_consistency'?" in msg
    assert "direct" in msg and "\n" not in msg


def test_lazy_entries_import_on_first_get():
    reg = Registry("thing", "llmlab.test-none")
    reg.register("od", "collections:OrderedDict")
    from collections import OrderedDict

    assert reg.get("od") is OrderedDict
    assert "od" in reg and reg.names() == ["od"]


def test_bad_entry_string_is_config_error():
    with pytest.raises(ConfigError):
        Registry("thing", "x").register("a", "no_colon_here")


def test_builtins_registered():
    assert {"openai", "hf", "mock"} <= set(BACKENDS.names())
    assert "gsm8k" in TASKS.names()
    assert BACKENDS.get("mock").name == "mock"


def test_plugin_entry_points_are_scanned(monkeypatch):
    from importlib import metadata

    class EP:
        name = "plug"
        value = "collections:Counter"

    monkeypatch.setattr(metadata, "entry_points", lambda group: [EP()] if group == "llmlab.test-plugins" else [])
    reg = Registry("method", "llmlab.test-plugins")
    from collections import Counter

    assert reg.get("plug") is Counter
