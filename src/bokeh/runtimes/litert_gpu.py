"""A ``.tflite`` model on LiteRT's GPU accelerator: ML Drift's GPU kernels over WebGPU (Dawn) on Vulkan.

``ai-edge-litert`` 2.3 ships the accelerator for Linux (``libLiteRtWebGpuAccelerator.so``; 2.1.0 does
not). It needs a Vulkan adapter that Dawn accepts: a GPU's Vulkan driver or, with no GPU, Mesa's
software driver (lavapipe, "llvmpipe") from Mesa 23 on; Debian 12's own Mesa 22.3.6 is refused
("shaderUniform*ArrayDynamicIndexing required"). :data:`ADAPTER_HINT` says how to get one.

The model is compiled for the GPU alone (``HardwareAccelerator.GPU``): LiteRT then refuses a model
with any op its GPU kernels do not run, instead of quietly running that op on the CPU. LiteRT says
what it did only in its native log (stderr): the adapter it picked ("Selected adapter: llvmpipe ...,
arch=software, vendor=mesa, backend=Vulkan, adapterType=CPU / Software"), the ops it refused
("GATHER_ND: Operation is not supported.") and "No adapters found". That log is captured while the
model compiles and read here (:func:`parse_adapter`, :func:`unsupported_ops`).

LiteRT waits at most 120 s for a run to finish (reading the output then fails with "Failed to lock
custom tensor buffer"; the limit is not configurable in 2.3.0). Mesa's software adapter runs the GPU
kernels on the CPU's cores: on a 2-core machine a Glass-Net 16/32/9 already needs minutes at
256 x 384, so only small models or sizes finish there (:class:`GpuRunTimedOut`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bokeh.runtimes.base import (
    Description, Runtime, RuntimeUnavailable, contract_from_names, control_inputs, library_version, outputs_from_names,
    static_size,
)

ACCELERATOR_LIBRARY = "libLiteRtWebGpuAccelerator.so"
ADAPTER_HINT = (
    "install a Vulkan driver: with a GPU, its vendor's Vulkan driver; without one, Mesa >= 23's software "
    "driver (lavapipe). On Debian 12, as root, from the repository: `.ci/vulkan-adapter` (it enables "
    "bookworm-backports and runs `apt-get install -t bookworm-backports mesa-vulkan-drivers vulkan-tools`); "
    "`vulkaninfo --summary` lists the adapters"
)
_NO_ADAPTER = ("No adapters found", "Failed to initialize WebGPU environment", "vkCreateInstance failed")
_NOT_ACCELERATED = "Some ops are not accelerated"


class GpuAdapterMissing(RuntimeUnavailable):
    """LiteRT's GPU accelerator found no Vulkan adapter it accepts (the message says how to get one)."""


class GpuRunTimedOut(RuntimeError):
    """LiteRT gave up waiting for a run on the GPU (it waits 120 s at most): the adapter is too slow
    for this model at this size (a software adapter on few CPU cores). The runtime is unusable after it."""


class NotFullyAccelerated(RuntimeError):
    """The model has ops LiteRT's GPU accelerator does not run; ``unsupported`` holds LiteRT's lines for them."""

    def __init__(self, path: Path, unsupported: list[str]) -> None:
        self.unsupported = unsupported
        ops = "; ".join(unsupported) or "LiteRT named none"
        super().__init__(f"{path}: not fully accelerated on the GPU (ops LiteRT's GPU accelerator does not run: {ops})")


@dataclass(frozen=True)
class Adapter:
    """The GPU adapter LiteRT's GPU accelerator selected, as LiteRT logged it."""

    name: str
    vendor: str = "?"
    backend: str = "?"
    adapter_type: str = "?"
    arch: str = "?"

    @property
    def software(self) -> bool:
        """True for a GPU emulated on the CPU (lavapipe: arch=software, adapterType=CPU / Software)."""
        kind = f"{self.arch} {self.adapter_type}".lower()
        return "software" in kind or "cpu" in kind

    def __str__(self) -> str:
        kind = "software adapter (emulated on the CPU)" if self.software else f"hardware adapter ({self.adapter_type})"
        return f"{self.name}, vendor {self.vendor}, {self.backend}, {kind}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "software": self.software}


def parse_adapter(log: str) -> Adapter | None:
    """The last "Selected adapter: <name>, arch=..., vendor=..., backend=..., adapterType=..." line of ``log``."""
    lines = re.findall(r"Selected adapter: (.*)", log)
    if not lines:
        return None
    line = lines[-1].strip()
    first_key = re.search(r", \w+=", line)
    name = line[:first_key.start()] if first_key else line
    fields = dict(re.findall(r"(\w+)=([^,]*)", line[len(name):]))
    return Adapter(name=name, vendor=fields.get("vendor", "?").strip(), backend=fields.get("backend", "?").strip(),
                   adapter_type=fields.get("adapterType", "?").strip(), arch=fields.get("arch", "?").strip())


def unsupported_ops(log: str) -> list[str]:
    """LiteRT's lines under "Following operations are not supported by GPU delegate:" in ``log``."""
    lines, taking = [], False
    for line in log.splitlines():
        if "Following operations are not supported" in line:
            taking = True
        elif taking and re.match(r"^[A-Z][A-Z0-9_]*: ", line):
            if line not in lines:
                lines.append(line.strip())
        else:
            taking = False
    return lines


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2; the text is appended to the yielded list."""
    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            captured.append(log.read().decode(errors="replace"))


_last_adapter: list[Adapter | None] = [None]  # LiteRT logs the adapter once per environment


def compile_for_gpu(path: Path, enforce_f32: bool = False, cpu_fallback: bool = False):
    """``path`` compiled by LiteRT's ``CompiledModel`` for the GPU accelerator (and the CPU with
    ``cpu_fallback``): ``(model, LiteRT's native log, the adapter)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        RuntimeUnavailable, GpuAdapterMissing, NotFullyAccelerated, RuntimeError: see :func:`compile_error`.
    """
    accelerator_library()
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import GpuOptions, Options

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    accelerators = HardwareAccelerator.GPU | HardwareAccelerator.CPU if cpu_fallback else HardwareAccelerator.GPU
    options = Options(accelerators, gpu_options=GpuOptions(enforce_f32=enforce_f32))
    with native_stderr() as captured:
        try:
            model = CompiledModel.from_file(str(path), options=options)
            error = None
        except RuntimeError as raised:
            error = raised
    log = captured[0]
    adapter = parse_adapter(log)
    if error is not None:
        raise compile_error(path, error, log, adapter) from error
    _last_adapter[0] = adapter = adapter or _last_adapter[0]
    return model, log, adapter


def compile_error(path: Path, error: RuntimeError, log: str, adapter: Adapter | None) -> Exception:
    """The error to raise for a model at ``path`` that LiteRT's GPU accelerator failed to compile
    with ``error`` (``log``: its native log): :class:`GpuAdapterMissing`, :class:`NotFullyAccelerated`
    (the ops named), or a ``RuntimeError`` with the tail of the log."""
    if any(marker in log or marker in str(error) for marker in _NO_ADAPTER):
        return GpuAdapterMissing(f"LiteRT's GPU accelerator found no Vulkan adapter it accepts "
                                 f"(Dawn: \"No adapters found\"); {ADAPTER_HINT}")
    if _NOT_ACCELERATED in str(error):
        return NotFullyAccelerated(path, unsupported_ops(log))
    tail = "\n".join(line for line in log.splitlines()[-15:] if line.strip())
    return RuntimeError(f"{path}: LiteRT's GPU accelerator could not compile the model "
                        f"(adapter: {adapter or 'none selected'}): {error}\nLiteRT's log ends:\n{tail}")


def accelerator_library() -> Path:
    """The GPU accelerator library inside the installed ai-edge-litert.

    Raises:
        RuntimeUnavailable: ai-edge-litert is missing, or is a version without the accelerator (2.1.0).
    """
    try:
        import ai_edge_litert
    except ImportError as error:
        raise RuntimeUnavailable(f"LiteRT is not installed ({error}); `make venv` installs ai-edge-litert") from error
    path = Path(ai_edge_litert.__file__).parent / ACCELERATOR_LIBRARY
    if not path.is_file():
        raise RuntimeUnavailable(
            f"ai-edge-litert {library_version('ai-edge-litert')} has no GPU accelerator ({ACCELERATOR_LIBRARY}); "
            f"`make venv` installs the version pinned in pyproject.toml ([tool.bokeh] pip-overrides)")
    return path


class LiteRTGpuRuntime(Runtime):
    """A ``.tflite`` file compiled by LiteRT's ``CompiledModel`` for its GPU accelerator.

    Args:
        path: the ``.tflite`` file: float32 inputs and outputs (fp16 weights are fine), one signature;
            an image input and, for a model with controls, ``focus`` and ``aperture`` (:attr:`contract`
            is read from the signature's input names); one image output, or ``bokeh``, ``matte`` and
            ``background`` for a model with a matte (:attr:`outputs`, from the output names).
        enforce_f32: compute in float32 (``GpuOptions(enforce_f32=True)``); by default the GPU
            computes in float16, as phone GPUs do.
        cpu_fallback: compile for GPU and CPU, so ops the GPU does not run go to the CPU
            (:attr:`fully_accelerated` says whether any did); by default the GPU alone, and a model
            it cannot run whole raises :class:`NotFullyAccelerated`.

    Raises:
        RuntimeUnavailable: LiteRT or its GPU accelerator library is missing.
        GpuAdapterMissing: no Vulkan adapter the accelerator accepts (the message says how to get one).
        NotFullyAccelerated: (GPU alone) ops the accelerator does not run, named.
        RuntimeError: any other compilation failure, with the tail of LiteRT's log.

    Shape:
        :meth:`run`: ``(B, 3, H, W)`` float32 -> the same, ``(H, W) ==`` :attr:`input_size`; the model
        itself takes NHWC (:meth:`run_nhwc`).
    """

    kind = "litert_gpu"

    def __init__(self, path: str | Path, enforce_f32: bool = False, cpu_fallback: bool = False) -> None:
        self.path, self.enforce_f32, self.cpu_fallback = Path(path), enforce_f32, cpu_fallback
        self.model, self.compile_log, self.adapter = compile_for_gpu(self.path, enforce_f32, cpu_fallback)
        self.fully_accelerated = self.model.is_fully_accelerated()
        if not (cpu_fallback or self.fully_accelerated):  # LiteRT refuses such a model itself; never trust silence
            raise NotFullyAccelerated(self.path, unsupported_ops(self.compile_log))
        signature = self.model.get_signature_list()
        key = "serving_default" if "serving_default" in signature else next(iter(signature))
        names = signature[key]
        self.input_names, self.output_names = list(names["inputs"]), list(names["outputs"])
        self.contract = contract_from_names(self.input_names, self.path)
        self.outputs = outputs_from_names(self.output_names, self.path)
        self.image_name = "image" if len(self.input_names) > 1 else self.input_names[0]
        details = self.model.get_input_tensor_details(key)
        self.input_details = details[self.image_name]
        self.input_shapes = {name: tuple(int(d) for d in detail["shape"]) for name, detail in details.items()}
        self.control_details = {name: details[name] for name in self.contract.controls}
        output_details = self.model.get_output_tensor_details(key)
        self.output_shapes = {name: tuple(int(d) for d in output_details[name]["shape"]) for name in self.output_names}
        image_output = next(name for name in self.output_names if self.outputs.name_of(name) == "image")
        self.output_details = output_details[image_output]
        checked = ([(f"input {name!r}", d) for name, d in details.items()]
                   + [(f"output {name!r}", output_details[name]) for name in self.output_names])
        for label, detail in checked:
            if np.dtype(detail["dtype"]) != np.float32:
                raise ValueError(f"{self.path}: the GPU runtime takes float32 inputs and output; the {label} is "
                                 f"{detail['dtype']} (run quantized models with LiteRTCpuRuntime)")
        self.input_shape = tuple(int(d) for d in self.input_details["shape"])  # (1, H, W, 3)
        self.output_shape = tuple(int(d) for d in self.output_details["shape"])
        self.input_size = static_size(self.input_shape[1:3]) if len(self.input_shape) == 4 else None
        self.signature_index = self.model.get_signature_index(key)
        self.input_buffers = self.model.create_input_buffers(self.signature_index)
        self.output_buffers = self.model.create_output_buffers(self.signature_index)

    @classmethod
    def from_file(cls, path: str | Path, enforce_f32: bool = False, cpu_fallback: bool = False) -> LiteRTGpuRuntime:
        return cls(path, enforce_f32, cpu_fallback)

    def run_nhwc_layers(self, image_nhwc: np.ndarray, controls: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """One ``(1, H, W, 3)`` float32 image -> every output by :attr:`outputs` name, shaped as the
        model's (NHWC: ``image`` ``(1, H, W, 3)``, ``matte`` ``(1, H, W, 1)``, ``background``).

        ``controls``: the model's control inputs, complete and checked (:func:`~bokeh.runtimes.base.control_inputs`);
        None: the defaults (auto focus, f/1.8, no subject) for a model that takes controls. A
        ``subject`` matte ``(1, 1, H, W)`` is fed as the model's ``(1, H, W, 1)`` (one channel: the same values).

        Raises:
            GpuRunTimedOut: LiteRT stopped waiting for the GPU (120 s).
        """
        image_nhwc = np.ascontiguousarray(image_nhwc, np.float32)
        if image_nhwc.shape != self.input_shape:
            raise ValueError(f"{self.path}: input of shape {image_nhwc.shape}, the model takes {self.input_shape}")
        controls = control_inputs(self.contract, 1, size=image_nhwc.shape[1:3]) if controls is None else controls
        feeds = {self.image_name: image_nhwc, **controls}
        start = time.perf_counter()
        for buffer, name in zip(self.input_buffers, self.input_names):  # the buffers follow the signature's input order
            buffer.write(np.ascontiguousarray(np.reshape(feeds[name], self.input_shapes[name]), np.float32))
        self.model.run_by_index(self.signature_index, self.input_buffers, self.output_buffers)
        try:  # the buffers follow the signature's output order
            return {self.outputs.name_of(name): buffer.read(int(np.prod(self.output_shapes[name])), np.float32).reshape(self.output_shapes[name])
                    for buffer, name in zip(self.output_buffers, self.output_names)}
        except RuntimeError as error:
            if "Failed to lock" not in str(error):
                raise
            raise GpuRunTimedOut(
                f"{self.path.name}: LiteRT's GPU accelerator gave up waiting for one run after "
                f"{time.perf_counter() - start:.0f} s on {self.adapter} (LiteRT waits 120 s at most): this adapter is "
                f"too slow for this model at {self.input_shape[1]} x {self.input_shape[2]}"
                + (f" (a software adapter on this machine's {os.cpu_count()} CPU cores); run it where there is a GPU "
                   f"or more cores, or export a smaller size" if self.adapter and self.adapter.software else "")
            ) from error

    def run_nhwc(self, image_nhwc: np.ndarray, controls: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """One ``(1, H, W, 3)`` float32 image -> the image output, shaped as the model's (NHWC)."""
        return self.run_nhwc_layers(image_nhwc, controls)["image"]

    def run_one(self, image: np.ndarray, controls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value.transpose(0, 3, 1, 2) for name, value in self.run_nhwc_layers(image.transpose(0, 2, 3, 1), controls).items()}

    def close(self) -> None:
        """Release the GPU buffers, then the compiled model (large at 1024 x 1536); idempotent."""
        close_compiled(self)

    def __enter__(self) -> LiteRTGpuRuntime:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def precision(self) -> str:
        return "float32 (enforce_f32)" if self.enforce_f32 else "float16 arithmetic (the GPU default)"

    def describe(self) -> Description:
        return gpu_description(self.adapter, self.enforce_f32, self.path, self.fully_accelerated)


def close_compiled(owner) -> None:
    """Release ``owner``'s GPU buffers (``input_buffers``, ``output_buffers``), then its compiled
    ``model``; idempotent."""
    for buffer in getattr(owner, "input_buffers", []) + getattr(owner, "output_buffers", []):
        if buffer.capsule is not None:
            buffer.destroy()
    owner.input_buffers, owner.output_buffers = [], []
    if getattr(owner, "model", None) is not None:
        owner.model.close()
        owner.model = None


def gpu_description(adapter: Adapter | None, enforce_f32: bool, path: Path, fully_accelerated: bool | None) -> Description:
    """The :class:`Description` of a model at ``path`` compiled for LiteRT's GPU accelerator on ``adapter``."""
    return Description(
        runtime=f"LiteRT {library_version('ai-edge-litert')} GPU accelerator (ML Drift, WebGPU)",
        device=str(adapter) if adapter else "unknown adapter (LiteRT logged none)",
        precision="float32 (enforce_f32)" if enforce_f32 else "float16 arithmetic (the GPU default)", threads=None,
        software_adapter=adapter.software if adapter else None,
        extra={"file": path.name, "fully_accelerated": fully_accelerated, "adapter": adapter.to_dict() if adapter else None},
    )


@functools.lru_cache(maxsize=1)
def gpu_adapter() -> Adapter:
    """The adapter LiteRT's GPU accelerator selects here, found by compiling a one-op model (cached).

    Raises:
        RuntimeUnavailable: the accelerator library is missing.
        GpuAdapterMissing: no Vulkan adapter it accepts.
    """
    from bokeh.runtimes.tiny_tflite import add_model

    with tempfile.TemporaryDirectory(prefix="bokeh-gpu-probe-") as folder:
        runtime = LiteRTGpuRuntime(add_model(Path(folder) / "add.tflite"))
        image = np.linspace(-1, 1, 8 * 8 * 3, dtype=np.float32).reshape(1, 8, 8, 3)
        if not np.allclose(runtime.run_nhwc(image), 2 * image, atol=1e-2):
            raise RuntimeError("LiteRT's GPU accelerator computed a wrong image + image: its adapter is broken")
    if runtime.adapter is None:
        return Adapter(name="unknown (LiteRT logged no 'Selected adapter' line)")
    return runtime.adapter
