import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models import shiftadd as sa  # noqa: E402


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown quantization method"):
        sa.QuantConfig(method="awq")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not divide"):
        sa.QuantConfig(group_size=48).group_for(64)
