"""One torch intra-op thread for the duration of each test of the modules that import the fixture.

Tiny tensor ops: one thread avoids OpenMP spin contention on a shared 2-core machine (10x slower otherwise).
Import the autouse fixture into a test module (after ``pytest.importorskip("torch")``)::

    from tests.helpers.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
