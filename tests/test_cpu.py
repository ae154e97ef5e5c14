"""CPU capability detection: read from a cpuinfo file, never assumed."""

from pathlib import Path

from bokeh import cpu

SAPPHIRE_RAPIDS = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma\n"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_bf16_native_on_sapphire_rapids_flags(tmp_path):
    path = _file(tmp_path, SAPPHIRE_RAPIDS)
    assert cpu.native_bf16(cpu.cpu_flags(path))
    assert cpu.cpu_name(path).startswith("Intel(R) Xeon(R) Platinum")


def test_bf16_not_native_on_zen3_flags(tmp_path):
    path = _file(tmp_path, ZEN3)
    assert not cpu.native_bf16(cpu.cpu_flags(path))
    assert cpu.cpu_name(path) == "AMD EPYC 7B13"


def test_missing_cpuinfo_means_no_flags(tmp_path):
    assert cpu.cpu_flags(tmp_path / "absent") == frozenset()
    assert not cpu.native_bf16(frozenset())
    assert cpu.cpu_name(tmp_path / "absent")  # falls back to platform, never empty


def test_training_precision_auto_follows_the_detected_capability(monkeypatch):
    from bokeh.train import resolve_precision

    monkeypatch.setattr(cpu, "native_bf16", lambda flags=None: True)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(cpu, "native_bf16", lambda flags=None: False)
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"  # an explicit choice is kept
    assert resolve_precision("32-true", "cpu") == "32-true"
