"""``make demo`` (``python -m bokeh.demo``) end to end on a tiny budget: the shipped reference model first,
then the demo's own model, both scored on the same held-out pairs with the in-focus / defocus split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from bokeh import demo
from user_cli import cli

TINY = ["data.n=10", "data.val_count=2", "data.size=[64,96]", "data.crop_size=[64,96]", "data.batch_size=2",
        "trainer.max_steps=2", "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_the_demo_shows_the_reference_model_then_trains_and_scores_its_own(tmp_path, monkeypatch, capsys):
    """Also the reference's controls picture (three apertures, two taps)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo out"  # a space, as users' folders have
    demo.main([f"out={out}", "tflite=false", "photos=astronaut", "minutes=2", *TINY])
    printed = capsys.readouterr().out
    assert printed.index("the shipped reference model") < printed.index("demo finished")
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics)[:2] == ["demo model", "reference model"]
    for row in ("demo model", "reference model", "identity", "oracle blur"):
        assert {"psnr", "psnr_in_focus", "psnr_defocus"} <= set(metrics[row]), row
    assert metrics["demo model"]["train_seconds"] > 0
    for prefix in ("reference", "demo"):
        picture = np.asarray(Image.open(out / f"{prefix}_astronaut.png"))
        assert picture.shape == (512, 1024, 3)  # input | output at the photo's size
        left, right = picture[:, :512].astype(int), picture[:, 512:].astype(int)
        assert np.abs(left - right).mean() > 0.5, prefix  # the model changed the photo
    # the reference's controls: the astronaut at three apertures tapped on her face, then on the shuttle
    grid = np.asarray(Image.open(out / "reference_controls_astronaut.png")).astype(float)
    assert grid.shape == (1024, 2048, 3)
    face = (slice(100, 160), slice(200, 260))  # her face, in each 512 x 512 tile

    def tile(row: int, column: int) -> np.ndarray:
        return grid[512 * row: 512 * (row + 1), 512 * column: 512 * (column + 1)]

    def detail(image: np.ndarray) -> float:
        region = image[face].mean(-1)
        return float(np.abs(np.diff(region, axis=0)).mean() + np.abs(np.diff(region, axis=1)).mean())

    # tapped on her face she stays sharper than when the shuttle is tapped (same aperture, f/1.8)
    assert detail(tile(0, 1)) > detail(tile(1, 1)), (detail(tile(0, 1)), detail(tile(1, 1)))
    # the subject picture: Grace Hopper (matplotlib's sample portrait), then a photo without a person, as
    # input | matte | render with subject=auto, then matte | render with subject=off
    for prefix in ("reference", "demo"):
        subject = np.asarray(Image.open(out / f"{prefix}_subject.png")).astype(float)
        assert subject.shape[1] == 5 * 512 and subject.shape[0] > 600, subject.shape
        portrait = [subject[:600, 512 * k: 512 * (k + 1)] for k in range(5)]  # (600, 512, 3) tiles
        her_face = (slice(120, 300), slice(180, 330))
        assert portrait[1][her_face].mean() > 240, prefix  # the matte used keeps her face
        assert np.abs(portrait[2][her_face] - portrait[0][her_face]).mean() < 2, prefix  # her face is the photo's own


def test_unknown_demo_options_are_refused_with_the_list_of_options():
    from bokeh.options import OptionError

    with pytest.raises(OptionError, match="unknown argument 'photo_count=3'.*photos="):
        demo.parse(["photo_count=3"])


def test_a_second_demo_and_colliding_real_pair_strips_are_refused_before_any_work(tmp_path):
    """Issue 32, items 3 and 5: the demo's fixed run folder (out/pretrain) holding an earlier run
    needs overwrite=true; two real pairs that would write one strip are refused up front."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from bokeh.images import write_image

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

    def run(*args):
        result = subprocess.run([sys.executable, "-m", "bokeh.demo", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
        return result.stderr

    out = tmp_path / "demo"
    (out / "pretrain" / ".hydra").mkdir(parents=True)
    (out / "pretrain" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    err = run(f"out={out}", "tflite=false", "reference=false")
    assert "holds an earlier run" in err and "overwrite=true" in err and "out=" in err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["pretrain", "pretrain/.hydra", "pretrain/.hydra/config.yaml"]
    real = tmp_path / "real"
    photo = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    for folder in ("original", "bokeh", "f1.8"):  # the same pair at f/1.8 twice: it would be scored (and drawn) twice
        write_image(real / folder / "p1.jpg", photo)
    err = run(f"out={tmp_path / 'fresh'}", "tflite=false", f"real={real}")
    assert "in both bokeh/ and f1.8/" in err, "refused when the pairs are listed, before any strip name is planned"
    assert not (tmp_path / "fresh").exists()


# ----------------------------------------------------------------------------- every option checked before any work (issue 21)
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
