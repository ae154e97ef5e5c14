"""Training sets mixed from synthetic scenes and folders of photo pairs: the mix drawn is the one the
config states (photo_share, photo_weights), whatever the folders' sizes; seeded, resumable, logged."""

from __future__ import annotations

import csv
import logging
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl

from bokeh.data.datamodules import SyntheticDataModule
from bokeh.data.mix import Mix, Source, source_names
from bokeh.data.sampling import LogDataMix, ResumableSampler
from bokeh.data.synthesize import write_dataset

DRAWS = 20_000  # binomial noise of a share p over this many draws: sqrt(p (1 - p) / DRAWS) <= 0.0036


def mixed(tmp_path, folders: dict[str, int], **overrides) -> SyntheticDataModule:
    """A synthetic set of 4 training scenes plus one folder of pairs (with meta.json and blur-radius
    maps, as bokeh.data.photo_pairs writes them) per ``folders`` entry (name -> pairs), set up for fitting."""
    for k, (name, count) in enumerate(folders.items()):
        if not (tmp_path / name).exists():
            write_dataset(tmp_path / name, n=count, size=(48, 64), seed=10 + k)
    settings = dict(n=6, size=(48, 64), val_count=2, crop_size=(16, 24), batch_size=2, cache_dir=str(tmp_path / "cache"),
                    photo_pairs=[str(tmp_path / name) for name in folders])
    module = SyntheticDataModule(**{**settings, **overrides})
    module.setup("fit")
    return module


def realised(module: SyntheticDataModule, epoch: int = 0) -> dict[str, float]:
    """The share of each source among the draws of ``epoch`` of the module's training loader."""
    counts = module.mix.counts(module.train_dataloader().sampler.epoch_indices(epoch))
    return {name: count / sum(counts.values()) for name, count in counts.items()}


def test_photo_weights_1_to_10_draw_1_to_10_when_both_folders_exceed_their_share(tmp_path):
    """Issue 32.6: each folder was repeated, never subsampled, so weights [1, 10] gave 1:1."""
    module = mixed(tmp_path, {"a": 12, "b": 12}, photo_weights=[1, 10], photo_share=0.5, epoch_size=DRAWS)
    shares = realised(module)
    assert shares["b"] / shares["a"] == pytest.approx(10, rel=0.1)
    assert shares["synthetic"] == pytest.approx(0.5, abs=0.015)
    assert [(s.name, s.pairs, round(s.share, 4)) for s in module.mix.sources] == [
        ("synthetic", 4, 0.5), ("a", 12, round(0.5 / 11, 4)), ("b", 12, round(5 / 11, 4))]
    assert len(module.train_set) == 4 + 12 + 12, "every pair once in the set: sampling makes the mix"


def test_photo_share_0_2_draws_a_fifth_photos_from_a_folder_larger_than_its_share(tmp_path):
    """Issue 32.6: a share of 0.2 gave 0.67 (the whole folder beside 4 scenes)."""
    module = mixed(tmp_path, {"photos": 16}, photo_share=0.2, epoch_size=DRAWS)
    assert realised(module)["photos"] == pytest.approx(0.2, abs=0.015)
    assert realised(module, epoch=3)["photos"] == pytest.approx(0.2, abs=0.015)


def test_the_epoch_is_stated_and_the_default_draws_each_scene_about_once(tmp_path):
    module = mixed(tmp_path, {"photos": 16}, photo_share=0.5)
    assert module.mix.epoch_size == 8  # 4 synthetic training pairs / (1 - 0.5)
    loader = module.train_dataloader()
    assert len(loader.sampler) == 8 and len(loader) == 4  # batches of 2
    assert sum(len(batch["name"]) for batch in loader) == 8
    given = mixed(tmp_path, {"photos": 16}, epoch_size=30)
    assert len(given.train_dataloader().sampler) == 30


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "abc", float("inf")])
def test_a_bad_epoch_size_is_refused_by_name(tmp_path, bad):
    with pytest.raises(ValueError, match="data.epoch_size must be a whole number"):
        SyntheticDataModule(n=6, size=(48, 64), val_count=2, crop_size=(16, 24), cache_dir=str(tmp_path), epoch_size=bad)


def test_without_photo_pairs_an_epoch_is_every_pair_once(tmp_path):
    module = SyntheticDataModule(n=6, size=(48, 64), val_count=2, crop_size=(16, 24), batch_size=1, cache_dir=str(tmp_path), epoch_size=50)
    module.setup("fit")
    assert module.mix is None
    assert sorted(i for i, _ in module.train_dataloader().sampler) == [0, 1, 2, 3]


def test_same_seed_same_order_another_seed_another(tmp_path):
    def keys(module, epoch):
        sampler = module.train_dataloader().sampler
        sampler.set_epoch(epoch)
        return list(sampler)

    first = mixed(tmp_path, {"photos": 16}, epoch_size=40, seed=4)
    again = mixed(tmp_path, {"photos": 16}, epoch_size=40, seed=4)
    other = mixed(tmp_path, {"photos": 16}, epoch_size=40, seed=5)
    assert keys(first, 0) == keys(again, 0) and keys(first, 1) == keys(again, 1)
    assert keys(first, 0) != keys(first, 1), "each epoch draws anew"
    assert [i for i, _ in keys(first, 0)] != [i for i, _ in keys(other, 0)]
    batches = [[b["name"] for b in m.train_dataloader()] for m in (first, again)]
    assert batches[0] == batches[1]


def test_an_item_drawn_twice_gets_two_crops():
    sampler = ResumableSampler(range(3), seed=1, weights=[1, 1, 1], num_samples=30)
    drawn = list(sampler)
    assert len(drawn) == 30 and len({i for i, _ in drawn}) == 3
    assert len({seed for _, seed in drawn}) == 30


def test_ranks_split_the_weighted_draws_without_overlap():
    weights = [1.0] * 5 + [4.0] * 5
    one = ResumableSampler(range(10), seed=2, weights=weights, num_samples=41)
    ranks = [ResumableSampler(range(10), seed=2, num_replicas=2, rank=r, weights=weights, num_samples=41) for r in range(2)]
    shares = [[i for i, _ in r] for r in ranks]
    assert len(shares[0]) == len(shares[1]) == 20  # 41 draws, drop_last: 40 split over two ranks
    assert [i for pair in zip(*shares) for i in pair] == one.epoch_indices()[:40]
    seeds = [s for r in ranks for _, s in r]
    assert len(set(seeds)) == 40, "no draw served twice"


def test_a_weighted_loader_resumed_mid_epoch_serves_the_rest(tmp_path):
    module = mixed(tmp_path, {"photos": 16}, epoch_size=12)
    loader = module.train_dataloader()
    full = [b["name"] for b in loader]
    served = iter(loader)
    next(served), next(served)
    state = loader.state_dict()
    resumed = module.train_dataloader()
    resumed.load_state_dict(state)
    assert [b["name"] for b in resumed] == full[2:]


@pytest.mark.parametrize(
    ("sources", "message"),
    [((), "at least one source"), ((Source("a", "x", 0, 1.0),), "no training pairs"),
     ((Source("a", "x", 2, 0.5),), "sum to 1"), ((Source("a", "x", 2, 1.5), Source("b", "y", 1, -0.5)), "outside")],
)
def test_a_mix_that_cannot_be_drawn_is_refused(sources, message):
    with pytest.raises(ValueError, match=message):
        Mix(sources, 10)


def test_mix_weights_and_counts():
    mix = Mix((Source("synthetic", "s", 2, 0.5), Source("p", "q", 4, 0.5)), 8)
    assert mix.weights() == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125] and mix.size == 6
    assert mix.counts([0, 5, 5, 1, 2]) == {"synthetic": 2, "p": 3}
    assert mix.counts([]) == {"synthetic": 0, "p": 0}
    with pytest.raises(IndexError):
        mix.counts([6])


def test_source_names_are_the_folder_names_made_unique():
    assert source_names(["outputs/pairs_bsds", "outputs/pairs_sod/"]) == ["pairs_bsds", "pairs_sod"]
    assert source_names(["a/set", "b/set", "c/synthetic", "d/x y"]) == ["set_0", "set_1", "synthetic_2", "x_y"]


def test_training_logs_the_mix_it_planned_and_the_one_it_drew(tmp_path, caplog):
    from pytorch_lightning.loggers import CSVLogger

    from bokeh.lit import BokehGAN

    module = mixed(tmp_path, {"a": 6, "b": 3}, photo_weights=[1, 3], photo_share=0.6, epoch_size=10)
    drawn = module.mix.counts(module.train_dataloader().sampler.epoch_indices(0))
    trainer = pl.Trainer(accelerator="cpu", logger=CSVLogger(tmp_path / "logs", name="", version=""), enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, max_epochs=1, limit_val_batches=0,
                         callbacks=[LogDataMix()])
    with caplog.at_level(logging.INFO, logger="bokeh.data.sampling"):
        trainer.fit(BokehGAN(generator={"width1": 4, "width2": 4, "blocks": 1}), datamodule=module)
    assert "synthetic" in caplog.text and "10 samples per epoch" in caplog.text
    assert "a (" in caplog.text and "6 pairs, share 0.150" in caplog.text and "3 pairs, share 0.450" in caplog.text
    assert "4 pairs, share 0.400" in caplog.text
    line = "data mix drawn for epoch 0: " + ", ".join(f"{n} {c} ({c / 10:.3f})" for n, c in drawn.items())
    assert line in caplog.text
    rows = list(csv.DictReader(open(tmp_path / "logs" / "metrics.csv")))
    logged = {name: float(next(r[f"data/mix/{name}"] for r in rows if r.get(f"data/mix/{name}"))) for name in drawn}
    assert logged == pytest.approx({n: c / 10 for n, c in drawn.items()})


def test_a_single_source_logs_no_mix(tmp_path, caplog):
    module = SyntheticDataModule(n=6, size=(48, 64), val_count=2, crop_size=(16, 24), batch_size=2, cache_dir=str(tmp_path))
    module.setup("fit")
    trainer = SimpleNamespace(datamodule=module, train_dataloader=module.train_dataloader(), is_global_zero=True, current_epoch=0)
    with caplog.at_level(logging.INFO, logger="bokeh.data.sampling"):
        LogDataMix().on_train_start(trainer, None)
        LogDataMix().on_train_epoch_start(trainer, None)
    assert "data mix" not in caplog.text


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]])
@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_epoch_indices_are_what_the_ranks_serve(weights, replicas):
    options = {} if weights is None else {"weights": weights, "num_samples": 20}
    ranks = [ResumableSampler(range(7), seed=9, num_replicas=replicas, rank=r, **options) for r in range(replicas)]
    for sampler in ranks:
        sampler.set_epoch(2)
    served = [[i for i, _ in sampler] for sampler in ranks]
    everything = ranks[0].epoch_indices()
    assert everything == ranks[0].epoch_indices(2) != ranks[0].epoch_indices(3)
    assert [everything[r::replicas] for r in range(replicas)] == served


@pytest.mark.parametrize("experiment", [None, "reference", "reference_v2", "demo"])
def test_every_training_recipe_logs_its_mix(tmp_path, experiment):
    """bokeh.train's callbacks (conf/callbacks/default.yaml) include LogDataMix in every experiment."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from bokeh.config import CONF_DIR
    from bokeh.train import build_callbacks

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"hydra.run.dir={tmp_path}"] + ([f"experiment={experiment}"] if experiment else []),
                          return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.set_struct(cfg, False)
    cfg.output_dir = str(tmp_path)
    assert sum(isinstance(c, LogDataMix) for c in build_callbacks(cfg)) == 1
