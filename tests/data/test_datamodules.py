"""Both data modules from their Hydra configs; the synthetic set cached once; EBB! on synthetic pairs."""

from __future__ import annotations

import inspect
from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from bokeh.data.datamodules import EBBDataModule, SyntheticDataModule
from bokeh.data.pairs import DataLayoutError
from bokeh.data.synthesize import write_dataset

CONF = Path(__file__).resolve().parents[2] / "conf"


def data_config(name: str, overrides: list[str] = ()):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF / "data"), version_base="1.3"):
            return compose(name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize(("name", "cls"), [("synthetic", SyntheticDataModule), ("ebb", EBBDataModule)])
def test_config_keys_are_the_constructor_arguments(name, cls):
    cfg = data_config(name)
    assert cfg._target_ == f"{cls.__module__}.{cls.__name__}"
    keys = set(cfg) - {"_target_"}
    assert keys == set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert {"batch_size", "num_workers", "crop_size", "seed"} <= keys
    assert cfg.num_workers in (0, 1)


def test_ebb_config_needs_a_root_and_building_it_does_no_io(tmp_path):
    assert OmegaConf.is_missing(data_config("ebb"), "root")
    dm = hydra.utils.instantiate(data_config("ebb", [f"root={tmp_path / 'nowhere'}"]))
    assert isinstance(dm, EBBDataModule) and dm.crop_size == (1024, 1408)
    with pytest.raises(DataLayoutError, match="does not exist"):
        dm.setup("fit")


def test_synthetic_config_builds_without_touching_the_disk(tmp_path):
    dm = hydra.utils.instantiate(data_config("synthetic", [f"cache_dir={tmp_path / 'cache'}"]))
    assert isinstance(dm, SyntheticDataModule) and dm.size == (256, 384) and dm.crop_size == (128, 192)
    assert not (tmp_path / "cache").exists()


def small_synthetic(tmp_path, **overrides) -> SyntheticDataModule:
    settings = dict(n=6, size=(48, 64), val_count=2, crop_size=(16, 24), batch_size=2, cache_dir=str(tmp_path / "cache"))
    return SyntheticDataModule(**{**settings, **overrides})


def test_synthetic_set_is_written_once_split_by_count_and_reused(tmp_path):
    dm = small_synthetic(tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.folder.parent == tmp_path / "cache" and (dm.folder / "meta.json").is_file()
    assert [p.name for p in dm.train_set.pairs] == ["0", "1", "2", "3"]
    assert [p.name for p in dm.val_set.pairs] == ["4", "5"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == batch["target"].shape == (2, 3, 16, 24) and len(batch["name"]) == 2
    val = next(iter(dm.val_dataloader()))
    assert val["input"].shape == (1, 3, 48, 64) and val["size"].tolist() == [[48, 64]]
    stamp = (dm.folder / "bokeh" / "0.jpg").stat().st_mtime_ns
    again = small_synthetic(tmp_path)
    again.prepare_data()
    again.setup("fit")
    assert (again.folder / "bokeh" / "0.jpg").stat().st_mtime_ns == stamp


def test_on_the_fly_items_equal_the_cached_ones(tmp_path):
    cached = small_synthetic(tmp_path)
    fly = small_synthetic(tmp_path, on_the_fly=True, num_workers=1, cache_dir=str(tmp_path / "unused"))
    cached.setup("fit")
    fly.prepare_data()
    fly.setup("fit")
    assert not (tmp_path / "unused").exists()  # nothing written
    for a, b in zip(cached.val_set, fly.val_set):
        assert a["name"] == b["name"] and torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
        # the blur-radius map travels with validation items both ways (stored to 1/100 px)
        assert a["coc"].shape == b["coc"].shape == (1, 48, 64) and (a["coc"] - b["coc"]).abs().max() <= 0.005 + 1e-6
    batch = next(iter(fly.train_dataloader()))  # rendered in a loader worker process
    assert batch["input"].shape == (2, 3, 16, 24)


def test_a_tiny_ebb_folder_of_synthetic_pairs_loads_with_the_right_split_and_crops(tmp_path):
    root = write_dataset(tmp_path / "ebb", n=8, size=(48, 64), seed=2)
    dm = EBBDataModule(str(root), crop_size=(32, 48), train_ids=(0, 5), val_ids=(6, 7), num_workers=0, batch_size=3)
    dm.setup("fit")
    assert len(dm.train_set) == 6 and [p.name for p in dm.val_set.pairs] == ["6", "7"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (3, 3, 32, 48) and batch["target"].shape == (3, 3, 32, 48)
    assert (batch["input"] - batch["target"]).abs().mean() > 0.005  # input and target differ: bokeh
    val = list(dm.val_dataloader())
    assert [v["name"] for v in val] == [["6"], ["7"]] and all(v["input"].shape == (1, 3, 48, 64) for v in val)
    assert all(v["coc"].shape == (1, 1, 48, 64) for v in val)  # a synthetic set in the EBB! layout keeps its maps
    assert batch["coc"].shape == (3, 1, 32, 48)  # training crops carry their crop of the map


def test_pairs_without_maps_give_validation_items_without_coc(tmp_path):
    import shutil

    root = write_dataset(tmp_path / "ebb", n=4, size=(48, 64), seed=2)
    shutil.rmtree(root / "coc")  # what an EBB! folder looks like: no depth, no maps
    dm = EBBDataModule(str(root), crop_size=(32, 48), train_ids=(0, 2), val_ids=(3, 3), num_workers=0, batch_size=1)
    dm.setup("fit")
    assert "coc" not in dm.val_set[0] and dm.val_set.pairs[0].coc is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(crop_size=(20, 24)), "multiples of 8"),
        (dict(on_bad_pair="ignore"), "on_bad_pair must be"),
        (dict(val_fit="stretch"), "val_fit must be"),
        (dict(val_count=6), "val_count must be in"),
        (dict(crop_size=(64, 64)), "larger than the synthetic images' size"),
    ],
)
def test_bad_settings_are_refused_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_synthetic(tmp_path, **kwargs)


def test_an_ebb_crop_larger_than_every_image_names_the_setting(make_folder, recwarn):
    root = make_folder(["0", "1", "2"], size=(40, 56))
    dm = EBBDataModule(str(root), crop_size=(64, 64), train_ids=(0, 1), val_ids=(2, 2), num_workers=0)
    with pytest.raises(ValueError, match=r"crop_size \[64, 64\] is larger than every one of the 2 training images .*lower data.crop_size"):
        dm.setup("fit")


def test_photo_weights_must_match_the_folders(tmp_path):
    with pytest.raises(ValueError, match="one positive weight per photo_pairs folder"):
        small_synthetic(tmp_path, photo_pairs=["x", "y"], photo_weights=[1])


def test_a_missing_folder_in_a_photo_pair_list_is_named_before_training(tmp_path, make_folder):
    from omegaconf import OmegaConf

    from bokeh.train import check_data_paths

    good = make_folder(["a0"], size=(48, 64), root=tmp_path / "good")
    with pytest.raises(DataLayoutError, match="missing-set"):
        check_data_paths(OmegaConf.create({"photo_pairs": [str(good), str(tmp_path / "missing-set")]}))


def test_a_list_of_paths_reaches_hydra_as_a_list():
    from bokeh.cli import quote_path_overrides

    given = ["data.photo_pairs=[outputs/a,outputs/b]", "data.photo_pairs=runs/x=1"]
    assert quote_path_overrides(given, ["data.photo_pairs"]) == ["data.photo_pairs=[outputs/a,outputs/b]", "data.photo_pairs='runs/x=1'"]


def test_a_batch_mixing_scenes_and_photo_pairs_without_coc_keeps_the_scenes_radii(tmp_path, make_folder):
    """Photo pairs without ``coc/`` beside synthetic scenes: default_collate raised KeyError 'coc' when a
    scene came first, and dropped every scene's radii when a photo pair did."""
    from bokeh.data.pairs import collate_samples
    from bokeh.losses.reconstruction import focus_weighted_l1_loss

    photos = make_folder([f"p{k}" for k in range(6)], size=(48, 64), root=tmp_path / "photos")
    dm = small_synthetic(tmp_path, photo_pairs=[str(photos)], photo_share=0.5, batch_size=6)
    dm.prepare_data()
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    names = [name for batch in batches for name in batch["name"]]
    assert any(n.startswith("p") for n in names) and any(not n.startswith("p") for n in names), names
    for batch in batches:
        photo = torch.tensor([n.startswith("p") for n in batch["name"]])
        assert batch["coc"].shape == (len(photo), 1, 16, 24)
        assert torch.isnan(batch["coc"][photo]).all() and torch.isfinite(batch["coc"][~photo]).all()
        loss = focus_weighted_l1_loss(batch["input"], batch["target"], batch["coc"], focus_weight=2.0)
        assert torch.isfinite(loss), "unknown radii weigh 1, as in the plain L1"
    scene, pair = dm.train_set[0], {"input": torch.zeros(3, 16, 24), "name": "x"}
    scene = {key: scene[key] for key in ("input", "name", "coc")}
    for order in ([scene, pair], [pair, scene]):
        batch = collate_samples(order)
        assert batch["coc"].shape == (2, 1, 16, 24) and int(torch.isnan(batch["coc"]).flatten(1).all(1).sum()) == 1


def test_one_photo_pair_folder_twice_is_refused_also_by_another_path_to_it(tmp_path, monkeypatch):
    """issue 32, F17: ``data.photo_pairs=[a, ./a]`` (or a symbolic link to it) would draw that set with twice its weight."""
    from bokeh.data.datamodules import photo_folders
    from bokeh.data.pairs import DataLayoutError

    (tmp_path / "a").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    assert photo_folders(["a", str(tmp_path / "b")]) == ["a", str(tmp_path / "b")]
    for twice in (["a", "a"], ["a", str(tmp_path / "a")], ["a", "link"], ["a", "./a/"]):
        with pytest.raises(DataLayoutError, match=f"data.photo_pairs lists a twice.*list each folder once"):
            photo_folders(twice)
