"""Train BGGAN: ``python -m bokeh.train stage=pretrain`` (or ``stage=finetune init_from=...``).

Thin entry point: compose the Hydra config (``conf/train.yaml``), build the datamodule, the
LightningModule and the trainer, and fit. Works from any working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from bokeh.checkpoint import CheckpointError, generator_state, read_checkpoint
from bokeh.lit import BokehGAN

CONF_DIR = Path(os.environ.get("BOKEH_CONF_DIR", Path(__file__).resolve().parents[2] / "conf"))


def plain(node) -> dict:
    """A Hydra sub-config as a plain dict of primitives (what checkpoints may hold)."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def build_module(cfg: DictConfig) -> BokehGAN:
    """The LightningModule for ``cfg``: sub-configs reach it as plain dicts."""
    return BokehGAN(
        generator=plain(cfg.model),
        stage=cfg.stage,
        loss=plain(cfg.loss),
        optim=plain(cfg.optim),
        critic=plain(cfg.critic),
        max_bad_steps=cfg.max_bad_steps,
    )


def init_generator_from(module: BokehGAN, path: str) -> None:
    """Copy the generator weights (only) from a checkpoint of an earlier stage, strictly."""
    kwargs, state = generator_state(read_checkpoint(path), path)
    if kwargs != module.hparams.generator:
        raise CheckpointError(
            f"init_from={path} holds a generator built with {kwargs}, but this run's model config is "
            f"{module.hparams.generator}: use the same model settings as the pretrain run"
        )
    module.generator.load_state_dict(state, strict=True)


def check_output_dir(path: str | Path, min_free_mib: int = 200) -> Path:
    """Create ``path`` and prove it is writable with room for checkpoints, before any training."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise OSError(f"output folder {path} is not writable ({error.strerror}); choose another with hydra.run.dir=...") from error
    free_mib = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize // 2**20
    if free_mib < min_free_mib:
        raise OSError(f"only {free_mib} MiB free under {path}; checkpoints need at least {min_free_mib} MiB: free space or pick another hydra.run.dir")
    return path


def require_all_values(cfg: DictConfig) -> None:
    """Fail now, naming the key, if any mandatory value (``???``) was not given."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(
            f"missing required setting(s) {', '.join(missing)}: give them on the command line, "
            f"e.g. python -m bokeh.train {missing[0]}=..."
        )


def run(cfg: DictConfig) -> pl.Trainer:
    """Fit the model described by ``cfg``; return the trainer (its ``checkpoint_callback`` knows the files)."""
    require_all_values(cfg)
    check_output_dir(cfg.output_dir, cfg.min_free_mib)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(cfg)
    if cfg.get("init_from") and not cfg.get("ckpt_path"):
        init_generator_from(module, cfg.init_from)
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()] if cfg.get("callbacks") else []
    logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return trainer


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    trainer = run(cfg)
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and trainer.is_global_zero:
        print(f"checkpoints: last={checkpoint.last_model_path or '-'} best={checkpoint.best_model_path or '-'}")


if __name__ == "__main__":
    main()
