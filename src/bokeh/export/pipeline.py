"""Checkpoint -> ONNX -> TFLite, every step verified; what ``python -m bokeh.export`` runs.

:func:`run` writes into a temporary folder inside ``out`` and moves the files into ``out`` only when
every check passed, so a failed run never replaces a good earlier export; a failed run's files are
kept in ``<out>/failed/`` for inspection. An interrupted run (Ctrl-C) removes its temporary folder
(tens of MB at 1024 x 1536) on the way out; ``out`` is checked writable before anything is loaded.
"""

from __future__ import annotations

import torch._dynamo  # noqa: F401, I001  (import order: before TensorFlow, see bokeh.export.tflite)

import errno
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bokeh.checkpoint import load_generator
from bokeh.model_files import embed_metadata
from bokeh.cli import given_path, ignoring_interrupts
from bokeh.files import OutputFolderError, check_output_folder, existing_outputs
from bokeh.export import onnx as onnx_export
from bokeh.export import pair, quantize, tflite, verify
from bokeh.inference import resolve_precision
from bokeh.models.glassnet import DOWNSAMPLE, MIN_SIDE
from bokeh.runtimes import (
    GpuRunTimedOut, LiteRTCpuRuntime, LiteRTGpuRuntime, NotFullyAccelerated, OnnxRuntime, Runtime, RuntimeUnavailable,
    TorchRuntime, gpu_adapter,
)
from bokeh.runtimes.segmenter import SegmenterMissing, segmenter_model_path

RUNTIMES = ("torch_pool_form", "onnxruntime", "tflite_float32", "tflite_float16", "tflite_int8")
GPU_OPS_MODES = ("auto", "required", "report")
GPU_ACCELERATOR_MODES = ("auto", "required", "off")
#: GPU-accelerator runs per .tflite file: (suffix of the report keys, enforce_f32)
GPU_RUNS = (("gpu", False), ("gpu_f32", True))
SOFTWARE_ADAPTER_NOTE = ("software adapter: the GPU is emulated on this machine's CPU, so its timings say nothing "
                         "about a phone's GPU; its results are the GPU kernels' (ML Drift) arithmetic")


class ExportConfigError(ValueError):
    """A bad ``python -m bokeh.export`` setting."""


def parse_size(size: str) -> tuple[int, int]:
    """``"1024x1536"`` -> ``(1024, 1536)`` (H, W); both positive multiples of 8."""
    parts = str(size).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ExportConfigError(f"size={size!r} is not HxW (e.g. size=1024x1536 landscape, size=1536x1024 portrait)")
    height, width = (int(p) for p in parts)
    if height <= 0 or width <= 0 or height % DOWNSAMPLE or width % DOWNSAMPLE:
        raise ExportConfigError(
            f"size={size!r}: height and width must be positive multiples of {DOWNSAMPLE} (Glass-Net downsamples 8x)"
        )
    if min(height, width) < MIN_SIDE:  # 1 px a side at 1/8: instance norm and the checks' resizes fail (after minutes)
        raise ExportConfigError(f"size={size}: each side must be at least {MIN_SIDE} px (Glass-Net works at 1/8 scale): "
                                f"export at least {MIN_SIDE}x{MIN_SIDE}, e.g. size=256x384")
    return height, width


def variant_dir(out: Path, instance_norm: str, value_range: str) -> Path:
    """``out`` for the default export; a named subfolder of it for the other variants."""
    parts = [name for name, on in (("plain_in", instance_norm == "plain"), ("pixel_range", value_range == "pixel")) if on]
    return out / "_".join(parts) if parts else out


def to_signed(output: np.ndarray, value_range: str) -> np.ndarray:
    """An image or output in the model's value range -> the [-1, 1] scale (of torch and the tolerances)."""
    return output / 127.5 - 1.0 if value_range == "pixel" else output


def layers_to_signed(layers: dict[str, np.ndarray], value_range: str) -> dict[str, np.ndarray]:
    """A runtime's outputs (``Runtime.run_layers``) -> the [-1, 1] scale: image and background
    rescaled, the matte (in [0, 1] in every value range) as it is."""
    return {name: value if name == "matte" else to_signed(value, value_range) for name, value in layers.items()}


@dataclass(frozen=True)
class Check:
    """One verdict; a check that is not ``required`` is reported but cannot fail the run.

    ``ran=False``: the check could not run here (no GPU adapter): it did not pass, the detail says
    what provides what it needs, and it fails the run only if ``required``.
    """

    passed: bool
    detail: str
    required: bool = True
    ran: bool = True


@dataclass
class Report:
    """Everything :func:`run` measured; ``checks`` maps check name -> :class:`Check`."""

    settings: dict[str, Any]
    checks: dict[str, Check] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    tf_analyzer_not_the_check: dict[str, str] = field(default_factory=dict)
    gpu_accelerator: dict[str, Any] = field(default_factory=dict)
    out_dir: str = ""

    @property
    def failed(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.required and not check.passed]

    def check(self, name: str, passed: bool, detail: str, required: bool = True) -> bool:
        self.checks[name] = Check(bool(passed), detail, required)
        return bool(passed)

    def not_run(self, name: str, detail: str, required: bool) -> None:
        """Record a check that could not run here (never a pass)."""
        self.checks[name] = Check(False, detail, required, ran=False)

    def to_json(self) -> dict[str, Any]:
        return _json_safe({
            "passed": not self.failed,
            "failed_checks": self.failed,
            "checks": {name: vars(check).copy() for name, check in self.checks.items()},
            "settings": self.settings,
            "files_bytes": self.files,
            "tflite_ops": self.ops,
            "errors_vs_torch": self.errors,
            "latency": self.latency,
            "runtimes": self.runtimes,
            "timings_s": self.timings_s,
            "tf_analyzer_not_the_check": self.tf_analyzer_not_the_check,
            "gpu_accelerator": self.gpu_accelerator,
            "out_dir": self.out_dir,
        })


def _json_safe(value: Any) -> Any:
    """Floats that JSON cannot hold (inf PSNR of identical outputs) become None (:func:`bokeh.cli.finite_json`)."""
    from bokeh.cli import finite_json

    return finite_json(value)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("torch", "onnx", "onnxruntime", "onnxscript", "onnx2tf", "tensorflow", "ai-edge-litert")
    return {name: version(name) for name in names}


def _parity_checks(report: Report, name: str, reference: dict[str, dict[str, np.ndarray]],
                   outputs: dict[str, dict[str, np.ndarray]], tolerance: float, min_psnr_db: float | None = None,
                   required: bool = True) -> None:
    """``{name}_vs_torch`` on the images of every case and, for a model with a matte,
    ``{name}_matte_vs_torch`` on its mattes (the same max abs tolerance; PSNR with peak 1).

    Shape: reference, outputs: case -> ``Runtime.run_layers`` outputs on the [-1, 1] scale."""
    _parity_check(report, name, {k: verify.parity(reference[k]["image"], outputs[k]["image"], 2.0) for k in outputs},
                  tolerance, min_psnr_db, required)
    cases = [k for k in outputs if "matte" in outputs[k] and "matte" in reference[k]]
    if cases:
        _parity_check(report, f"{name}_matte", {k: verify.parity(reference[k]["matte"], outputs[k]["matte"], 1.0) for k in cases},
                      tolerance, required=required)


def _parity_check(report: Report, name: str, errors: dict[str, dict[str, float]], tolerance: float,
                  min_psnr_db: float | None = None, required: bool = True) -> None:
    """Fail unless every image's max abs error is below ``tolerance`` (and PSNR at least ``min_psnr_db``);
    with ``required=False`` a miss is reported without failing the export."""
    worst = max(e["max_abs"] for e in errors.values())
    report.errors[name] = errors
    passed, detail = worst < tolerance, f"max abs error {worst:.3g} (limit {tolerance:g})"
    if min_psnr_db is not None:
        lowest = min(e["psnr_db"] for e in errors.values())
        passed = passed and lowest >= min_psnr_db
        detail += f", PSNR {lowest:.1f} dB (at least {min_psnr_db:g})"
    report.check(f"{name}_vs_torch", passed, detail, required=required)


@dataclass(frozen=True)
class Settings:
    """The validated settings of one export."""

    ckpt: str
    height: int
    width: int
    instance_norm: str
    value_range: str
    opset: int
    float16: bool
    int8: bool
    int8_count: int
    int8_seed: int
    threads: int
    repeats: int
    tolerance: dict[str, float]
    min_psnr_db: dict[str, float]
    gpu_ops_required: bool
    gpu_accelerator: str
    tf_analyzer: bool
    out: Path


#: Every file an export may write into ``out``, report.json last (a re-export removes the ones it did not write again)
OUTPUT_NAMES = ("bokeh.onnx", *(f"bokeh_{kind}.tflite" for kind in tflite.KINDS), "onnx2tf_replacements.json",
                pair.SEGMENTER_FILE, pair.PIPELINE_FILE, "report.json")
#: errno values of a full disk or quota: an export that meets one stops with one sentence
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class ExportWriteError(OSError):
    """The export's files could not be written (disk full, quota): one sentence; the files of an
    earlier export in ``out`` are untouched and no temporary folder is left."""


def _typed(key: str, value: Any, kind: type, low: float | None = None) -> Any:
    """``value`` of the setting ``key`` as ``kind`` (bool, int or float, ``>= low`` where given), or
    :class:`ExportConfigError` naming it (Hydra passes ``export.float16=maybe`` on as a string)."""
    import math

    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ExportConfigError(f"{key}={value}: use true or false")
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if not number or not math.isfinite(value) or (low is not None and value < low):
        what = "a whole number" if kind is int else "a finite number"
        raise ExportConfigError(f"{key}={value}: give {what}" + (f" from {low:g}" if low is not None else ""))
    return kind(value)


def settings_from(cfg: Any) -> Settings:
    """Check a composed ``conf/export/tflite.yaml``; ``ExportConfigError`` says what is wrong."""
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ExportConfigError("no checkpoint given: pass ckpt=path/to/model.ckpt (make tflite CKPT=...)")
    height, width = parse_size(cfg.size)
    choices = {
        "export.instance_norm": (str(cfg.export.instance_norm), onnx_export.INSTANCE_NORM_FORMS),
        "export.value_range": (str(cfg.export.value_range), onnx_export.VALUE_RANGES),
        "verify.gpu_ops": (str(cfg.verify.gpu_ops), GPU_OPS_MODES),
        "verify.gpu_accelerator": (str(cfg.verify.gpu_accelerator), GPU_ACCELERATOR_MODES),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ExportConfigError(f"{key}={value!r}: expected one of {allowed}")
    instance_norm, value_range, gpu_ops, gpu_accelerator = (value for value, _ in choices.values())
    int8 = cfg.export.get("int8", {}) or {}
    int8_count = _typed("export.int8.calibration_count", int8.get("calibration_count", quantize.CALIBRATION_COUNT), int, 1)
    typed = {  # every other number and switch, checked before any file is touched
        "opset": _typed("export.opset", cfg.export.opset, int, 7),
        "float16": _typed("export.float16", cfg.export.float16, bool),
        "int8": _typed("export.int8.enabled", int8.get("enabled", False), bool),
        "int8_seed": _typed("export.int8.calibration_seed", int8.get("calibration_seed", quantize.CALIBRATION_SEED), int, 0),
        "threads": _typed("verify.threads", cfg.verify.threads, int, 1),
        "repeats": _typed("verify.latency_repeats", cfg.verify.latency_repeats, int, 1),
        "tolerance": {key: _typed(f"verify.tolerance.{key}", value, float, 0) for key, value in cfg.verify.tolerance.items()},
        "min_psnr_db": {key: _typed(f"verify.min_psnr_db.{key}", value, float)
                        for key, value in (cfg.verify.get("min_psnr_db") or {}).items()},
        "tf_analyzer": _typed("verify.tf_analyzer", cfg.verify.tf_analyzer, bool),
    }
    try:
        out = variant_dir(given_path("out", cfg.out), instance_norm, value_range)
    except ValueError as error:
        raise ExportConfigError(str(error)) from None
    if out.exists() and not out.is_dir():
        raise ExportConfigError(f"out={cfg.out}: {out} exists and is not a folder; pass another out=")
    try:
        check_output_folder(out, "out", keep=False)
    except OutputFolderError as error:
        raise ExportConfigError(str(error)) from error
    overwrite = cfg.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise ExportConfigError(f"overwrite={overwrite!r}: use true or false")
    refused = None if overwrite else existing_outputs([out / name for name in OUTPUT_NAMES])
    if refused:
        raise ExportConfigError(refused)
    failed = out / "failed"  # replaced by a failed export, removed by a good one: only ever an earlier export's own
    if os.path.lexists(failed) and not (failed.is_dir() and (failed / "report.json").is_file()):
        raise ExportConfigError(f"out={cfg.out}: {failed} exists and is not an earlier failed export (no report.json in it); "
                                f"an export writes its failed files there: move it, or choose another out=")
    return Settings(
        ckpt=str(cfg.ckpt), height=height, width=width, instance_norm=instance_norm, value_range=value_range,
        opset=typed["opset"], float16=typed["float16"], int8=typed["int8"],
        int8_count=int8_count, int8_seed=typed["int8_seed"],
        threads=typed["threads"],
        repeats=typed["repeats"],
        tolerance=typed["tolerance"],
        min_psnr_db=typed["min_psnr_db"],
        gpu_ops_required=gpu_ops == "required" or (gpu_ops == "auto" and instance_norm == "pool"),
        gpu_accelerator=gpu_accelerator,
        tf_analyzer=typed["tf_analyzer"], out=out,
    )


def run(cfg: Any) -> Report:
    """The whole export for a composed ``conf/export/tflite.yaml``; never raises for a failed check.

    Raises ``ExportConfigError`` / ``bokeh.checkpoint.CheckpointError`` for bad settings or files
    (before writing anything). A crash inside a step becomes a failed check named after the step;
    an interrupt (``KeyboardInterrupt``) removes the temporary folder and is raised again.
    """
    s = settings_from(cfg)
    try:  # the phone pipeline's second model, copied from the installed mediapipe: checked before any work
        segmenter_model_path()
    except SegmenterMissing as error:
        raise ExportConfigError(str(error)) from None
    generator = load_generator(s.ckpt)  # CheckpointError says what is wrong with the file
    contract = generator.contract
    if s.int8 and contract.controls:
        raise ExportConfigError(
            f"export.int8.enabled=true: the int8 export does not support a model with controls ({', '.join(contract.controls)}) "
            f"(its calibration and parity checks cover the image input only); export the float32 and float16 files, "
            f"which take the controls (leave out INT8=true / export.int8.enabled)")
    report = Report(settings={
        "ckpt": s.ckpt, "size": [s.height, s.width], "instance_norm": s.instance_norm,
        "value_range": s.value_range, "input_layout": "NHWC float32", "opset": s.opset,
        "inputs": list(contract.names), "outputs": list(generator.outputs.file_names),
        "controls_checked": {k: verify.CHECK_CONTROLS[k] for k in contract.controls},
        "exporter": "torch.onnx.export(dynamo=True, external_data=False)", "threads": s.threads,
        "latency_repeats": s.repeats, "gpu_ops_required": s.gpu_ops_required,
        "gpu_accelerator": s.gpu_accelerator, "tolerance_scale": "[-1, 1]",
        "cpu_count": os.cpu_count(), "versions": _versions(),
    })
    if s.int8:
        report.settings["int8"] = {"scheme": quantize.SCHEME, "calibration": (
            f"sharp images of synthetic pairs 0..{s.int8_count - 1} of set {s.int8_seed} at {s.height} x {s.width} "
            f"(bokeh.data.synthetic.make_pair)")}
    s.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=s.out))
    try:
        _run_steps(report, s, generator, work)
        description = _write_pipeline(s, work, list(contract.names), list(generator.outputs.file_names))
        for name in OUTPUT_NAMES:  # each model file says how to feed it, also when copied without report.json
            if name.endswith((".onnx", ".tflite")) and name != pair.SEGMENTER_FILE and (work / name).is_file():
                meta = {"value_range": s.value_range, "inputs": list(contract.names), "layout": "NCHW" if name.endswith(".onnx") else "NHWC"}
                if description is not None and name.endswith(".tflite"):  # the phone pipeline: the segmenter beside it
                    meta.update(segmenter=pair.SEGMENTER_FILE, pipeline=description)
                embed_metadata(work / name, meta)
        report.files = {name: (work / name).stat().st_size for name in OUTPUT_NAMES[:-1] if (work / name).exists()}
        _finish(report, work, s.out)
    except BaseException as error:  # Ctrl-C (or a crash outside the steps): leave no temporary folder behind
        with ignoring_interrupts():
            shutil.rmtree(work, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            raise ExportWriteError(error.errno, f"could not write the export into out={s.out} ({error.strerror or 'no space left on device'}): "
                                   f"free some space and export again; the files of an earlier export there are untouched") from None
        raise
    return report


def _run_steps(report: Report, s: Settings, generator, work: Path) -> None:
    """Every step into ``work``; a crash becomes a failed check named after its step, unless Ctrl-C
    caused it (a library that turns the interrupt into its own error): then it is an interrupt."""
    seen: list[int] = []

    def note_interrupt(signum, frame):
        seen.append(signum)
        signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as without this handler

    try:
        previous = signal.signal(signal.SIGINT, note_interrupt)
    except ValueError:  # not the main thread: no handler to install
        previous = None
    try:
        _steps(report, s, generator, work, seen)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _steps(report: Report, s: Settings, generator, work: Path, interrupts: list[int]) -> None:
    step = "torch"
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        images, controls = verify.with_controls(verify.sample_images(s.height, s.width, s.value_range),
                                                generator.contract.controls)
        module, reference, runtimes = _torch_step(report, s, generator, images, controls)
        step = "onnx"
        runtimes["onnxruntime"] = _onnx_step(report, s, module, images, reference, work, controls)
        step = "tflite_conversion"
        converted = _conversion_step(report, s, work)
        step = "tflite_checks"
        runtimes.update(_tflite_step(report, s, converted, images, reference, generator.contract, controls, generator.outputs))
        step = "gpu_accelerator"
        _gpu_step(report, s, converted, images, reference, controls)
        step = "segmenter"
        pair.segmenter_checks(report, pair.copy_segmenter(work), verify.sample_images(s.height, s.width, s.value_range),
                              s.value_range, _gpu_unavailable(s),
                              {"gpu": s.tolerance["segmenter_gpu_float16"], "gpu_f32": s.tolerance["gpu_float32"]},
                              required=s.gpu_accelerator == "required")
        step = "latency"
        _latency_step(report, s, generator, runtimes, images["photo"])
    except Exception as error:  # any crash is a failed check named after its step
        if interrupts:
            raise KeyboardInterrupt from error
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            raise  # a full disk is no failed check: run() says it in one sentence
        report.check(step, False, f"{type(error).__name__}: {error}")
        report.settings["traceback"] = traceback.format_exc()
    finally:
        torch.set_num_threads(torch_threads)


def _signed_outputs(runtime: Runtime, images: dict[str, np.ndarray], value_range: str,
                    controls: dict[str, dict] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``runtime`` on each image (in the model's range) with that case's controls
    (:func:`bokeh.export.verify.with_controls`; none: the defaults): every output
    (``Runtime.run_layers``) on the [-1, 1] scale (:func:`layers_to_signed`)."""
    controls = controls or {}
    return {k: layers_to_signed(runtime.run_layers(x, **controls.get(k, {})), value_range) for k, x in images.items()}


def _outputs_check(report: Report, name: str, runtime: Runtime, outputs) -> None:
    """``{name}_outputs``: the exported file's outputs (by name) are the checkpoint's contract."""
    report.check(f"{name}_outputs", runtime.outputs == outputs,
                 f"outputs {', '.join(runtime.outputs.names)}; the checkpoint's: {', '.join(outputs.names)}")


def _inputs_check(report: Report, name: str, runtime: Runtime, contract, shapes: str) -> None:
    """``{name}_inputs``: the exported file's inputs (by name) are the checkpoint's contract."""
    report.check(f"{name}_inputs", runtime.contract == contract,
                 f"inputs {', '.join(runtime.contract.names)} ({shapes}); the checkpoint's: {', '.join(contract.names)}")


def _torch_step(report: Report, s: Settings, generator, images, controls) -> tuple[torch.nn.Module, dict[str, dict[str, np.ndarray]], dict[str, Runtime]]:
    """The module to export, the reference outputs (the checkpoint's generator as trained, in torch's
    fast path, as ``python -m bokeh.render ckpt=<.ckpt>`` runs it) and ``{"torch": the exported
    module's generator}`` (IN in pool form, when that is the export's form)."""
    signed = {k: to_signed(x, s.value_range) for k, x in images.items()}  # torch runs on [-1, 1]
    trained = TorchRuntime(generator)
    reference = _signed_outputs(trained, signed, "signed", controls)
    module = onnx_export.deployable(generator, s.height, s.width, s.instance_norm, s.value_range)
    exported = TorchRuntime(module.generator)
    if s.instance_norm == "pool":
        _parity_checks(report, "torch_pool_form", reference, _signed_outputs(exported, signed, "signed", controls),
                       s.tolerance["pool_form"])
    return module, reference, {"torch": exported}


def _onnx_step(report: Report, s: Settings, module, images, reference, work: Path, controls) -> OnnxRuntime:
    """Export ``work/bokeh.onnx``, run onnx.checker, compare ONNX Runtime with torch."""
    start = time.perf_counter()
    path = onnx_export.export_onnx(module, torch.from_numpy(images["random"]), work / "bokeh.onnx", s.opset)
    report.timings_s["onnx_export"] = time.perf_counter() - start
    onnx_export.check_onnx(path)
    report.check("onnx_checker", True, "onnx.checker.check_model(full_check=True) passed")
    ort_model = OnnxRuntime(path, s.threads)
    shapes = ", ".join(f"{i.name} {tuple(i.shape)}" for i in ort_model.session.get_inputs())
    _inputs_check(report, "onnx", ort_model, module.contract, shapes)
    _outputs_check(report, "onnx", ort_model, module.outputs)
    _parity_checks(report, "onnxruntime", reference, _signed_outputs(ort_model, images, s.value_range, controls),
                   s.tolerance["onnxruntime"])
    return ort_model


def _conversion_step(report: Report, s: Settings, work: Path) -> dict[str, Path]:
    """onnx2tf + TFLite converter: ``{"tflite_float32": path[, "tflite_float16": path]}``."""
    int8_images = None
    if s.int8:
        def int8_images():
            return quantize.representative_images(s.height, s.width, s.value_range, s.int8_count, s.int8_seed)
    converted = tflite.convert(work / "bokeh.onnx", work, verify.calibration_images(s.value_range), float16=s.float16,
                               int8_images=int8_images)
    replacements = json.loads((work / "onnx2tf_replacements.json").read_text())["operations"]
    report.settings["onnx2tf_replacements"] = [op["op_name"] for op in replacements]
    report.timings_s["onnx2tf"] = converted.onnx2tf_s
    report.timings_s["tflite_convert"] = converted.tflite_s
    files = {"tflite_float32": converted.float32}
    if converted.float16 is not None:
        files["tflite_float16"] = converted.float16
    if converted.int8 is not None:
        files["tflite_int8"] = converted.int8
        report.timings_s["int8_convert"] = converted.int8_s
    return files


def _tflite_step(report: Report, s: Settings, files: dict[str, Path], images, reference, contract,
                 controls, outputs_contract) -> dict[str, LiteRTCpuRuntime]:
    """Per .tflite: the inputs and outputs by name (the checkpoint's contracts), NHWC image input and
    output, parity with torch (with the controls set too; the matte too), op list vs the GPU allow-list."""
    models = {}
    expected = (1, s.height, s.width, 3)
    for name, path in files.items():
        models[name] = model = LiteRTCpuRuntime(path, s.threads)
        report.check(f"{name}_nhwc_io", model.input_shape == expected == model.output_shape,
                     f"input {model.input_shape}, output {model.output_shape}, want NHWC {expected}")
        shapes = {"image": list(model.input_shape), **{k: [int(d) for d in v["shape"]] for k, v in model.control_details.items()}}
        report.settings.setdefault("tflite_inputs", {})[name] = shapes
        _inputs_check(report, name, model, contract, ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items()))
        report.settings.setdefault("tflite_outputs", {})[name] = {
            model.outputs.name_of(k): [int(d) for d in v["shape"]] for k, v in model.output_details_by_name.items()}
        _outputs_check(report, name, model, outputs_contract)
        _parity_checks(report, name, reference, _signed_outputs(model, images, s.value_range, controls), s.tolerance[name],
                       s.min_psnr_db.get(name))
        ops = verify.tflite_ops(path)
        report.ops[name] = dict(sorted(ops.items()))
        problems = verify.gpu_op_problems(ops)
        detail = "; ".join(problems) if problems else "all ops on the GPU-delegate allow-list (bokeh.export.gpu_ops)"
        report.check(f"{name}_gpu_ops", not problems, detail, required=s.gpu_ops_required)
        if s.tf_analyzer:
            report.tf_analyzer_not_the_check[name] = verify.tf_analyzer_verdict(path)
    return models


def _gpu_unavailable(s: Settings) -> str | None:
    """Why the GPU-accelerator checks cannot run (``verify.gpu_accelerator=off``, no adapter), or None."""
    if s.gpu_accelerator == "off":
        return "verify.gpu_accelerator=off"
    try:
        gpu_adapter()
    except RuntimeUnavailable as error:
        return str(error)
    return None


def _write_pipeline(s: Settings, work: Path, inputs: list[str], outputs: list[str]) -> dict | None:
    """``pipeline.json`` in ``work`` (:func:`bokeh.export.pair.describe_pipeline`) when the segmenter
    was copied there; the description, or None."""
    if not (work / pair.SEGMENTER_FILE).is_file():
        return None
    files = [name for name in OUTPUT_NAMES if name.startswith("bokeh_") and (work / name).is_file()]
    description = pair.describe_pipeline(files, (s.height, s.width), s.value_range, inputs, outputs, work / pair.SEGMENTER_FILE)
    (work / pair.PIPELINE_FILE).write_text(json.dumps(description, indent=2) + "\n")
    return description


def _gpu_step(report: Report, s: Settings, files: dict[str, Path], images, reference, controls=None) -> None:
    """Each .tflite on LiteRT's GPU accelerator alone, in fp16 (its default) and fp32 arithmetic:
    fully accelerated, parity with torch, latency. Without an adapter (or with
    ``verify.gpu_accelerator=off``) every file's check is recorded as "not run", saying why."""
    reason = _gpu_unavailable(s)
    if reason is not None:
        report.gpu_accelerator = {"status": "not run", "reason": reason}
        for name in files:
            report.not_run(f"{name}_gpu_accelerator", f"not run: {reason}", s.gpu_accelerator == "required")
        return
    adapter = gpu_adapter()  # cached
    report.gpu_accelerator = {"status": "ran", "adapter": adapter.to_dict(), "adapter_text": str(adapter),
                              "timings": SOFTWARE_ADAPTER_NOTE if adapter.software else "hardware adapter"}
    for name, path in files.items():
        if name == "tflite_int8":  # int8 steps: its own limit; reported, not required (phones run the float files)
            tolerances = {"gpu": s.tolerance[name], "gpu_f32": s.tolerance[name]}
        else:
            tolerances = {"gpu": s.tolerance["gpu_float16"],
                          "gpu_f32": s.tolerance["gpu_float32" if name == "tflite_float32" else name]}
        gpu_checks(report, name, path, images, reference, s.value_range, tolerances, s.repeats,
                   required=s.gpu_accelerator == "required", strict=name != "tflite_int8", controls=controls)


def gpu_checks(report: Report, name: str, path: Path, images: dict[str, np.ndarray], reference: dict[str, np.ndarray],
               value_range: str, tolerances: dict[str, float], repeats: int, required: bool = True,
               strict: bool = True, controls: dict[str, dict] | None = None) -> None:
    """The GPU-accelerator checks of one .tflite file, into ``report``.

    ``{name}_gpu_fully_accelerated``: compiled for the GPU alone (LiteRT refuses, naming the ops, a model
    with any op its GPU kernels do not run). Then per run of :data:`GPU_RUNS`: ``{name}_{run}_vs_torch``,
    max abs error on the [-1, 1] scale against ``reference`` within ``tolerances[run]``, and the
    latency (the runs after the first, which compiles kernels: the second image, then ``repeats - 1``
    more runs of the photo). A run LiteRT stops waiting for (:class:`GpuRunTimedOut`) is recorded as
    "not run" (failing the export only if ``required``). With ``strict=False`` (the int8 file) every
    check is reported without failing the export.

    ``controls``: each case's controls (:func:`bokeh.export.verify.with_controls`); none: the defaults.

    Shape:
        images: NCHW in the model's value range; reference: the torch outputs on the [-1, 1] scale,
        per case the image or every output (``Runtime.run_layers``: then the matte is compared too,
        ``{name}_{run}_matte_vs_torch``).
    """
    controls = controls or {}
    reference = {k: v if isinstance(v, dict) else {"image": v} for k, v in reference.items()}
    for run, enforce_f32 in GPU_RUNS:
        key = f"{name}_{run}"
        try:
            runtime = LiteRTGpuRuntime(path, enforce_f32=enforce_f32)
        except NotFullyAccelerated as error:
            report.check(f"{name}_gpu_fully_accelerated", False, str(error), required=strict)
            return
        with runtime:  # GPU buffers of a 1024 x 1536 model are large: one runtime at a time
            if not enforce_f32:  # the same ops compile either way
                report.check(f"{name}_gpu_fully_accelerated", runtime.fully_accelerated,
                             f"compiled for LiteRT's GPU accelerator alone on {runtime.adapter}", required=strict)
            try:
                outputs, seconds = {}, []
                for k, x in [*images.items(), *[("photo", images["photo"])] * max(0, repeats - 1)]:
                    start = time.perf_counter()
                    outputs[k] = layers_to_signed(runtime.run_layers(x, **controls.get(k, {})), value_range)
                    seconds.append(time.perf_counter() - start)
            except GpuRunTimedOut as error:
                report.not_run(f"{key}_vs_torch", f"not run: {error}", required and strict)
                report.gpu_accelerator.setdefault("timed_out", []).append(key)
                continue
            _parity_checks(report, key, reference, {k: outputs[k] for k in images}, tolerances[run], required=strict)
            timed = seconds[1:] or seconds
            report.latency[key] = {"median_s": statistics.median(timed), "runs_s": timed, "first_run_s": seconds[0]}
            report.runtimes[key] = runtime.describe().to_dict()


def _latency_step(report: Report, s: Settings, generator, runtimes: dict[str, Runtime], photo: np.ndarray) -> None:
    """Median latency of the photo through each runtime, and what each is.

    torch is timed the way ``python -m bokeh.render`` runs a checkpoint: the fast path of
    :mod:`bokeh.inference` on the generator as trained (channels-last instance norm), in fp32, and
    in bf16 too where the CPU computes it natively; not the exported pool-form module, which is
    slower and which nobody deploys in torch.
    """
    timed = dict(runtimes)
    timed["torch"] = TorchRuntime(generator, precision="fp32")
    if resolve_precision("auto") == "bf16":
        timed["torch_bf16"] = TorchRuntime(generator, precision="bf16")
    for name, runtime in timed.items():
        x = to_signed(photo, s.value_range) if name.startswith("torch") else photo
        report.latency[name] = verify.median_latency(lambda runtime=runtime, x=x: runtime.run(x), s.repeats)
        report.runtimes[name] = runtime.describe().to_dict()


def _finish(report: Report, work: Path, out: Path) -> None:
    """Write report.json; move everything into ``out`` if all required checks passed, else to
    ``out/failed`` (the files of an earlier good export stay untouched)."""
    destination = out / "failed" if report.failed else out
    report.out_dir = str(destination)
    (work / "report.json").write_text(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")
    if report.failed:
        shutil.rmtree(destination, ignore_errors=True)
        work.rename(destination)
        return
    for path in sorted(work.iterdir()):  # report.json last: it describes the files before it
        if path.is_file() and path.name != "report.json":
            os.replace(path, out / path.name)  # atomic per file, same filesystem
    os.replace(work / "report.json", out / "report.json")
    for name in OUTPUT_NAMES:  # an earlier export's files this one did not write (bokeh_int8.tflite without int8)
        if name not in report.files and name != "report.json":
            (out / name).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out / "failed", ignore_errors=True)  # an earlier failure, now superseded
