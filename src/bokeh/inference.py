"""The fast CPU inference path of the generator, shared by rendering, export checks and the benchmark.

Levers, as measured on the 2-core development CPU at 1024 x 1536, c2 = 32 (single-thread CPU
seconds per image, which other jobs on a shared machine disturb least; ``python
benchmarks/bench_generator.py --levers --threads 1`` reproduces them):

* ``torch.inference_mode`` (or ``no_grad``): no saved activations, peak memory 3.7 -> 1.3 GiB;
  no measurable change in time.
* channels-last memory format (NHWC) for weights and activations: oneDNN convolves NHWC
  directly, NCHW makes it reorder inputs and outputs, and the transposed convolutions are much
  slower in NCHW: about -15 % time, peak memory 1.25 -> 0.9 GiB.
* instance norm that stays channels-last (:class:`ChannelsLastInstanceNorm2d`): torch's CPU
  ``instance_norm`` copies channels-last tensors to NCHW and back; about -18 % time. (Only for
  inference: the training graph and the ONNX export keep ``nn.InstanceNorm2d``.)
* optionally, :func:`keep_freed_memory`: glibc stops unmapping large freed blocks, so feature maps
  are not page-faulted in again for every image: about -10 % time from the second image on, and
  about +250 MiB of peak memory.
* bf16 weights and activations (``precision="bf16"``) where the CPU computes bf16 natively (AMX or
  AVX512-BF16, :func:`bokeh.cpu.native_bf16`): oneDNN's bf16 convolutions; on 2 Sapphire Rapids
  cores 4.71 -> 1.56 s under ``torch.autocast`` (measured by this project). Elsewhere bf16 is
  emulated and several times slower than fp32, so ``precision="auto"`` (:func:`resolve_precision`)
  picks it only where it is native.

Precision: ``prepare_for_inference(model, precision="bf16")`` stores the weights in bf16 once (no
per-call weight casts, as ``torch.autocast`` does for weights that need no gradient) and
:func:`run_generator` feeds the model its own dtype and returns float32. Every op then runs in
bf16, as under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (which sends convolutions and
everything after them to bf16 too); reductions (the instance norm's mean and variance) accumulate
in fp32 inside torch's bf16 kernels.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util

import torch
import torch.nn.functional as F
from torch import nn

from bokeh import cpu
from bokeh.models.controls import OutputContract
from bokeh.models.norms import EPS


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)

#: ``precision=`` choices of rendering and the benchmark: ``auto`` resolves to one of the others.
PRECISIONS = ("auto", "fp32", "bf16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_precision(precision: str = "auto") -> str:
    """The precision to compute in: ``"fp32"`` or ``"bf16"``.

    ``auto`` gives ``bf16`` where the CPU has bf16 matrix instructions (:func:`bokeh.cpu.native_bf16`:
    AMX-BF16 or AVX512-BF16) and ``fp32`` elsewhere, where bf16 would be emulated and slower.
    ``fp32`` and ``bf16`` are returned as they are (bf16 then runs emulated where not native).

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu.native_bf16() else "fp32"
    return precision


def describe_precision(precision: str) -> str:
    """``precision`` (resolved) in words for reports: ``"bf16 (native: amx_bf16, avx512_bf16)"``,
    ``"bf16 (emulated, not native)"`` or ``"fp32"``."""
    if precision != "bf16":
        return precision
    info = cpu.describe()
    if not info["bf16_native"]:
        return "bf16 (emulated, not native)"
    return f"bf16 (native: {', '.join(info['bf16_flags'])})" if info["bf16_flags"] else "bf16 (native)"


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the OS (opt-in).

    torch allocates every activation with malloc; glibc serves blocks over 32 MiB with a fresh
    ``mmap`` and unmaps them when freed, so each forward pass page-faults all its large feature
    maps in again (about 400 k faults, 1.6 GB, per 1024 x 1536 image). After this call they come
    from the heap and are reused from the second image on: less CPU time per image, but the
    process keeps its high-water mark of memory and heap fragmentation raises that mark a little.
    Worth it when one process renders many images; it is process-wide, so only entry points
    (CLIs, the benchmark) should call it, before the first forward pass.

    Returns:
        True if glibc accepted the settings, False where there is no glibc (macOS, musl).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


class ChannelsLastInstanceNorm2d(nn.Module):
    """Instance norm (no affine) that keeps channels-last tensors channels-last, for inference.

    ``F.instance_norm`` copies a channels-last tensor to NCHW and back (about 5x the time of the
    norm itself at 256 x 128 x 192); ``F.group_norm`` with one group per channel computes the same
    thing in place on channels-last memory, but its channels-last CPU kernel takes the variance as
    E[x^2] - E[x]^2, which cancels catastrophically when a channel's mean is large against its
    spread (errors of 1e-3 at mean/std = 10, garbage at 1000). Subtracting the per-channel mean
    first (one cheap reduction and one subtraction) makes it exact to float rounding again.

    Shape:
        x: ``(B, C, H, W)``, any values and memory format; output the same shape and format,
        equal to ``nn.InstanceNorm2d(C, affine=False)(x)`` up to float rounding.
    """

    def __init__(self, eps: float = EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centered = x - x.mean(dim=(2, 3), keepdim=True)  # (B, C, H, W), channel means ~0
        return F.group_norm(centered, x.shape[1], eps=self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


def _swap_instance_norms(model: nn.Module) -> None:
    """Replace, in place, every affine-free ``nn.InstanceNorm2d`` without running stats."""
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.InstanceNorm2d) and not module.affine and not module.track_running_stats:
            parent_name, _, child_name = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child_name, ChannelsLastInstanceNorm2d(module.eps))


def prepare_for_inference(model: nn.Module, channels_last: bool = True, precision: str = "fp32") -> nn.Module:
    """A copy of ``model`` set up for fast CPU inference; the original is untouched.

    The copy is in eval mode with gradients off, its instance norms are
    :class:`ChannelsLastInstanceNorm2d` and its weights channels-last (unless ``channels_last=False``)
    and in the dtype of ``precision`` (``auto`` is resolved by :func:`resolve_precision`).
    Its ``state_dict`` has the same keys as the original's, and the same values in fp32.

    Raises:
        ValueError: unknown ``precision``.
    """
    dtype = DTYPES[resolve_precision(precision)]
    model = copy.deepcopy(model).eval().requires_grad_(False)
    _swap_instance_norms(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(dtype)


def compile_for_inference(model: nn.Module) -> nn.Module:
    """``torch.compile`` of a model from :func:`prepare_for_inference`, its weights frozen into the graph.

    Inductor's C++ CPU backend with freezing packs each convolution's weights for oneDNN once, fuses
    convolutions with the ReLU after them and turns the instance norms, residual additions and
    concatenations into generated loops. The first call at each input size compiles (minutes on 2
    cores; needs a C++ compiler); later calls at that size reuse it, so it pays off when many images
    of one size are rendered. The outputs equal the eager model's to float rounding.
    """
    return torch.compile(model, options={"freezing": True})


def model_precision(model: nn.Module) -> str:
    """``"fp32"`` or ``"bf16"``: the dtype of a prepared model's weights (fp32 for a model without any)."""
    parameter = next(model.parameters(), None)
    return "bf16" if parameter is not None and parameter.dtype == torch.bfloat16 else "fp32"


def _network_input(model: nn.Module, image: torch.Tensor, channels_last: bool, focus, aperture, subject=None) -> tuple[torch.Tensor, dict]:
    """``image`` in the model's dtype and memory format, and the controls given (the rest: defaults)."""
    image = image.to(DTYPES[model_precision(model)])
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    return image, {name: value for name, value in (("focus", focus), ("aperture", aperture), ("subject", subject)) if value is not None}


def run_generator(model: nn.Module, image: torch.Tensor, channels_last: bool = True,
                  focus: torch.Tensor | None = None, aperture: torch.Tensor | None = None,
                  subject: torch.Tensor | None = None) -> torch.Tensor:
    """The final bokeh image of a (prepared) generator for ``image``, under ``torch.inference_mode``.

    The network computes in its weights' dtype (:func:`model_precision`): ``image`` is cast to it
    and the result comes back as float32.

    Args:
        model: a :class:`~bokeh.models.glassnet.GlassNet`, ideally from :func:`prepare_for_inference`.
        image: the sharp input.
        channels_last: feed the network an NHWC copy of ``image`` (match ``prepare_for_inference``).
        focus, aperture, subject: ``(B, 2)`` / ``(B, 1)`` / ``(B, 1, H, W)`` controls for a model that
            takes them (checked values, e.g. from :func:`bokeh.runtimes.base.control_inputs`); ``None``:
            the model's defaults.

    Shape:
        image: ``(B, 3, H, W)`` in [-1, 1], H and W multiples of 8. Returns ``(B, 3, H, W)`` float32
        in [-1, 1], contiguous (NCHW); an inference tensor (no autograd).
    """
    with torch.inference_mode():
        image, controls = _network_input(model, image, channels_last, focus, aperture, subject)
        bokeh, _rough = model(image, **controls)
        return bokeh.to(torch.float32).contiguous()


def run_generator_layers(model: nn.Module, image: torch.Tensor, channels_last: bool = True,
                         focus: torch.Tensor | None = None, aperture: torch.Tensor | None = None,
                         subject: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every output of a (prepared) generator by name (its ``outputs``, an
    :class:`~bokeh.models.controls.OutputContract`): as :func:`run_generator`, plus, for a model with
    a matte, the matte and the defocus layer of ``GlassNet.layers`` (which runs eagerly, also for a
    model from :func:`compile_for_inference`).

    Shape:
        image: ``(B, 3, H, W)`` in [-1, 1]. Returns ``{"image": (B, 3, H, W)}`` and for a model with a
        matte ``"matte": (B, 1, H, W)`` in [0, 1] and ``"background": (B, 3, H, W)`` in [-1, 1]:
        float32, contiguous, inference tensors.
    """
    if not getattr(model, "outputs", OutputContract()).matte:
        return {"image": run_generator(model, image, channels_last, focus, aperture, subject)}
    with torch.inference_mode():
        image, controls = _network_input(model, image, channels_last, focus, aperture, subject)
        layers = model.layers(image, **controls)
        values = {"image": layers.image, "matte": layers.matte, "background": layers.background}
        return {name: value.to(torch.float32).contiguous() for name, value in values.items()}
