"""What this machine's CPU computes natively, read at run time (never assumed from one machine).

The project's machines differ from session to session: AMD Zen 3 cores (AVX2, no bf16 arithmetic)
one time, Intel Sapphire Rapids cores (AMX-BF16 and AVX512-BF16) another. On the latter, torch's
oneDNN kernels run bf16 convolutions natively, about 3x faster than fp32 for Glass-Net
(measured by this project); elsewhere bf16 is emulated and slower than fp32. Whoever picks a
precision (training's ``precision: auto``, rendering's ``precision=auto``) asks :func:`native_bf16`.

The flags come from ``/proc/cpuinfo`` (Linux's names for CPUID bits). Where that file does not exist
(macOS, Windows) no flag is known and bf16 counts as not native.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
#: CPUID feature flags (Linux names) that mean bf16 matrix arithmetic in hardware.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The feature flags of the first processor in ``cpuinfo``; empty if the file cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):  # x86 / Arm spelling
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_name(cpuinfo: Path = CPUINFO) -> str:
    """The processor's model name (``/proc/cpuinfo``), or what ``platform`` knows of it."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True if the CPU has bf16 matrix instructions (AMX-BF16 or AVX512-BF16).

    Args:
        flags: feature flags to judge; default: this machine's (:func:`cpu_flags`).
    """
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def describe() -> dict[str, object]:
    """``{"name", "bf16_native", "bf16_flags"}`` for reports and benchmark headers."""
    flags = cpu_flags()
    return {"name": cpu_name(), "bf16_native": native_bf16(flags), "bf16_flags": sorted(f for f in BF16_FLAGS if f in flags)}
