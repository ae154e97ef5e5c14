"""Shared test setup.

Importing triton (pulled in by torch._dynamo / Lightning) after TensorFlow crashes the process
(a toolchain trap this project found), so import it first, before any test module imports TensorFlow.

Tests of LiteRT's GPU accelerator take the :func:`vulkan_adapter` fixture: without a Vulkan adapter
they skip, naming the command that provides one, except where ``BOKEH_REQUIRE_GPU=1`` (``.ci/run``
sets it after installing an adapter): there a missing adapter fails them, so CI's log proves they ran.

Ctrl-C reaches the commands the tests start: a test run launched in the background by a
non-interactive shell (``make test &``) inherits SIGINT ignored, and every child would inherit that
too (the Ctrl-C tests would then see their commands run on to the end).

``tiny_ckpt``: a tiny Glass-Net checkpoint (``test_render.write_tiny_checkpoint``), one per test module.
"""

import os
import signal
from pathlib import Path

import pytorch_lightning  # noqa: F401  (import order: before TensorFlow)
import torch._dynamo  # noqa: F401
import pytest
import torch

REQUIRE_GPU = "BOKEH_REQUIRE_GPU"

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # a background job's inheritance (see above)
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state and a small thread pool (2-core CI)."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def vulkan_adapter():
    """The adapter LiteRT's GPU accelerator selects (:func:`bokeh.runtimes.gpu_adapter`).

    Skips without one, failing instead where ``BOKEH_REQUIRE_GPU=1`` (CI).
    """
    from bokeh.runtimes import RuntimeUnavailable, gpu_adapter

    try:
        return gpu_adapter()
    except RuntimeUnavailable as error:
        if os.environ.get(REQUIRE_GPU) == "1":
            pytest.fail(f"{REQUIRE_GPU}=1 (CI) and LiteRT's GPU accelerator is not usable: {error}")
        pytest.skip(f"LiteRT's GPU accelerator is not usable here: {error}")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from test_render import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")
