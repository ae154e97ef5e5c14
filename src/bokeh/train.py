"""Train BGGAN: ``python -m bokeh.train stage=pretrain`` (or ``stage=finetune init_from=...``).

Thin entry point: compose the Hydra config (``conf/train.yaml``), build the datamodule, the
LightningModule and the trainer, and fit. Works from any working directory.

Checked before training, each failure one sentence and exit status 2: the output folder
(writable, free space; :class:`CheckRunDir` even before Hydra creates it), that it holds no
earlier run unless resumed or ``overwrite=true`` (:func:`check_run_folder`), ``init_from=`` and
``ckpt_path=`` (a checkpoint of the same model settings and stage), and, when resuming, that the
run's limits (``trainer.max_steps``, ``max_epochs``, ``max_time``, which count the whole run,
resumes included) leave something to train. Path settings (:data:`PATH_KEYS`) may hold ``=``,
spaces or quotes: they are quoted for Hydra (:func:`bokeh.cli.quote_path_overrides`). Ctrl-C stops
with one line naming the last checkpoint to resume from (exit status 130).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from bokeh.checkpoint import CheckpointError, generator_source, read_checkpoint, settings_difference
from bokeh.config import CONF_DIR  # re-exported: bokeh.train.CONF_DIR
from bokeh.models.glassnet import GROWABLE, GlassNet, grow_state
from bokeh.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError
from bokeh.cli import EXIT_SETTINGS, Interrupted, check_hydra_command_line, hydra_quote, interruptible, quote_path_overrides
from bokeh.files import OutputFolderError, check_output_folder, write_text_atomic
from bokeh.data.pairs import DataLayoutError
from bokeh.data.sampling import ResumeStoppedEpoch
from bokeh.lit import BokehGAN
from bokeh.weights import VGGWeightsError

# Lightning 2.6 warns at every step-based checkpoint of a manually optimized module that it holds the
# weights after the optimizer step: exactly what resuming needs (they match global_step and the
# optimizer state), so the warning is noise here.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")

#: Settings that hold paths: quoted for Hydra on the command line, so any file name works
PATH_KEYS = ("ckpt_path", "init_from", "output_dir", "data.root", "data.include_list", "data.cache_dir", "data.photo_pairs",
             "loss.vgg.weights", "callbacks.real_pairs.folder", "callbacks.portraits.folder", "hydra.run.dir", "hydra.sweep.dir")


class ResumeLimitError(ValueError):
    """Resuming with a limit that the checkpoint has already reached: nothing would be trained."""


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
    kwargs, state = generator_source(path, "init_from")
    saved_settings, wanted = GlassNet.settings(**kwargs), GlassNet.settings(**module.hparams.generator)
    if saved_settings != wanted:
        try:  # a trained network gains control inputs or the blend channel, zero-initialised
            state = grow_state(state, saved_settings, wanted)
        except ValueError:
            saved, current = settings_difference(saved_settings, wanted)
            raise CheckpointError(
                f"init_from={path} holds a generator built with {saved}, but this run's model config has "
                f"{current}: use the same model settings as the pretrain run (only {', '.join(GROWABLE)} may be switched on)"
            ) from None
    module.generator.load_state_dict(state, strict=True)


def check_resume(path: str, module: BokehGAN, trainer_cfg: DictConfig) -> None:
    """Before ``ckpt_path=`` resumes: the checkpoint's model and stage are this run's, and the
    run's limits leave something to train.

    Raises:
        CheckpointError: another stage, or other model settings (one sentence naming both sides,
            instead of Lightning's list of every missing and mismatched weight).
        ResumeLimitError: ``trainer.max_steps``, ``max_epochs`` or ``max_time`` is already
            reached by the checkpoint (Lightning would train nothing and exit 0 without a word).
    """
    checkpoint = read_checkpoint(path, "ckpt_path")
    saved = checkpoint.get("hyper_parameters", {})
    if "generator" not in saved or "state_dict" not in checkpoint:
        raise CheckpointError(f"ckpt_path={path} is not a checkpoint of `python -m bokeh.train`: pass a last.ckpt or best-*.ckpt it wrote")
    stage = module.hparams.stage
    if saved.get("stage", stage) != stage:
        raise CheckpointError(
            f"ckpt_path={path} is a {saved['stage']} checkpoint but this run is stage={stage}: resume the same stage, "
            f"or start the {stage} stage from its generator with init_from={path}"
        )
    settings = {"model": GlassNet.settings(**saved["generator"])} | ({"critic": saved.get("critic", {})} if stage == "finetune" else {})
    current = {"model": GlassNet.settings(**module.hparams.generator)} | ({"critic": module.hparams.critic} if stage == "finetune" else {})
    difference = settings_difference(settings, current, prefix="")
    if any(difference):
        raise CheckpointError(
            f"ckpt_path={path} was written by a run with {difference[0]}, but this run has {difference[1]}: "
            f"resume with the checkpoint's settings (pass {difference[0]}), or start a new run from its generator "
            f"with init_from={path} instead of ckpt_path="
        )
    check_resume_limits(path, checkpoint, trainer_cfg)


def _max_time(value: Any) -> datetime.timedelta | None:
    """``trainer.max_time`` as a timedelta: ``"DD:HH:MM:SS"``, a dict of timedelta keywords, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        days, hours, minutes, seconds = (int(part) for part in value.split(":"))
        return datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(**dict(value))


def check_resume_limits(path: str, checkpoint: dict, trainer_cfg: DictConfig) -> None:
    """Raise :class:`ResumeLimitError` if the checkpoint already reached a limit of this run."""
    limits = OmegaConf.to_container(trainer_cfg, resolve=True) if isinstance(trainer_cfg, DictConfig) else dict(trainer_cfg)
    step, max_steps = int(checkpoint.get("global_step", 0)), limits.get("max_steps", -1)
    if max_steps not in (None, -1) and step >= max_steps:
        raise ResumeLimitError(
            f"nothing to train: ckpt_path={path} is at step {step}, and trainer.max_steps={max_steps} counts the whole run; "
            f"raise trainer.max_steps to train more"
        )
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    max_epochs = limits.get("max_epochs")
    if epochs is not None and max_epochs not in (None, -1) and epochs >= max_epochs:
        raise ResumeLimitError(
            f"nothing to train: ckpt_path={path} has finished {epochs} epoch(s), and trainer.max_epochs={max_epochs} counts the whole run; "
            f"raise trainer.max_epochs to train more"
        )
    budget = _max_time(limits.get("max_time"))
    timer = checkpoint.get("callbacks", {}).get("Timer", {})
    spent = timer.get("time_elapsed", {}).get("train") if isinstance(timer, dict) else None
    if budget is not None and spent is not None and spent >= budget.total_seconds():
        spent_text = str(datetime.timedelta(seconds=round(spent)))
        more = budget + datetime.timedelta(seconds=round(spent))
        suggestion = f"{more.days:02d}:{more.seconds // 3600:02d}:{more.seconds % 3600 // 60:02d}:{more.seconds % 60:02d}"
        raise ResumeLimitError(
            f"nothing to train: ckpt_path={path} has already trained for {spent_text}, and trainer.max_time={limits['max_time']} "
            f"counts the whole run, resumes included; give a larger one, e.g. trainer.max_time={suggestion} to train {budget} more"
        )


def check_output_dir(path: str | Path, min_free_mib: int = 200) -> Path:
    """Create ``path`` and prove it is writable with room for checkpoints, before any training.

    Raises:
        bokeh.cli.OutputFolderError: not writable, or less than ``min_free_mib`` MiB free.
    """
    path = check_output_folder(path, "hydra.run.dir")
    free_mib = shutil.disk_usage(path).free // 2**20
    if free_mib < min_free_mib:
        raise OutputFolderError(f"only {free_mib} MiB free under {path}; checkpoints need at least min_free_mib={min_free_mib} MiB: free space or pick another hydra.run.dir")
    return path


class RunFolderInUse(OutputFolderError):
    """The run folder holds an earlier run that this one would replace; ``str()`` says what to do."""


def checkpoint_folders(cfg: DictConfig) -> list[Path]:
    """Where the run's checkpoint callbacks write (their ``dirpath``), and ``<output_dir>/checkpoints``."""
    folders = [Path(cfg.output_dir) / "checkpoints"]
    for callback in (cfg.get("callbacks") or {}).values():
        if callback is not None and callback.get("dirpath"):
            folders.append(Path(callback.dirpath))
    return list(dict.fromkeys(folders))


def checkpoint_prefixes(cfg: DictConfig) -> tuple[str, ...]:
    """How the names of the checkpoints this run's callbacks write begin: ``last`` (``last.ckpt``,
    ``last-v1.ckpt``) and the first word of each callback's ``filename`` template (``best``, ``step``;
    Lightning's default ``epoch=``). A ``.ckpt`` of another name is not the run's own."""
    prefixes = ["last"]
    for callback in (cfg.get("callbacks") or {}).values():
        if callback is not None and "ModelCheckpoint" in str(callback.get("_target_", "")):
            template = callback.get("filename") or "epoch={epoch}-step={step}"
            prefixes.append(str(template).split("{", 1)[0].split("-", 1)[0] or "epoch=")  # best-epoch{..} -> best
    return tuple(dict.fromkeys(prefixes))


def earlier_run(cfg: DictConfig) -> list[Path]:
    """The files of an earlier run in ``cfg``'s run folder: its ``.hydra/`` (written once a run
    is accepted: :func:`record_run_config`) and the checkpoints its callbacks write in
    :func:`checkpoint_folders` (names of :func:`checkpoint_prefixes`; a user's own ``.ckpt`` beside
    them is neither counted nor removed)."""
    found = [path for path in [Path(cfg.output_dir) / RUN_CONFIG_DIR] if path.is_dir()]
    prefixes = checkpoint_prefixes(cfg)
    for folder in checkpoint_folders(cfg):
        if folder.is_dir():
            found += sorted(path for path in folder.glob("*.ckpt") if path.name.startswith(prefixes))
    return found


def check_run_folder(cfg: DictConfig, setting: str = "hydra.run.dir") -> None:
    """Refuse a run folder that holds an earlier run (:func:`earlier_run`), unless this run resumes
    one (``ckpt_path=``) or says ``overwrite=true``: a second ``experiment=demo`` would otherwise
    replace the first one's ``last.ckpt``, ``best-*.ckpt`` and ``.hydra/`` without a word.

    Raises:
        RunFolderInUse: one sentence naming the folder and the three ways on (``setting``: the
            option that chose the folder, ``hydra.run.dir``; ``out`` for the demo).
    """
    from bokeh.cli import parse_bool

    try:
        overwrite = parse_bool("overwrite", cfg.get("overwrite", False))
    except ValueError as error:
        raise OutputFolderError(str(error)) from None
    if overwrite or cfg.get("ckpt_path") or os.environ.get("LOCAL_RANK", "0") != "0":
        return  # DDP's other ranks start once rank 0 has accepted the run and written its .hydra/
    found = earlier_run(cfg)
    if found:
        last = next((p for p in found if p.name == "last.ckpt"), found[-1])
        resume = f"resume it with ckpt_path={hydra_quote(str(last))}, " if last.suffix == ".ckpt" else ""
        raise RunFolderInUse(f"the run folder {cfg.output_dir} holds an earlier run ({last}): {resume}replace it with "
                             f"overwrite=true, or choose another {setting}=")


def clear_earlier_run(cfg: DictConfig) -> None:
    """With ``overwrite=true`` (and no ``ckpt_path``): remove the earlier run's checkpoints and
    ``.hydra/`` (:func:`earlier_run`), so its ``best-*.ckpt`` cannot pass for this run's. Logs stay."""
    if cfg.get("ckpt_path") or os.environ.get("LOCAL_RANK", "0") != "0":
        return
    for path in earlier_run(cfg):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


#: The run folder as it was before this process (:class:`CheckRunDir`): whether it existed and the
#: size of each log file in it, so that a refused run can leave it as it found it.
RUN_DIR_BEFORE: dict[str, Any] = {}
RUN_CONFIG_DIR = ".hydra"  # written by record_run_config once the run is accepted (conf: hydra.output_subdir=null)


def leave_run_dir_as_found() -> None:
    """Undo what Hydra did to the run folder for a run refused before training: a folder this run
    created is removed, and in an existing one each log file is cut back to its earlier length (the
    ``.hydra`` files are only written for an accepted run: :func:`record_run_config`)."""
    import logging

    from bokeh.train import RUN_DIR_BEFORE as before  # Hydra's callback filled the imported module's, not __main__'s

    folder = before.get("path")
    if folder is None or os.environ.get("LOCAL_RANK", "0") != "0":
        return
    for handler in list(logging.getLogger().handlers):  # Hydra's train.log handler holds the file open
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == folder:
            handler.close()
            logging.getLogger().removeHandler(handler)
    if not before["existed"]:
        shutil.rmtree(before["created"], ignore_errors=True)  # the outermost folder Hydra made for it
        return
    for entry in folder.iterdir():  # what the refused run made beside the earlier run's files (logs/, .hydra/)
        if entry.name not in before.get("entries", {entry.name}) and not entry.name.endswith(".log"):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
    for log in folder.glob("*.log"):
        size = before["logs"].get(log.name)
        if size is None:
            log.unlink(missing_ok=True)
        elif log.stat().st_size > size:
            os.truncate(log, size)


def record_run_config(cfg: DictConfig) -> None:
    """Write ``.hydra/`` (``config.yaml``, ``hydra.yaml``, ``overrides.yaml``, as Hydra does) once
    the run has passed its checks: Hydra writes them before any check, so a refused retry replaced
    the files of the run in that folder. Nothing outside a Hydra job, nor on DDP's other ranks."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or os.environ.get("LOCAL_RANK", "0") != "0":
        return
    hydra_cfg = HydraConfig.instance().cfg
    folder = Path(hydra_cfg.hydra.runtime.output_dir) / RUN_CONFIG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", cfg), ("hydra.yaml", hydra_cfg), ("overrides.yaml", hydra_cfg.hydra.overrides.task)):
        write_text_atomic(folder / name, OmegaConf.to_yaml(node))


class CheckRunDir(HydraCallback):
    """Hydra callback (``conf/train.yaml``): refuse an unwritable ``hydra.run.dir`` (or sweep dir)
    in one line, exit status 2, before Hydra itself creates it and fails with a traceback; and note
    what the run folder held, so that a refused run leaves it as it was (:func:`leave_run_dir_as_found`)."""

    def _check(self, folder: str, setting: str) -> None:
        try:
            check_output_folder(folder, setting, keep=False)
        except OutputFolderError as error:
            print(f"bokeh.train: {error}", file=sys.stderr)
            sys.exit(EXIT_SETTINGS)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.run.dir).absolute()
        missing = [f for f in (folder, *folder.parents) if not f.exists()]
        RUN_DIR_BEFORE.update(path=folder, existed=folder.exists(), created=missing[-1] if missing else None,
                              logs={log.name: log.stat().st_size for log in folder.glob("*.log")} if folder.is_dir() else {},
                              entries={p.name for p in folder.iterdir()} if folder.is_dir() else set())
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")


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


class ConfigValueError(ValueError):
    """A value of the composed config that its constructor (or Lightning) would refuse or misread;
    ``str()`` is one sentence naming the key as typed (``trainer.max_epochs=abc: ...``)."""


def _trainer_values() -> dict:
    """``trainer.<key>`` -> its type (:mod:`bokeh.options`): the Lightning Trainer settings a run
    uses, checked before anything is built (Lightning takes ``max_epochs=abc`` and fails mid-fit)."""
    from bokeh.options import integer, number

    none = {"none": None, "null": None}
    return {
        "max_epochs": integer(-1, words=none), "min_epochs": integer(0, words=none), "max_steps": integer(-1),
        "min_steps": integer(0, words=none), "accumulate_grad_batches": integer(1), "log_every_n_steps": integer(1),
        "check_val_every_n_epoch": integer(1, words=none), "num_sanity_val_steps": integer(-1),
        "val_check_interval": number(0, low_open=True, words=none), "gradient_clip_val": number(0, words=none),
        "limit_train_batches": number(0, words=none), "limit_val_batches": number(0, words=none),
    }


def check_config_values(cfg: DictConfig) -> None:
    """The typed trainer settings (:func:`_trainer_values`) and ``trainer.max_time`` are what they
    should be, before anything is built.

    Raises:
        ConfigValueError: the first bad one, named as typed.
    """
    from bokeh.options import shown

    trainer = cfg.get("trainer") or {}
    for key, kind in _trainer_values().items():
        value = trainer.get(key) if key in trainer else None
        if value is None:
            continue
        if isinstance(value, bool):
            raise ConfigValueError(f"trainer.{key}={str(value).lower()}: {getattr(kind, 'describe', 'a number')}")
        try:
            kind(str(value))
        except ValueError as error:
            raise ConfigValueError(f"trainer.{key}={shown(str(value))}: {error}") from None
    if trainer.get("max_time") is not None:
        try:
            _max_time(trainer.get("max_time"))
        except (ValueError, TypeError):
            raise ConfigValueError(f"trainer.max_time={trainer.get('max_time')}: give DD:HH:MM:SS, e.g. 00:02:00:00 for two hours") from None


def built(what: str, build: Callable[[], Any]) -> Any:
    """``build()``; a constructor's refusal of a config value (``ValueError``, ``TypeError``, or
    Hydra's wrapping of one) as one :class:`ConfigValueError` sentence naming the config group."""
    from hydra.errors import InstantiationException

    try:
        return build()
    except InstantiationException as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        raise ConfigValueError(f"{what}: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}") from None
    except (ValueError, TypeError) as error:
        if isinstance(error, (ConfigValueError, CheckpointError)):
            raise
        said = str(error)
        raise ConfigValueError(said if re.match(r"[\w.]+=", said) else f"{what}: {said}") from None


def require_all_values(cfg: DictConfig) -> None:
    """Fail now, naming the key, if any mandatory value (``???``) was not given."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigValueError(
            f"missing required setting(s) {', '.join(missing)}: give them on the command line, "
            f"e.g. python -m bokeh.train {missing[0]}=..."
        )


def check_data_paths(data_cfg: DictConfig) -> None:
    """The data folder (``data.root``, EBB! layout) and ``data.include_list`` exist, before anything
    is built: a wrong path is one sentence (:class:`bokeh.data.pairs.DataLayoutError`), not a
    traceback after the model summary."""
    from bokeh.data.pairs import DataLayoutError, resolve_root

    if data_cfg.get("root") is not None:
        resolve_root(data_cfg.root)
    from bokeh.data.datamodules import photo_folders

    for folder in photo_folders(data_cfg.get("photo_pairs")):
        if not Path(folder).expanduser().is_dir():
            raise DataLayoutError(
                f"data.photo_pairs folder {folder} does not exist: make the pairs with "
                f"python -m bokeh.data.photo_pairs src=/path/to/BSDS500 out={folder}, or train on scenes alone with data.photo_pairs=null"
            )
        resolve_root(folder)
    include = data_cfg.get("include_list")
    if include and not Path(include).expanduser().is_file():
        raise DataLayoutError(f"data.include_list={include} does not exist: pass a text file with one image name per line, or data.include_list=null")


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
    # everything a run writes goes under its run folder: fast_dev_run drops the logger, and the
    # sample strips would otherwise go to Lightning's default, the working folder
    root = {} if cfg.trainer.get("default_root_dir") or not cfg.get("output_dir") else {"default_root_dir": cfg.output_dir}
    return hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=logger, plugins=plugins or [], precision=precision, **root)


def resume_note(trainer: pl.Trainer) -> str:
    """Where an interrupted run can resume from: its newest ``last.ckpt`` and that file's step."""
    import torch

    paths = {c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path and Path(c.last_model_path).is_file()}
    if not paths:
        return f"stopped at step {trainer.global_step}; no checkpoint was written yet"
    steps = {path: torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"] for path in paths}
    newest = max(steps, key=steps.get)
    return (f"stopped at step {trainer.global_step}; the last checkpoint is {newest} (step {steps[newest]}): "
            f"resume with ckpt_path={hydra_quote(newest)}")


def run(cfg: DictConfig) -> pl.Trainer:
    """Fit the model described by ``cfg``; return the trainer (its ``checkpoint_callback`` knows the files).

    Raises:
        bokeh.cli.Interrupted: Ctrl-C during training (its sentence says where to resume from).
    """
    require_all_values(cfg)
    check_config_values(cfg)
    check_run_folder(cfg)
    check_data_paths(cfg.data)
    if cfg.model.get("subject_input") and not cfg.data.get("subject"):
        raise DataLayoutError("model.subject_input=true takes a subject matte, but the samples carry none: set data.subject=true "
                              "(or model.subject_input=false)")
    check_output_dir(cfg.output_dir, cfg.min_free_mib)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # said once the run is accepted: a refusal is one line
    datamodule = built("data", lambda: hydra.utils.instantiate(cfg.data))
    module = built("model", lambda: build_module(cfg))
    try:
        check_crops_fit_critics(getattr(datamodule, "crop_size", None), module)
    except ValueError as error:
        raise ConfigValueError(str(error)) from None
    if cfg.get("ckpt_path"):  # the checkpoints first: a wrong file is the first thing to say
        check_resume(cfg.ckpt_path, module, cfg.trainer)
    elif cfg.get("init_from"):
        init_generator_from(module, cfg.init_from)
    try:  # the frozen VGG19 now, not in Lightning's setup: missing or foreign weights are one sentence before anything runs
        module.setup("fit")
    except VGGWeightsError as error:
        raise ConfigValueError(str(error)) from None
    # a run stopped mid-epoch by a limit resumes that epoch (bokeh.data.sampling.ResumeStoppedEpoch)
    callbacks = built("callbacks", lambda: [*build_callbacks(cfg), ResumeStoppedEpoch()])
    logger = built("logger", lambda: hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False)
    # checkpoints are written atomically and never with non-finite weights (bokeh.checkpoint_io)
    trainer = built("trainer", lambda: build_trainer(cfg, callbacks, logger, plugins=[AtomicCheckpointIO()]))
    if cfg.get("overwrite"):
        clear_earlier_run(cfg)  # accepted: an earlier run's checkpoints go now, not before the checks
    record_run_config(cfg)  # accepted: now the run folder says what ran
    pl.utilities.rank_zero_info(f"Seed set to {cfg.seed}")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    except SystemExit:  # Lightning's answer to Ctrl-C: its own teardown, then sys.exit(1)
        if trainer.interrupted:
            raise Interrupted(resume_note(trainer)) from None
        raise
    return trainer


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        with interruptible("bokeh.train", lambda: ""):
            trainer = run(cfg)
    except (OutputFolderError, CheckpointError, ResumeLimitError, DataLayoutError, ConfigValueError) as error:
        leave_run_dir_as_found()
        print(f"bokeh.train: {error}", file=sys.stderr)
        sys.exit(EXIT_SETTINGS)
    except CheckpointWriteError as error:  # disk full mid-run: the previous checkpoint is intact
        print(f"bokeh.train: stopped: {error}", file=sys.stderr)
        sys.exit(1)
    if trainer.is_global_zero and trainer.checkpoint_callbacks:
        last = next((c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path), "-")
        best = next((c.best_model_path for c in trainer.checkpoint_callbacks if c.best_model_path and c.monitor), "-")
        print(f"checkpoints: last={last} best={best}")


if __name__ == "__main__":
    sys.argv[1:] = quote_path_overrides(sys.argv[1:], PATH_KEYS)  # before Hydra parses them
    check_hydra_command_line("bokeh.train", CONF_DIR, "train", sys.argv[1:])  # Hydra's refusals: one sentence
    main()
