"""Shared test setup.

Importing triton (pulled in by torch._dynamo / Lightning) after TensorFlow crashes the process
(../shared/TOOLCHAIN.md), so import it first, before any test module imports TensorFlow.
"""

import pytorch_lightning  # noqa: F401  (import order: before TensorFlow)
import torch._dynamo  # noqa: F401
import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state and a small thread pool (2-core CI)."""
    torch.manual_seed(0)
