"""Honest metrics: the baselines, the in-focus / defocus split, and what the table says without depth."""

from __future__ import annotations

import math

import pytest
import torch

from bokeh.data.datamodules import SyntheticDataModule
from bokeh.evaluate.synthetic import SPLIT_ABSENT, baselines, evaluate_generator, format_table, oracle_blur, score, validation_samples
from bokeh.models.glassnet import GlassNet
import json
from PIL import Image
from test_render import gradient_photo
from user_cli import cli


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    dm = SyntheticDataModule(n=6, size=(160, 240), val_count=3, crop_size=(32, 48), cache_dir=str(cache), seed=2)
    return validation_samples(dm)


def test_identity_is_near_perfect_in_focus_and_the_blurs_win_where_defocused(samples):
    results = baselines(samples)
    identity, blur, oracle = results["identity"], results["gaussian blur"], results["oracle blur"]
    assert {"psnr_in_focus", "psnr_defocus"} <= identity.keys() and identity["images_in_focus"] >= 1
    assert identity["psnr_in_focus"] > identity["psnr"] + 5  # in focus, the target is nearly the input
    assert blur["psnr_defocus"] > identity["psnr_defocus"] and blur["psnr_in_focus"] < identity["psnr_in_focus"]
    # the oracle sees the target: it beats the best single sigma overall and keeps the focus nearly sharp
    assert oracle["psnr"] > blur["psnr"] and oracle["psnr_in_focus"] > blur["psnr_in_focus"]


def test_the_oracle_with_one_pixel_regions_is_at_least_as_good_as_the_9x9_one(samples):
    def mean_psnr(region):
        return score(lambda image, target: oracle_blur(image, target, region), samples, sees_target=True)["psnr"]

    assert mean_psnr(1) >= mean_psnr(9) - 1e-6


def test_the_split_is_absent_and_said_so_without_maps(samples):
    plain = [{k: v for k, v in s.items() if k != "coc"} for s in samples]
    results = baselines(plain, oracle_region=None)
    assert "psnr_in_focus" not in results["identity"]
    assert SPLIT_ABSENT in format_table(results)
    with pytest.raises(ValueError, match="blur-radius map"):
        score(lambda image: image, plain[:1] + samples[1:])  # mixed data is refused


def test_model_row_and_table_name_every_set(samples):
    torch.manual_seed(0)
    results = evaluate_generator(GlassNet(4, 4, 1, global_residual=True), samples)
    assert list(results) == ["model", "identity", "gaussian blur", "oracle blur"]
    assert all(math.isfinite(results["model"][k]) for k in ("psnr", "psnr_in_focus", "psnr_defocus", "ssim_gaussian"))
    table = format_table(results)
    assert "in focus" in table and "defocus" in table and "9x9 regions" in table and "sigma" in table


# ----------------------------------------------------------------------------- scoring needs no training data, and writes only out= (issues 21, 25)
def test_evaluate_scores_a_folder_of_pairs_without_training_pairs(tiny_ckpt, tmp_path):
    for side in ("original", "bokeh"):
        (tmp_path / "pairs" / side).mkdir(parents=True)
        for name in ("beach", "park"):  # small, not numbered: nothing fits the 1024 x 1408 training crop
            Image.fromarray(gradient_photo(64, 96, seed=len(name))).save(tmp_path / "pairs" / side / f"{name}.jpg")
    result = cli("bokeh.evaluate", f"ckpt={tiny_ckpt}", "data=ebb", f"data.root={tmp_path / 'pairs'}", f"out={tmp_path / 'r.json'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    assert json.loads((tmp_path / "r.json").read_text())["model"]["images"] == 2


def test_evaluate_writes_nothing_into_the_working_folder(tiny_ckpt, tmp_path, monkeypatch, capsys):
    from bokeh.evaluate import __main__ as evaluate

    work = tmp_path / "read-only"
    work.mkdir()
    monkeypatch.chdir(work)  # root ignores chmod: prove instead that nothing is written here
    evaluate.main([f"ckpt={tiny_ckpt}", "experiment=demo", "data.n=6", "data.val_count=2", "data.size=[32,48]", "data.crop_size=[24,24]", f"out={tmp_path / 'r.json'}"])
    assert list(work.iterdir()) == [] and json.loads((tmp_path / "r.json").read_text())["model"]
