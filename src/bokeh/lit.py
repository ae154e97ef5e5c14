"""The LightningModule: Glass-Net, the multi-receptive-field critics and the VGG19 loss, stepped by hand.

Both stages share one code path (manual optimization):

* ``pretrain``: generator loss = l1 * L1 + ssim * (1 - SSIM) [+ rough_l1 * L1 on the stage-1 image,
  gradient, matte terms]: the weighted terms of :mod:`bokeh.losses.table`.
* ``finetune``: adds vgg * L_VGG(relu5_4) + adv * (-mean D(G(I))), and a WGAN-GP critic step
  before every ``n_critic``-th generator step (keyed on ``batch_idx``).

The loss weights and options, the optimizer and critic settings have their defaults in ``conf/``
alone (``loss/bggan.yaml``, ``optim/adam.yaml``, ``critic/patchgan.yaml``): keys a dict leaves out
(a test's partial dict, a checkpoint of a run older than a key) are taken from there.

Checkpoints also hold the torch/numpy/Python random states (restored when training starts), so a
run resumed from a mid-epoch checkpoint repeats the uninterrupted run's losses (with the resumable
data order of :mod:`bokeh.data.sampling`); non-finite losses or gradients skip the step.

Constructor arguments are plain dicts of primitives (Hydra sub-configs converted in
``bokeh.train``), so ``BokehGAN.load_from_checkpoint(path)`` works with torch's default
``weights_only=True`` and nothing else.
"""

from __future__ import annotations

import os

import math
import warnings
from typing import Any

import pytorch_lightning as pl
import torch

from bokeh import metrics
from bokeh.checkpoint import CheckpointError, state_mismatch
from bokeh.checkpoint_io import rng_states, set_rng_states
from bokeh.data.transforms import unpad
from bokeh.config import group_defaults
from bokeh.losses.table import check_loss, generator_terms
from bokeh.models.glassnet import GlassNet

STAGES = ("pretrain", "finetune")
RESUME_KEY = "bokeh_resume"  # checkpoint entry: random states and skip counters (tensors and primitives)

SCHEDULES = ("constant", "cosine")


class NonFiniteLossError(RuntimeError):
    """Training produced too many non-finite losses in a row to go on safely."""


def _check_type(key: str, value: Any, default: Any) -> None:
    """``value`` of config ``key`` is of its default's kind (a number, true/false, a list, a group):
    ``optim.lr_g=fast`` is refused here, in one sentence, not by Adam in the middle of ``fit``."""
    if default is None or value is None:
        return
    number = (int, float)
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, number):
        ok, kind = isinstance(value, number) and not isinstance(value, bool), "a number"
        if ok and isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            ok, kind = False, "a whole number"
    elif isinstance(default, (list, tuple)):
        ok, kind = isinstance(value, (list, tuple)), f"a list like {list(default)}"
    elif isinstance(default, dict):
        ok, kind = isinstance(value, dict), "a group of settings"
    else:
        return
    if not ok:
        shown = str(value).lower() if isinstance(value, bool) else value
        raise ValueError(f"{key}={shown}: give {kind}")


def _merged(defaults: dict[str, Any], given: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``defaults`` updated with ``given``; unknown keys and negative numbers are config errors."""
    given = dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    merged = {**defaults, **given}
    for key, value in merged.items():
        _check_type(f"{what}.{key}", value, defaults[key])
        if isinstance(defaults[key], dict):
            merged[key] = _merged(defaults[key], value, f"{what}.{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{what}.{key} must be >= 0, got {value}")
    return merged


class BokehGAN(pl.LightningModule):
    """BGGAN training: Glass-Net generator, WGAN-GP critics, hybrid loss.

    Args:
        generator: ``GlassNet`` keyword arguments (width1, width2, blocks, norm, dropout).
        stage: ``pretrain`` or ``finetune``.
        loss: the weight of each term of :data:`bokeh.losses.table.TERMS` (``l1``, ``ssim``,
            ``rough_l1``, ``gradient``, ``adv``; ``vgg: {weight, weights}`` with weights ``imagenet``, a
            file path, or ``random`` for tests; ``matte: {weight, form}``, batches carry ``"matte"``
            targets), ``focus_weight`` (of L1) and the critic's penalty ``gp``. Keys left out take
            their defaults from ``conf/loss/bggan.yaml``.
        optim: ``lr_g``, ``lr_d``, ``betas``, ``n_critic``, ``schedule`` (``constant``, the paper's, or
            ``cosine``: both learning rates fall to 0 along a half cosine over the run's batches,
            which needs ``trainer.max_steps`` or ``trainer.max_epochs``).
        critic: ``depths`` (strided layers per critic), ``ndf``, ``norm``; used by ``finetune``.
            Keys left out of ``optim`` and ``critic`` take their defaults from ``conf/optim/adam.yaml``
            and ``conf/critic/patchgan.yaml``.
        max_bad_steps: consecutive non-finite losses or gradients tolerated (each step skipped with
            a warning and counted in ``train/skipped_steps``) before training stops with
            :class:`NonFiniteLossError`; skipped steps leave the weights untouched.

    Batches are dicts ``{"input": (B, 3, H, W), "target": (B, 3, H, W)}`` in [-1, 1].
    """

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):  # type: ignore[override]
        """Lightning's loader, once the file is known to be a model file (the one check every
        command makes: :func:`bokeh.model_files.check_model_file`; a folder, an empty file, a Git LFS
        pointer or an image is one :class:`~bokeh.checkpoint.CheckpointError` sentence)."""
        from bokeh.model_files import check_model_file

        if isinstance(checkpoint_path, (str, os.PathLike)):
            check_model_file(checkpoint_path, "checkpoint_path", suffixes=None)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def __init__(
        self,
        generator: dict[str, Any] | None = None,
        stage: str = "pretrain",
        loss: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        critic: dict[str, Any] | None = None,
        max_bad_steps: int = 5,
    ) -> None:
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        loss = _merged(group_defaults("loss", "bggan"), loss, "loss")
        check_loss(loss)
        optim = _merged(group_defaults("optim", "adam"), optim, "optim")
        critic = _merged(group_defaults("critic", "patchgan"), critic, "critic")
        if loss["matte"]["weight"] > 0 and not dict(generator or {}).get("blend", False):
            raise ValueError("loss.matte.weight > 0 teaches the matte, which only a generator with model.blend=true has: set model.blend=true or loss.matte.weight=0")
        if optim["schedule"] not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {optim['schedule']!r}")
        if int(optim["n_critic"]) < 1:
            raise ValueError(f"optim.n_critic must be >= 1, got {optim['n_critic']}")
        if int(max_bad_steps) < 1:
            raise ValueError(f"max_bad_steps must be >= 1, got {max_bad_steps}")
        self.save_hyperparameters(
            {
                "generator": dict(generator or {}),
                "stage": stage,
                "loss": loss,
                "optim": optim,
                "critic": critic,
                "max_bad_steps": max_bad_steps,
            }
        )
        self.automatic_optimization = False
        self.generator = GlassNet(**self.hparams.generator)
        self.adversarial = stage == "finetune"
        self.critics = None
        self.vgg = None
        if self.adversarial:
            from bokeh.models.critics import CriticSet

            self.critics = CriticSet(**critic)
        self.bad_steps = 0  # consecutive skipped (non-finite) steps
        self.skipped_steps = 0  # all skipped steps of this run, resumes included
        self._rng_to_restore: dict[str, Any] | None = None  # from a checkpoint, until training starts

    # ----------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """Load the frozen VGG19 here (not in the constructor): it may need a file or a download."""
        if self.hparams.loss["vgg"]["weight"] > 0 and self.vgg is None:
            from bokeh.weights import load_vgg19_features

            self.vgg = load_vgg19_features(self.hparams.loss["vgg"]["weights"], option="loss.vgg.weights").to(self.device)

    def state_dict(self, *args, **kwargs):
        """Without the frozen VGG: it is rebuilt from its weights file, never trained."""
        state = super().state_dict(*args, **kwargs)
        for key in [k for k in state if k.startswith("vgg.")]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As ``nn.Module``'s; weights that do not fit raise one sentence (:func:`bokeh.checkpoint.state_mismatch`)."""
        if self.vgg is not None:
            state_dict = {**state_dict, **{f"vgg.{k}": v for k, v in self.vgg.state_dict().items()}}
        problem = state_mismatch(super().state_dict(), state_dict) if strict else None
        if problem:
            raise CheckpointError(
                f"these weights do not fit a {self.hparams.stage} model with generator {self.hparams.generator} "
                f"({problem}): load the checkpoint with the settings it was written with"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def configure_optimizers(self):
        optim = self.hparams.optim
        betas = tuple(float(b) for b in optim["betas"])
        optimizers = [torch.optim.Adam(self.generator.parameters(), lr=optim["lr_g"], betas=betas)]
        if self.adversarial:
            optimizers.append(torch.optim.Adam(self.critics.parameters(), lr=optim["lr_d"], betas=betas))
        if optim["schedule"] == "constant":
            return optimizers
        batches = self.scheduled_batches()
        return optimizers, [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=batches) for o in optimizers]

    def scheduled_batches(self) -> int:
        """Training batches this run will see: the length of a ``cosine`` schedule (stepped per batch).

        ``trainer.max_steps`` counts optimizer steps (in finetune: a critic step per batch plus a
        generator step every ``n_critic`` batches); ``trainer.max_epochs`` counts passes over the
        training loader; the shorter bound wins.
        """
        trainer = self.trainer
        steps_per_batch = 1 + 1 / self.hparams.optim["n_critic"] if self.adversarial else 1
        bounds = []
        if trainer.max_steps not in (None, -1):
            bounds.append(math.ceil(trainer.max_steps / steps_per_batch))
        if trainer.max_epochs not in (None, -1):
            trainer.estimated_stepping_batches  # loads the training loader, so its length is known
            if math.isfinite(trainer.num_training_batches):
                bounds.append(int(trainer.num_training_batches) * trainer.max_epochs)
        if not bounds:
            raise ValueError("optim.schedule=cosine needs a known training length: set trainer.max_steps (or trainer.max_epochs)")
        return max(1, min(bounds))

    def forward(self, image: torch.Tensor, focus: torch.Tensor | None = None, aperture: torch.Tensor | None = None,
                subject: torch.Tensor | None = None) -> torch.Tensor:
        """The bokeh image ``(B, 3, H, W)`` in [-1, 1] for ``image`` ``(B, 3, H, W)`` in [-1, 1] and the
        controls the generator takes (``focus`` ``(B, 2)``, ``aperture`` ``(B, 1)``, ``subject``
        ``(B, 1, H, W)``; None: the defaults)."""
        return self.generator(image, focus, aperture, subject)[0]

    def controls(self, batch: dict[str, torch.Tensor], tapped: bool = True) -> dict[str, torch.Tensor]:
        """The batch's controls the generator takes: its ``focus`` points (``tapped``; else auto),
        ``aperture`` f-numbers and ``subject`` mattes (``(B, 1, H, W)``, the segmenter's: data
        ``subject=true``). Batches without them (older data) leave the defaults (no subject: zeros)."""
        contract = self.generator.contract
        controls = {}
        if contract.focus and tapped and "focus" in batch:
            controls["focus"] = batch["focus"]
        if contract.aperture and "aperture" in batch:
            controls["aperture"] = batch["aperture"]
        if contract.subject and "subject" in batch:
            controls["subject"] = batch["subject"]
        return controls

    # ----------------------------------------------------------------- resume
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also store the random states and the skip counters, so a resumed run continues exactly."""
        checkpoint[RESUME_KEY] = {"rng": rng_states(), "bad_steps": self.bad_steps, "skipped_steps": self.skipped_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(RESUME_KEY, {})
        self.bad_steps, self.skipped_steps = int(state.get("bad_steps", 0)), int(state.get("skipped_steps", 0))
        self._rng_to_restore = state.get("rng")

    def on_train_start(self) -> None:
        """Restore the checkpoint's random states here, after the sanity check and loader set-up,
        right where the interrupted run stood: before the next training batch."""
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    # ----------------------------------------------------------------- losses
    def generator_losses(
        self, bokeh: torch.Tensor, rough: torch.Tensor, target: torch.Tensor, radius: torch.Tensor | None = None,
        matte_logit: torch.Tensor | None = None, matte_target: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The generator loss terms that apply (:func:`bokeh.losses.table.generator_terms`: keys as in
        ``loss``, unweighted) and their weighted sum under ``total``.

        ``radius`` ``(B, 1, H, W)``: the batch's blur radii (synthetic data), used by ``focus_weight``;
        without it (EBB!) the L1 term is the plain one. ``matte_logit`` and ``matte_target``
        ``(B, 1, H, W)``: the generator's keep-weight logit and the batch's matte targets, used by
        ``matte`` (a batch without targets adds no matte term).
        """
        inputs = {"output": bokeh, "rough": rough, "target": target, "radius": radius, "matte_logit": matte_logit,
                  "matte_target": matte_target, "vgg": self.vgg, "critics": self.critics if self.adversarial else None}
        return generator_terms(self.hparams.loss, inputs)

    def _step(self, optimizer, loss: torch.Tensor, what: str) -> bool:
        """Backward ``loss`` and step ``optimizer`` if the loss and every gradient are finite.

        Otherwise the step is skipped (gradients dropped, weights untouched) with a warning and a
        count; ``max_bad_steps`` skips in a row raise :class:`NonFiniteLossError`. Under DDP the
        decision is taken by all ranks together (the gradients are already averaged; the loss is
        not), so every rank skips the same steps and none waits for the others in a collective.
        """
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            grads = []  # precision=16-mixed: the GradScaler skips overflowing steps itself and must see them to lower its scale
        # a NaN or inf anywhere makes the sum non-finite (so do finite sums beyond 3e38: no step to take
        # either); 16x faster than isfinite().all() per tensor: 3 vs 48 ms for 16 M CPU gradients
        finite = torch.isfinite(loss.detach().sum() + sum(g.sum() for g in grads))
        finite = self.trainer.strategy.reduce_boolean_decision(bool(finite), all=True)
        if self._finite_or_skip(finite, what):
            optimizer.step()
            return True
        optimizer.zero_grad(set_to_none=True)
        return False

    def _finite_or_skip(self, finite: bool, what: str) -> bool:
        """``finite``, after counting; a skip warns, and too many in a row stop training."""
        if finite:
            self.bad_steps = 0
            return True
        self.bad_steps += 1
        self.skipped_steps += 1
        self.log("train/skipped_steps", float(self.skipped_steps))
        warnings.warn(
            f"non-finite {what} or its gradients at step {self.global_step} (batch {self.trainer.fit_loop.epoch_loop.batch_idx}): "
            f"step skipped ({self.bad_steps} in a row, {self.skipped_steps} in all)",
            RuntimeWarning,
            stacklevel=2,
        )
        if self.bad_steps >= self.hparams.max_bad_steps:
            raise NonFiniteLossError(
                f"{self.bad_steps} non-finite losses in a row (last: {what}); training stopped so that no "
                f"poisoned checkpoint is written. Lower the learning rate or check the data, then resume "
                f"from the last good checkpoint."
            )
        return False

    # ----------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._train_batch(batch, batch_idx)
        self._step_schedules()

    def _step_schedules(self) -> None:
        """Step the learning-rate schedules (``optim.schedule``) once per training batch, inside the
        training step, so a checkpoint written at this batch's end holds the schedule's next value."""
        schedulers = self.lr_schedulers() or []
        with warnings.catch_warnings():
            # the schedule counts batches: with n_critic > 1 the generator may not have stepped yet
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()

    def _train_batch(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        image, target = batch["input"], batch["target"]
        if self.adversarial:
            generator_opt, critic_opt = self.optimizers()
        else:
            generator_opt, critic_opt = self.optimizers(), None
        layers = self.generator.layers(image, **self.controls(batch))
        bokeh, rough = layers.image, layers.rough

        if critic_opt is not None:
            self._critic_step(critic_opt, target, bokeh.detach())
            if (batch_idx + 1) % self.hparams.optim["n_critic"] != 0:
                return

        self.toggle_optimizer(generator_opt)
        terms = self.generator_losses(bokeh, rough, target, batch.get("coc"), layers.matte_logit, batch.get("matte"))
        self._step(generator_opt, terms["total"], "generator loss")
        self.untoggle_optimizer(generator_opt)
        batch_size = image.shape[0]
        self.log("train/loss", terms.pop("total").detach(), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, batch_size=batch_size)

    def _critic_step(self, critic_opt, real: torch.Tensor, fake: torch.Tensor) -> None:
        from bokeh.losses.adversarial import critic_loss

        self.toggle_optimizer(critic_opt)
        result = critic_loss(self.critics, real, fake, gp_weight=self.hparams.loss["gp"])
        self._step(critic_opt, result.total, "critic loss")
        self.untoggle_optimizer(critic_opt)
        self.log_dict(
            {"train/d_loss": result.total.detach(), "train/gp": result.gp.detach(),
             "train/wasserstein": result.wasserstein.detach()},
            batch_size=real.shape[0],
        )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """``val/*``: the model as it runs by default (auto focus, the pair's f-number where the model
        takes one); a model with a focus input is also scored tapped at each pair's in-focus point
        (``val/tapped/*``; pairs whose in-focus region is unknown are tapped "auto")."""
        layers = self.generator.layers(batch["input"], **self.controls(batch, tapped=False))
        self._log_scores(batch, layers, "val")
        if self.generator.contract.focus and "focus" in batch:
            self._log_scores(batch, self.generator.layers(batch["input"], **self.controls(batch, tapped=True)), "val/tapped")
        return layers.image

    def _log_scores(self, batch: dict[str, torch.Tensor], layers, prefix: str) -> None:
        bokeh = layers.image
        # metrics on the image's own pixels: drop the padding added to reach a multiple of 8
        size = batch.get("size", batch["input"].shape[-2:])
        output, target = (metrics.to_unit_range(unpad(x, size)) for x in (bokeh, batch["target"]))
        batch_size = bokeh.shape[0]
        self.log(f"{prefix}/psnr", metrics.psnr(output, target).mean(), prog_bar=prefix == "val", batch_size=batch_size, sync_dist=True)
        self.log(f"{prefix}/ssim", metrics.ssim(output, target).mean(), batch_size=batch_size, sync_dist=True)
        if "coc" in batch:  # synthetic data: PSNR on the pixels kept in focus and on the strongly defocused ones
            split = metrics.psnr_split(output, target, unpad(batch["coc"], size))
            for name in ("in_focus", "defocus"):
                # an image without such pixels gives NaN and does not count towards that set's mean;
                # not synced under DDP (ranks may skip different batches): each rank's own mean
                if torch.isfinite(split[name]).all():
                    self.log(f"{prefix}/psnr_{name}", split[name].mean(), batch_size=batch_size)
        if layers.matte is not None and "matte" in batch:  # IoU of the matte with the in-focus region the pair knows
            iou = metrics.matte_iou(unpad(layers.matte, size), unpad(batch["matte"], size))
            if torch.isfinite(iou).all():
                self.log(f"{prefix}/matte_iou", iou.mean(), batch_size=batch_size)

