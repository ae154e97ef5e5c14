"""Every config of every group composes; the composed pretrain config builds its objects."""

from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from bokeh.train import CONF_DIR, build_module, build_trainer

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in {"export"})


def compose_train(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def all_choices():
    for group in GROUPS:
        for option in sorted((CONF_DIR / group).glob("*.yaml")):
            yield group, option.stem


@pytest.mark.parametrize(("group", "option"), list(all_choices()))
def test_every_config_composes(group, option, tmp_path):
    overrides = [f"{group}={option}", f"hydra.run.dir={tmp_path}"]
    if option in {"finetune", "demo_finetune"}:
        overrides.append("init_from=some.ckpt")
    if option in {"ebb", "paper"}:
        overrides.append("data.root=/data/ebb")
    cfg = compose_train(overrides)
    OmegaConf.resolve(cfg.trainer)  # interpolations resolve
    assert cfg.hydra.runtime.choices[group] == option


def test_groups_cover_the_training_recipe():
    assert {"data", "model", "critic", "loss", "optim", "trainer", "logger", "callbacks", "stage", "experiment"} <= set(GROUPS)


def test_finetune_without_init_from_fails_at_compose_time(tmp_path):
    cfg = compose_train(["stage=finetune", f"hydra.run.dir={tmp_path}"])
    with pytest.raises(MissingMandatoryValue, match="init_from"):
        _ = cfg.init_from


def test_ebb_without_root_fails_at_compose_time(tmp_path):
    cfg = compose_train(["data=ebb", f"hydra.run.dir={tmp_path}"])
    with pytest.raises(MissingMandatoryValue, match="root"):
        OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)


def test_pretrain_instantiates_datamodule_module_and_trainer(tmp_path):
    cfg = compose_train(["stage=pretrain", f"hydra.run.dir={tmp_path}", "model.width1=4", "model.width2=4", "model.blocks=1"])
    OmegaConf.set_struct(cfg, False)
    cfg.output_dir = str(tmp_path)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg, callbacks=[], logger=False)
    assert module.hparams.stage == "pretrain" and module.critics is None
    assert module.hparams.loss["vgg"]["weight"] == 0 and module.hparams.loss["adv"] == 0
    assert hasattr(datamodule, "train_dataloader")
    assert trainer.max_epochs == cfg.trainer.max_epochs


def test_finetune_stage_switches_hybrid_loss_on(tmp_path):
    cfg = compose_train(["stage=finetune", "init_from=x.ckpt", f"hydra.run.dir={tmp_path}"])
    assert cfg.loss.vgg.weight == pytest.approx(0.1) and cfg.loss.adv == pytest.approx(1.0)
    assert cfg.loss.l1 == pytest.approx(0.5) and cfg.loss.ssim == pytest.approx(0.05)
    assert list(cfg.optim.betas) == [0.0, 0.9] and cfg.optim.lr_g == pytest.approx(1e-4)


def test_checkpoint_file_names_are_safe_on_hydra_command_lines(tmp_path):
    """A best checkpoint's name must pass through `make tflite CKPT=...` / `ckpt=...` unquoted."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose_train([f"hydra.run.dir={tmp_path}"])
    OmegaConf.set_struct(cfg, False)
    cfg.output_dir = str(tmp_path)
    checkpoint = hydra.utils.instantiate(cfg.callbacks.checkpoint)
    name = checkpoint.format_checkpoint_name({"epoch": 3, "step": 120})
    assert "=" not in Path(name).name
    OverridesParser.create().parse_overrides([f"ckpt={name}"])  # raises on a bad override


def test_progress_bar_off_leaves_the_progress_callback_out(tmp_path):
    """`trainer.enable_progress_bar=false` alone works: Lightning refuses a bar callback with it."""
    import pytorch_lightning as pl

    from bokeh.train import build_callbacks

    def bars(overrides):
        cfg = compose_train([f"hydra.run.dir={tmp_path}", *overrides])
        OmegaConf.set_struct(cfg, False)
        cfg.output_dir = str(tmp_path)
        callbacks = build_callbacks(cfg)
        build_trainer(cfg, callbacks=callbacks, logger=False)  # raises on a conflict
        return [c for c in callbacks if isinstance(c, pl.callbacks.ProgressBar)]

    assert len(bars([])) == 1
    assert bars(["trainer.enable_progress_bar=false"]) == []


def test_demo_finetune_runs_offline_with_random_vgg(tmp_path):
    """The CPU demo may finetune without the ImageNet file; the paper recipe keeps ImageNet."""
    demo = compose_train(["experiment=demo_finetune", "init_from=x.ckpt", f"hydra.run.dir={tmp_path}"])
    assert demo.stage == "finetune" and demo.model.width2 == 16  # the demo model, finetuned
    assert demo.loss.vgg.weights == "random" and demo.loss.vgg.weight == pytest.approx(0.1)
    assert list(demo.optim.betas) == [0.0, 0.9]  # WGAN-GP: the paper's Adam, not the demo pretrain's
    paper = compose_train(["experiment=paper", "stage=finetune", "init_from=x.ckpt", "data.root=/d", f"hydra.run.dir={tmp_path}"])
    assert paper.loss.vgg.weights == "imagenet"


EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
DATA_OPTIONS = sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml"))


@pytest.mark.parametrize("data", DATA_OPTIONS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_works_with_every_data_option(experiment, data, tmp_path):
    """An experiment's data settings reach only the data module they are written for
    (conf/experiment_data/<experiment>/<data>.yaml): `experiment=demo data=ebb` used to hand the
    demo's synthetic-only keys (n, size, val_count) to EBBDataModule, a TypeError."""
    from bokeh.data.datamodules import EBBDataModule, SyntheticDataModule

    overrides = [f"experiment={experiment}", f"data={data}", f"hydra.run.dir={tmp_path}", "init_from=x.ckpt"]
    cfg = compose_train(overrides + ([f"data.root={tmp_path}"] if data == "ebb" else []))
    OmegaConf.set_struct(cfg, False)
    cfg.output_dir = str(tmp_path)
    datamodule = hydra.utils.instantiate(cfg.data)  # builds without I/O; unknown keys would raise here
    assert type(datamodule) is {"ebb": EBBDataModule, "synthetic": SyntheticDataModule}[data]
    module = build_module(cfg)
    assert module.hparams.generator == OmegaConf.to_container(cfg.model)


def test_experiment_data_settings_apply_to_their_data_option_only(tmp_path):
    demo = compose_train(["experiment=demo", f"hydra.run.dir={tmp_path}"])
    assert demo.data.val_count == 16 and list(demo.data.crop_size) == [128, 192] and demo.data.batch_size == 4
    demo_ebb = compose_train(["experiment=demo", "data=ebb", "data.root=/d", f"hydra.run.dir={tmp_path}"])
    assert "n" not in demo_ebb.data and "val_count" not in demo_ebb.data
    assert list(demo_ebb.data.crop_size) == [256, 384] and demo_ebb.model.width2 == 16  # the demo model, on EBB!
    fine = compose_train(["experiment=demo_finetune", "init_from=x.ckpt", "data.n=40", f"hydra.run.dir={tmp_path}"])
    assert fine.data.val_count == 16 and fine.data.n == 40  # the demo's data, and the command line still wins
    paper = compose_train(["experiment=paper", "data.root=/d", f"hydra.run.dir={tmp_path}"])
    assert list(paper.data.crop_size) == [1024, 1408]
    assert list(compose_train(["experiment=paper", "data=synthetic", f"hydra.run.dir={tmp_path}"]).data.crop_size) == [128, 192]
