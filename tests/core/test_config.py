import pytest

from llmlab.core.config import LabConfig, build_config, parse_params
from llmlab.core.errors import ConfigError


class Inner(LabConfig):
    temperature: float = 0.7


class Cfg(LabConfig):
    n: int = 5
    name: str = "x"
    models: list[str] = []
    judge: Inner = Inner()


def test_yaml_values_and_dotted_keys():
    cfg = build_config(Cfg, ["n=7", "models=[a, b]", "judge.temperature=0", "name=abc"])
    assert cfg.n == 7 and cfg.models == ["a", "b"] and cfg.name == "abc"
    assert cfg.judge.temperature == 0.0  # 0 is a value, not "unset"


def test_unknown_key_names_key_and_allowed():
    with pytest.raises(ConfigError) as exc:
        build_config(Cfg, ["k=3"])
    msg = str(exc.value)
    assert "unknown key 'k'" in msg and "judge, models, n, name" in msg


def test_nested_unknown_key_lists_nested_fields():
    with pytest.raises(ConfigError) as exc:
        build_config(Cfg, ["judge.temp=1"])
    assert "'judge.temp'" in str(exc.value) and "temperature" in str(exc.value)


def test_bad_value_names_key():
    with pytest.raises(ConfigError) as exc:
        build_config(Cfg, ["n=many"])
    assert "'n'" in str(exc.value) and "'many'" in str(exc.value)


@pytest.mark.parametrize("pair", ["novalue", "=3", "a=[unclosed"])
def test_malformed_pairs(pair):
    with pytest.raises(ConfigError):
        parse_params([pair])


def test_config_is_frozen():
    cfg = build_config(Cfg, {})
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        cfg.n = 3  # type: ignore[misc]


@pytest.mark.parametrize("params,needle", [
    (["k=100000000"], "k must be between 0 and 100000, got 100000000"),
    (["temperature=7"], "temperature must be between 0 and 5"),
    (["k=-3"], "greater than or equal to 1"),  # the field's own constraint comes first
])
def test_generic_bounds_refuse_unbounded_counts_and_bad_sampling(params, needle):
    from llmlab.methods.self_consistency import SelfConsistencyConfig

    with pytest.raises(ConfigError) as exc:
        build_config(SelfConsistencyConfig, params)
    assert str(exc.value) == f"SelfConsistencyConfig: {needle}" or needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_probability_fields_above_one_are_refused():
    class Gen(LabConfig):
        event_rate: float = 0.3

    with pytest.raises(ConfigError, match="event_rate must be a probability"):
        build_config(Gen, ["event_rate=1.5"])
    assert build_config(Gen, ["event_rate=1.0"]).event_rate == 1.0
