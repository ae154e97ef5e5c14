"""Lightning callbacks of this project."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from bokeh.data.transforms import unpad
from bokeh.images import from_tensor, write_image
from bokeh.metrics import to_unit_range


class SampleImages(pl.Callback):
    """Save ``input | output | target`` strips of the first ``count`` validation images each epoch.

    PNGs go to ``<log_dir or output dir>/samples/epoch=EEE_batch=B.png``; a TensorBoard logger
    also gets them as images (``val/sample_B``).
    """

    def __init__(self, count: int = 3) -> None:
        self.count = count

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx >= self.count or trainer.sanity_checking or not trainer.is_global_zero:
            return
        size = batch.get("size", batch["input"].shape[-2:])
        strip = torch.cat([unpad(x, size) for x in (batch["input"][0], outputs[0], batch["target"][0])], dim=-1)  # (3, H, 3W)
        folder = Path(log_dir(trainer)) / "samples"
        write_image(folder / f"epoch={trainer.current_epoch:03d}_batch={batch_idx}.png", from_tensor(strip))
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            experiment.add_image(f"val/sample_{batch_idx}", to_unit_range(strip.clamp(-1, 1)), trainer.global_step)


def log_dir(trainer: pl.Trainer) -> str:
    """``trainer.log_dir`` without its broadcast: that property is a collective under DDP, and a
    callback that asks for it on rank 0 alone (as one that writes files does) hangs the run."""
    logger = trainer.loggers[0] if trainer.loggers else None
    folder = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
    return str(folder or trainer.default_root_dir)


def _segmenter_missing(subject: str) -> str | None:
    """Why ``subject="auto"`` (or ``"person"``) cannot run here (the segmenter's model is missing), or None."""
    if subject == "off":
        return None
    from bokeh.runtimes import RuntimeUnavailable

    try:
        from bokeh.render.fit import subject_segmenter

        subject_segmenter(None)
    except (RuntimeUnavailable, ImportError) as error:
        return str(error)
    return None


class RealPairScores(pl.Callback):
    """Score the generator on a folder of real pairs after each validation, and log
    ``real/psnr``, ``real/psnr_in_focus``, ``real/psnr_defocus``, ``real/detail_in_focus`` (and
    ``real/detail_defocus``): :func:`bokeh.evaluate.real.score_real_pairs` at ``short_side``, each
    photo rendered on the one road of ``bokeh.render`` (:func:`bokeh.render.render_photo`: the
    numbers ``python -m bokeh.evaluate real=`` prints for the same weights, pairs and size). A
    generator with a focus input is also scored tapped at each subject mask's interior point
    (``real/tapped/...``); one with an aperture input gets each target's f-number.

    Args:
        folder: a real-pair folder (:mod:`bokeh.data.real_pairs`), absolute or relative to the
            working directory; None switches the callback off. A folder that is missing or not in
            the layout is skipped with one warning (training goes on).
        short_side: the photos' short side for scoring (pixels; 256 is the reference model's scale).
        apertures: target f-numbers to score (default f/1.8; None: every target).
        subject: the focus decision, as ``bokeh.render``'s ``subject=``: ``auto`` (the subject
            matte and the model's), ``off`` (the model alone). Without the segmenter, ``auto`` is
            skipped with one warning.
    """

    KEYS = ("psnr", "psnr_in_focus", "psnr_defocus", "detail_in_focus", "detail_defocus")

    def __init__(self, folder: str | None = None, short_side: int | None = 256,
                 apertures: list[float] | None = (1.8,), subject: str = "auto") -> None:
        self.folder = Path(folder).expanduser() if folder else None
        self.short_side = short_side
        self.apertures = tuple(apertures) if apertures is not None else None
        self.subject = subject
        self.warned = False

    def _warn(self, message: str) -> None:
        import warnings

        if not self.warned:
            warnings.warn(message, stacklevel=2)
            self.warned = True

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        from bokeh.data.pairs import DataLayoutError
        from bokeh.evaluate.real import score_real_pairs

        if self.folder is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        missing = _segmenter_missing(self.subject)
        if missing:
            self._warn(f"real-pair scores are off for this run: subject={self.subject}: {missing}")
            return
        contract = getattr(pl_module.generator, "contract", None)
        takes_focus, takes_aperture = bool(contract and contract.focus), bool(contract and contract.aperture)
        runs = {"real": False} | ({"real/tapped": True} if takes_focus else {})
        for prefix, tap in runs.items():
            try:
                scores = score_real_pairs(pl_module.generator, self.folder, self.short_side, apertures=self.apertures,
                                          tap=tap, aperture=takes_aperture, subject=self.subject)
            except DataLayoutError as error:
                self._warn(f"real-pair scores are off for this run: {error}")
                return
            for key in self.KEYS:
                pl_module.log(f"{prefix}/{key}", scores[key], rank_zero_only=True)


class PortraitMatteScores(pl.Callback):
    """The matte's IoU with the subject mask on photos with a mask and no target (portraits), after
    each validation, each photo rendered on the one road of ``bokeh.render``
    (:func:`bokeh.render.render_photo`, one pass per photo and run):
    ``portraits/matte_iou``, the matte the render used (with ``subject="auto"`` the subject matte and
    the model's together, as ``python -m bokeh.evaluate portraits=`` scores it), and
    ``portraits/model/matte_iou``, the model's own matte from the same pass; for a generator with a
    focus input also ``portraits/tapped/...`` (tapped at the mask's interior point). At ``short_side``
    (the photos are reduced to it and rendered at that size), means over the first ``count`` photos.
    A generator without a matte logs nothing.

    Args:
        folder: ``images/`` + ``masks/`` (:mod:`bokeh.data.portraits`); None switches it off. A
            missing folder is skipped with one warning (training goes on).
        short_side: the photos' short side for scoring (pixels).
        count: how many photos (sorted by name) to score; None: all.
        subject: the focus decision, ``auto`` or ``off`` (as :class:`RealPairScores`).
    """

    def __init__(self, folder: str | None = None, short_side: int = 256, count: int | None = 100, subject: str = "auto") -> None:
        self.folder = Path(folder).expanduser() if folder else None
        self.short_side, self.count, self.subject = short_side, count, subject
        self.cache: list | None = None
        self.warned = False

    def _photos(self) -> list:
        if self.cache is None:
            from bokeh.data.focus import interior_point
            from bokeh.data.portraits import list_portraits, read_portrait

            self.cache = []
            for portrait in list_portraits(self.folder)[: self.count]:
                image, mask = read_portrait(portrait, self.short_side)
                self.cache.append((image, torch.from_numpy(mask)[None, None].float(), interior_point(mask)))
        return self.cache

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        import warnings

        from bokeh.data.pairs import DataLayoutError
        from bokeh.metrics import matte_iou
        from bokeh.render.backends import GeneratorBackend
        from bokeh.render.fit import render_photo

        generator = pl_module.generator
        if self.folder is None or trainer.sanity_checking or not trainer.is_global_zero or not getattr(generator, "blend", False):
            return
        missing = _segmenter_missing(self.subject)
        try:
            if missing:
                raise ValueError(f"subject={self.subject}: {missing}")
            photos = self._photos()
        except (DataLayoutError, ValueError) as error:
            if not self.warned:
                warnings.warn(f"portrait matte scores are off for this run: {error}", stacklevel=1)
                self.warned = True
            self.folder = None
            return
        backend = GeneratorBackend(generator)
        runs = {"portraits": False} | ({"portraits/tapped": True} if generator.contract.focus else {})
        for prefix, tap in runs.items():
            used, own = [], []
            for image, mask, point in photos:
                rendered = render_photo(image, backend, focus=point if tap else None, subject=self.subject, short_side=None)
                used.append(matte_iou(rendered.matte[None], mask))
                own.append(matte_iou(rendered.layers["matte"], mask))
            for key, scores in (("matte_iou", used), ("model/matte_iou", own)):
                values = torch.cat(scores)
                pl_module.log(f"{prefix}/{key}", float(values[torch.isfinite(values)].mean()), rank_zero_only=True)
