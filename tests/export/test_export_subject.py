"""A model with the subject input (issue 30 item 3) exports it as the named input ``subject``, and torch,
ONNX Runtime and TFLite agree with a subject matte given and without one (zeros, the default).

One export per session: a tiny Glass-Net 4/4, 1 block, with the options of experiment=reference_v4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from bokeh.export import pipeline, verify
from bokeh.models.controls import ControlError
from bokeh.runtimes import LiteRTCpuRuntime, OnnxRuntime, TorchRuntime

REPO = Path(__file__).resolve().parents[2]
SIZE = (64, 96)
V4_LIKE = dict(width1=4, width2=4, blocks=1, global_residual=True, full_res_skip=True, blend=True, focus_input=True,
               aperture_input=True, subject_input=True)

pytestmark = [pytest.mark.export, pytest.mark.slow]


@pytest.fixture(scope="session")
def subject_export(make_checkpoint, tmp_path_factory):
    checkpoint = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "subject.ckpt", seed=5, **V4_LIKE)
    out = tmp_path_factory.mktemp("subject_export")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO / "conf" / "export"), version_base="1.3"):
            cfg = compose("tflite", overrides=[f"ckpt={checkpoint}", f"out={out}", f"size={SIZE[0]}x{SIZE[1]}",
                                               "verify.latency_repeats=1", "verify.tf_analyzer=false", "verify.gpu_accelerator=off"])
        report = pipeline.run(cfg)
    finally:
        GlobalHydra.instance().clear()
    return checkpoint, report, out


def test_the_export_names_the_subject_input_and_passes_its_parity_checks(subject_export):
    _, report, out = subject_export
    assert not report.failed, {name: report.checks[name] for name in report.failed}
    saved = json.loads((out / "report.json").read_text())
    assert saved["settings"]["inputs"] == ["image", "focus", "aperture", "subject"]
    for kind in ("tflite_float32", "tflite_float16"):
        assert saved["settings"]["tflite_inputs"][kind]["subject"] == [1, *SIZE, 1]  # NHWC, one channel
        assert {"photo_controls", "random_controls"} <= set(saved["errors_vs_torch"][kind])


def test_every_runtime_takes_the_subject_and_defaults_it_to_zeros(subject_export):
    checkpoint, _, out = subject_export
    image = verify.sample_images(*SIZE, "signed")["photo"]
    subject = verify.check_subject(*SIZE)
    torch_runtime = TorchRuntime.from_file(checkpoint)
    with_subject = torch_runtime.run(image, subject=subject)
    without = torch_runtime.run(image)
    assert np.abs(with_subject - without).max() > 1e-3, "the subject plane changes this (random) network's output"
    assert np.array_equal(without, torch_runtime.run(image, subject=np.zeros((1, 1, *SIZE), np.float32)))
    for runtime in (OnnxRuntime.from_file(next(out.glob("*.onnx"))), LiteRTCpuRuntime.from_file(out / "bokeh_float32.tflite")):
        assert runtime.contract.subject
        assert np.abs(runtime.run(image, subject=subject) - with_subject).max() < 2e-3, runtime.kind
        assert np.abs(runtime.run(image) - without).max() < 2e-3, runtime.kind
    with pytest.raises(ControlError, match="subject must be a matte of the model input's size 64 x 96"):
        torch_runtime.run(image, subject=np.zeros((32, 32), np.float32))
    with pytest.raises(ControlError, match=r"values in \[0, 1\]"):
        torch_runtime.run(image, subject=np.full((1, 1, *SIZE), 2.0, np.float32))
