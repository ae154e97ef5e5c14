"""Faults a new user meets (issue 21), each a kind: colour profiles, one odd file, overwrites,
tracebacks where one line is promised, scoring without training data, what is left out.

CLI cases run ``python -m bokeh.<cli>`` as a subprocess, as a user does; the rest call the code.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from bokeh.images import ImageError, read_rgb, write_image
from test_render import gradient_photo, write_tiny_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def cli(module: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


# ----------------------------------------------------------------------------- 1. colour profiles
D65 = (0.3127, 0.3290)
ADOBE_RGB = {"primaries": ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), "gamma": 563 / 256}  # 2.19921875
DISPLAY_P3 = {"primaries": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "gamma": 2.2}
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
D50_XYZ = np.array([0.9642, 1.0, 0.8249])


def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """The 3 x 3 matrix from linear RGB to XYZ (white Y = 1) of a set of primaries."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    return xyz * np.linalg.solve(xyz, w)


def icc_profile(primaries, gamma: float, name: str) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile (what Adobe RGB and friends are), built here so the
    tests need no profile file from the system."""
    white = np.array([D65[0] / D65[1], 1.0, (1 - sum(D65)) / D65[1]])
    adapt = np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ D50_XYZ) / (BRADFORD @ white)) @ BRADFORD
    colorants = adapt @ rgb_to_xyz(primaries)  # columns: R, G, B in D50
    s15 = lambda v: struct.pack(">i", int(round(v * 65536)))  # noqa: E731
    xyz_tag = lambda v: b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)  # noqa: E731
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"
    text = name.encode() + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", xyz_tag(D50_XYZ)), (b"rXYZ", xyz_tag(colorants[:, 0])), (b"gXYZ", xyz_tag(colorants[:, 1])),
            (b"bXYZ", xyz_tag(colorants[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0no copyright\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
              + b"\0" * 24 + b"\0" * 4 + b"".join(s15(c) for c in D50_XYZ) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def expected_srgb(values: np.ndarray, space: dict) -> np.ndarray:
    """``values`` (uint8 in ``space``) in sRGB by the textbook formulas (not by the code under test)."""
    linear = (values / 255.0) ** space["gamma"]
    srgb_linear = linear @ (np.linalg.inv(rgb_to_xyz(SRGB_PRIMARIES)) @ rgb_to_xyz(space["primaries"])).T
    srgb_linear = np.clip(srgb_linear, 0, 1)
    encoded = np.where(srgb_linear <= 0.0031308, 12.92 * srgb_linear, 1.055 * srgb_linear ** (1 / 2.4) - 0.055)
    return encoded * 255.0


def patches() -> np.ndarray:
    """A 32 x 64 photo of four colour patches inside both gamuts, far from sRGB's values once converted."""
    colours = np.array([[170, 80, 60], [60, 150, 90], [70, 90, 170], [128, 128, 128]], np.uint8)
    return np.repeat(np.repeat(colours[None], 32, axis=0), 16, axis=1)


@pytest.mark.parametrize("space, suffix", [(ADOBE_RGB, ".png"), (DISPLAY_P3, ".webp"), (ADOBE_RGB, ".tif")])
def test_a_photo_with_a_wide_gamut_profile_is_read_in_srgb(tmp_path, space, suffix):
    raw = patches()
    path = tmp_path / f"photo{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(raw).save(path, icc_profile=icc_profile(space["primaries"], space["gamma"], "wide"), **options)
    expected = expected_srgb(raw.astype(np.float64), space)
    assert np.abs(expected - raw).max() > 20, "the test colours must change when converted"
    assert np.abs(read_rgb(path).astype(np.float64) - expected).max() <= 2.5


def test_a_cmyk_jpeg_with_its_profile_is_read_in_rgb(tmp_path):
    # CMYK with an embedded profile whose colour space is not the pixels' is one line, not wrong colours
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, icc_profile=icc_profile(SRGB_PRIMARIES, 2.2, "rgb"))
    with pytest.raises(ImageError, match="profile is for RGB but the pixels are CMYK"):
        read_rgb(path)


def test_render_converts_an_adobe_rgb_photo_and_tags_the_output_srgb(tiny_ckpt, tmp_path):
    raw = patches()
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(raw).save(folder / "adobe.png", icc_profile=icc_profile(*ADOBE_RGB.values(), "Adobe RGB (1998)"))
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "--side-by-side", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out / "adobe.png") as written:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
        left = np.asarray(written.convert("RGB"), np.float64)[:, :64]
    assert profile.profile.profile_description.startswith("sRGB")
    assert np.abs(left - expected_srgb(raw.astype(np.float64), ADOBE_RGB)).max() <= 2.5, "the unchanged half keeps its colours"


# ----------------------------------------------------------------------------- 2 + 6. one odd file; what is left out
def bad_exif_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF block holds a DateTime tag stored as a float: Pillow fails re-encoding it."""
    entries = [(0x0112, 3, 1, b"\x00\x06\x00\x00"), (0x0132, 11, 1, b"\x7f\x80\x00\x00")]
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">H", len(entries))
    tiff += b"".join(struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in entries) + b"\0" * 4
    Image.fromarray(gradient_photo(16, 24)).save(path, exif=b"Exif\x00\x00" + tiff)
    return path


def test_one_odd_file_is_named_and_the_rest_of_the_folder_rendered(tiny_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(gradient_photo(16, 24)).save(folder / "a_good.png")
    bad_exif_jpeg(folder / "b_exif.jpg")
    Image.fromarray(gradient_photo(8, 8200)).save(folder / "c_wide.webp", lossless=True)  # side by side: 16,400 px
    long_name = "d" * 240 + ".png"  # a legal name (244 bytes): its temporary name must fit too
    Image.fromarray(gradient_photo(16, 24)).save(folder / long_name)
    (folder / "e_dangling.jpg").symlink_to(folder / "missing.jpg")
    (folder / "f_loop.jpg").symlink_to(folder / "f_loop.jpg")
    os.mkfifo(folder / "g_fifo.jpg")
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "side_by_side=true", cwd=tmp_path, timeout=120)
    err = result.stderr
    assert result.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["a_good.png", long_name]
    for name, why in [("b_exif.jpg", "malformed EXIF"), ("c_wide.webp", "16,383 px"), ("e_dangling.jpg", "broken symbolic link"),
                      ("f_loop.jpg", "symbolic link loop"), ("g_fifo.jpg", "FIFO")]:
        assert any(name in line and why in line for line in err.splitlines()), (name, err[-3000:])


def test_an_unreadable_photo_is_called_unreadable_not_corrupt(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.fromarray(gradient_photo(16, 16)).save(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", refuse)  # root reads chmod 000 files, so refuse as the OS would
    with pytest.raises(ImageError, match="permission denied") as raised:
        read_rgb(path)
    assert "corrupt" not in str(raised.value)


def test_a_bad_pair_in_training_data_is_skipped_with_its_reason(tmp_path):
    from bokeh.data.pairs import BadPairWarning, Pair, PairDataset

    good = [tmp_path / "g_in.png", tmp_path / "g_out.png"]
    for path in good:
        Image.fromarray(gradient_photo(32, 32)).save(path)
    bad = bad_exif_jpeg(tmp_path / "bad_in.jpg")
    dataset = PairDataset([Pair("bad", bad, good[1]), Pair("good", *good)], crop=(8, 8))
    with pytest.warns(BadPairWarning, match="malformed EXIF"):
        sample = dataset[0]
    assert sample["name"] == "good" and "bad" in dataset.skipped


def test_long_file_names_are_written_atomically(tmp_path):
    name = "é" * 125 + ".png"  # 254 bytes
    assert len(os.fsencode(name)) == 254
    write_image(tmp_path / name, gradient_photo(8, 8))
    from bokeh.checkpoint_io import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / ("c" * 250 + ".ckpt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "c" * 250 + ".ckpt"])


# ----------------------------------------------------------------------------- 3. overwrite
def test_render_never_replaces_an_unrelated_file_without_overwrite(tiny_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir(), out.mkdir()
    Image.fromarray(gradient_photo(16, 24)).save(folder / "IMG_0001.png")
    (out / "IMG_0001.png").write_bytes(b"another photo")
    refused = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", cwd=tmp_path)
    assert refused.returncode == 2 and "overwrite=true" in refused.stderr and "IMG_0001.png" in refused.stderr
    assert (out / "IMG_0001.png").read_bytes() == b"another photo"
    replaced = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "overwrite=true", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert read_rgb(out / "IMG_0001.png").shape == (16, 24, 3)


def test_demo_and_export_refuse_to_replace_files_without_overwrite(tmp_path, capsys):
    from bokeh import demo
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bokeh.export.pipeline import ExportConfigError, settings_from

    def compose_export(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf" / "export"), version_base="1.3"):
            return compose("tflite", overrides=list(overrides))

    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit) as exited:
        demo.main([f"out={tmp_path}", "tflite=false", "reference=false"])
    assert exited.value.code == 2 and "overwrite=true" in capsys.readouterr().err
    assert (tmp_path / "metrics.json").read_text() == "{}"
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(ExportConfigError, match="overwrite=true"):
        settings_from(compose_export(f"ckpt={tmp_path / 'x.ckpt'}", f"out={tmp_path}"))
    assert settings_from(compose_export(f"ckpt={tmp_path / 'x.ckpt'}", f"out={tmp_path}", "overwrite=true")).out == tmp_path


# ----------------------------------------------------------------------------- 4. one line, not a traceback
def test_a_checkpoint_write_that_fails_mid_file_is_one_sentence_and_keeps_the_previous(tmp_path):
    from bokeh.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError

    path = tmp_path / "last.ckpt"
    io_ = AtomicCheckpointIO()
    io_.save_checkpoint({"state_dict": {"w": torch.zeros(4)}}, path)
    before = path.read_bytes()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))  # writes past 4 KiB fail, as on a full disk
    try:
        with pytest.raises(CheckpointWriteError, match="could not write checkpoint .*the previous last.ckpt is unchanged"):
            io_.save_checkpoint({"state_dict": {"w": torch.randn(100_000)}}, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


@pytest.mark.parametrize("suffix, content", [(".onnx", b"\x08\x07\x12\x04trun"), (".tflite", b"not a flatbuffer at all")])
def test_a_truncated_model_file_is_one_line_and_exit_2(tmp_path, suffix, content):
    Image.fromarray(gradient_photo(16, 16)).save(tmp_path / "p.png")
    (tmp_path / f"model{suffix}").write_bytes(content)
    result = cli("bokeh.render", f"input={tmp_path / 'p.png'}", f"ckpt={tmp_path / f'model{suffix}'}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"model{suffix} is not a loadable" in result.stderr


def test_a_wrong_data_root_is_one_line_before_anything_is_built(tmp_path):
    result = cli("bokeh.train", "data=ebb", f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Params" not in result.stdout  # no model summary either
    assert "nowhere does not exist" in result.stderr


@pytest.mark.parametrize("option, message", [
    ("photos=foo", "unknown photo foo"), ("minutes=abc", "minutes=abc: give a number of minutes"), ("minutes=-1", "above 0"),
    ("tflite=maybe", "tflite=maybe: use true or false"), ("reference=perhaps", "use true or false"),
    ("overwrite=sure", "use true or false"), ("data.no_such_key=1", "no_such_key"),
])
def test_every_demo_option_is_checked_before_any_work(option, message, tmp_path, capsys):
    from bokeh import demo

    with pytest.raises(SystemExit) as exited:
        demo.main([f"out={tmp_path / 'demo'}", option])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "demo").exists(), "nothing was written"


def test_demo_minutes_above_a_day_are_not_wrapped(tmp_path):
    from bokeh import demo

    assert demo.demo_config(tmp_path, 1500, []).trainer.max_time == "01:01:00:00"
    assert demo.demo_config(tmp_path, 0.5, []).trainer.max_time == "00:00:00:30"


def test_demo_photos_is_one_line_through_the_cli(tmp_path):
    result = cli("bokeh.demo", "photos=foo", f"out={tmp_path / 'demo'}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "unknown photo foo" in result.stderr


# ----------------------------------------------------------------------------- 5. scoring needs no training data
def test_evaluate_scores_a_folder_of_pairs_without_training_pairs(tiny_ckpt, tmp_path):
    for side in ("original", "bokeh"):
        (tmp_path / "pairs" / side).mkdir(parents=True)
        for name in ("beach", "park"):  # small, not numbered: nothing fits the 1024 x 1408 training crop
            Image.fromarray(gradient_photo(64, 96, seed=len(name))).save(tmp_path / "pairs" / side / f"{name}.jpg")
    result = cli("bokeh.evaluate", f"ckpt={tiny_ckpt}", "data=ebb", f"data.root={tmp_path / 'pairs'}", f"out={tmp_path / 'r.json'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    assert json.loads((tmp_path / "r.json").read_text())["model"]["images"] == 2
