"""Train BGGAN: ``python -m bokeh.train stage=pretrain`` (or ``stage=finetune init_from=...``).

Thin entry point: compose the Hydra config (``conf/train.yaml``), build the datamodule, the
LightningModule and the trainer, and fit. Works from any working directory.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from bokeh.checkpoint import CheckpointError, generator_source
from bokeh.models.glassnet import GlassNet
from bokeh.checkpoint_io import AtomicCheckpointIO
from bokeh.lit import BokehGAN

# Lightning 2.6 warns at every step-based checkpoint of a manually optimized module that it holds the
# weights after the optimizer step: exactly what resuming needs (they match global_step and the
# optimizer state), so the warning is noise here.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")

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
    """Copy the generator weights (only) from a checkpoint of an earlier stage, or from a shipped
    model by name (``init_from=reference``), strictly."""
    kwargs, state = generator_source(path)
    if GlassNet.settings(**kwargs) != GlassNet.settings(**module.hparams.generator):
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
        probe = path / f".write_probe.{os.getpid()}"  # one per process: DDP ranks probe at once
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise OSError(f"output folder {path} is not writable ({error.strerror}); choose another with hydra.run.dir=...") from error
    free_mib = shutil.disk_usage(path).free // 2**20
    if free_mib < min_free_mib:
        raise OSError(f"only {free_mib} MiB free under {path}; checkpoints need at least min_free_mib={min_free_mib} MiB: free space or pick another hydra.run.dir")
    return path


def check_crops_fit_critics(crop_size, module: BokehGAN) -> None:
    """Fail before training if the training crops are smaller than the deepest critic accepts."""
    if module.critics is None or crop_size is None:
        return
    need = module.critics.min_input_size
    if min(crop_size) < need:
        raise ValueError(
            f"data.crop_size {list(crop_size)} is too small for critic.depths {module.hparams.critic['depths']}: "
            f"the deepest critic needs crops of at least {need} x {need} px; raise data.crop_size or lower critic.depths"
        )


def resolve_precision(precision: str, accelerator: str = "cpu") -> str:
    """Lightning's precision for ``trainer.precision``; ``auto`` picks by the hardware.

    ``auto``: ``bf16-mixed`` on a CPU that computes bf16 natively (AMX-BF16 or AVX512-BF16:
    :func:`bokeh.cpu.native_bf16`; a demo step 0.30 -> 0.21 s on Sapphire Rapids, TOOLCHAIN.md) or a
    GPU that supports it, else ``32-true`` (emulated bf16 is slower than fp32). Anything else is
    passed to Lightning unchanged.
    """
    if str(precision) != "auto":
        return str(precision)
    if accelerator in ("gpu", "cuda"):
        import torch

        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    from bokeh.cpu import native_bf16

    return "bf16-mixed" if native_bf16() else "32-true"


def require_all_values(cfg: DictConfig) -> None:
    """Fail now, naming the key, if any mandatory value (``???``) was not given."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(
            f"missing required setting(s) {', '.join(missing)}: give them on the command line, "
            f"e.g. python -m bokeh.train {missing[0]}=..."
        )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The callbacks of ``cfg.callbacks``; ``callbacks.<name>=null`` switches one off, and
    ``trainer.enable_progress_bar=false`` leaves the progress bar out (Lightning refuses both)."""
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    return callbacks


def build_trainer(cfg: DictConfig, callbacks: list, logger, plugins: list | None = None, announce: bool = True) -> pl.Trainer:
    """``cfg.trainer`` as a Lightning Trainer, with ``precision: auto`` resolved (:func:`resolve_precision`)
    and, with ``announce``, the precision chosen printed."""
    precision = resolve_precision(cfg.trainer.get("precision", "32-true"), str(cfg.trainer.get("accelerator", "cpu")))
    if announce and str(cfg.trainer.get("precision")) == "auto":
        why = "this CPU computes bf16 natively" if precision == "bf16-mixed" else "no native bf16 here"
        print(f"trainer.precision=auto -> {precision} ({why})")
    return hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=logger, plugins=plugins or [], precision=precision)


def run(cfg: DictConfig) -> pl.Trainer:
    """Fit the model described by ``cfg``; return the trainer (its ``checkpoint_callback`` knows the files)."""
    require_all_values(cfg)
    check_output_dir(cfg.output_dir, cfg.min_free_mib)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(cfg)
    check_crops_fit_critics(getattr(datamodule, "crop_size", None), module)
    if cfg.get("init_from") and not cfg.get("ckpt_path"):
        init_generator_from(module, cfg.init_from)
    callbacks = build_callbacks(cfg)
    logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False
    # checkpoints are written atomically and never with non-finite weights (bokeh.checkpoint_io)
    trainer = build_trainer(cfg, callbacks, logger, plugins=[AtomicCheckpointIO()])
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return trainer


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    trainer = run(cfg)
    if trainer.is_global_zero and trainer.checkpoint_callbacks:
        last = next((c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path), "-")
        best = next((c.best_model_path for c in trainer.checkpoint_callbacks if c.best_model_path and c.monitor), "-")
        print(f"checkpoints: last={last} best={best}")


if __name__ == "__main__":
    main()
