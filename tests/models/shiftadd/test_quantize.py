import pytest

torch = pytest.importorskip("torch")

from llmlab.models import shiftadd as sa  # noqa: E402

# -- whole models -----------------------------------------------------------------------------------------


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 32)
        self.head = torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.head(self.fc2(torch.relu(self.fc1(x))))


def test_quantize_model_replaces_weights_and_allocates_bits():
    torch.manual_seed(0)
    model = _Tiny()
    head_before = model.head.weight.detach().clone()
    batches = [torch.randn(16, 32) for _ in range(4)]
    sizes = {"fc1": 32 * 64, "fc2": 64 * 32}
    report = sa.quantize_model(
        model, batches, sa.QuantConfig(method="shiftadd", group_size=32, rounds=2), budget=2.5, choices=(2, 3)
    )
    assert set(report.bits) == {"fc1", "fc2"}
    assert report.average_bits(sizes) <= 2.5
    assert sorted(report.bits.values()) == [2, 3]
    assert torch.equal(model.head.weight, head_before)
    for name in ("fc1", "fc2"):
        layer = getattr(model, name)
        assert torch.allclose(layer.weight, report.bcq[name].dequantize(), atol=1e-5)
        assert 0 < report.weight_err[name] < 1
