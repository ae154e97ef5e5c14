"""``python -m bokeh.render input=<file|folder> ckpt=<.ckpt|.onnx|.tflite> out=<folder> [options]``

Options (``key=value``; ``--side-by-side`` is accepted for ``side_by_side=true``):

* ``side_by_side=false``: write ``input | output`` side by side instead of the output alone.
* ``short_side=auto``: torch models run with the photo's short side at most this many pixels and
  the result is upsampled to the photo's size (in-focus detail restored); ``auto`` is the scale a
  shipped model was trained at (256 for ``reference``), else 1024; ``short_side=full`` runs at full resolution
  (memory and time grow with the pixel count: see the README). Exported models (``.onnx``,
  ``.tflite``) always run at their static export size, whatever this says.
* ``quality=95``: JPEG quality of the outputs.
* ``threads=0``: CPU threads (0: every core).
* ``value_range=auto``: exported models only: ``signed`` / ``pixel`` (auto: what the file says, stored
  at export, else its ``report.json``; a file that says neither is refused).
* ``precision=auto``: torch checkpoints only: ``bf16`` where the CPU computes bf16 natively (AMX or
  AVX512-BF16), ``fp32`` elsewhere; ``fp32`` / ``bf16`` force one (bf16 is slow where emulated).
  The choice made is printed.
* ``accelerator=cpu``: ``gpu`` runs a ``.tflite`` model on LiteRT's GPU accelerator alone (needs a
  Vulkan adapter; without one, or for a model with ops the GPU does not run, it stops with the reason).
* ``overwrite=false``: an existing file under an output's name (``out/<input name>``, and
  ``out/<stem>.matte.png`` with ``matte=true``) is not replaced: the run is refused before any
  work, naming it; ``overwrite=true`` replaces it.
* ``subject=auto``: what stays sharp. ``auto``: a subject matte (MediaPipe's selfie segmenter, which
  ships in the ``mediapipe`` package) and the model's own matte decide together, composited at the
  photo's size; ``off``: the model alone (the paper's prior-free BGGAN, as before the subject matte).
* ``matte=false``: ``true`` also writes the matte each render used beside its output,
  ``out/<stem>.matte.png``: 8-bit gray at the photo's size and orientation, 255 where the output is
  the photo's own pixel (in focus), 0 where it is the rendered blur. With ``subject=off``, models
  with a matte only (``ckpt=reference``, or a model trained with ``model.blend=true``, and its
  exports); refused for others before any work.
* ``focus=X,Y``: the point to focus on ("tap to focus"), as fractions of each photo's width and
  height (``focus=0.5,0.4``: the middle, a little above the centre), or in pixels from the photo's
  top-left corner (``focus=640px,480px``); default: the model decides (auto). With ``subject=auto``
  the subject under the tap stays sharp (where the tap is outside every subject, the model's tapped
  matte decides). Models trained with a focus input only (``ckpt=`` with ``model.focus_input=true``,
  or an export of one).
* ``focus=path/to/matte.png``: your own matte for one photo (``input=`` a file): a gray image (or
  the alpha channel of one with transparency) of the photo's shape, white = keep sharp, black = the
  rendered blur; any model.
* ``aperture=F``: the f-number to render (``aperture=2.8``, ``f/2.8`` too): larger = less blur;
  default f/1.8, the lens of the training targets. Models trained with an aperture input only.
  A bad value (a point outside a photo, f/0, a negative or NaN f-number, ``focus=abc``) or a control
  the model does not take is refused in one sentence, exit 2, before any work.
* ``max_pixels=178956970``: images whose header claims more pixels are skipped as possible
  decompression bombs (Pillow's limit); raise it for a trusted huge file, ``none`` for no limit.

Files of a folder that are not rendered are named at the end with the reason: images that could
not be read or rendered (skipped), other files (not images; subfolders are not searched).

Exit status: 0 when every photo was rendered, 1 when some were skipped (each reported with the
reason; the others are rendered) or an output could not be written, 2 for bad settings (refused
before anything runs), 130 when interrupted (Ctrl-C; 143 for SIGTERM, 129 for SIGHUP; the outputs
written so far are complete, and no temporary file is left).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from rich.console import Console

USAGE = ("usage: python -m bokeh.render input=<file or folder> ckpt=<.ckpt | .onnx | .tflite> out=<folder> "
         "[side_by_side=false] [short_side=auto|N|full] [quality=95] [threads=0] [value_range=auto|signed|pixel] "
         "[max_pixels=N|none] [accelerator=cpu|gpu] [precision=auto|fp32|bf16] [overwrite=false] "
         "[focus=X,Y|Xpx,Ypx|matte.png] [aperture=F] [matte=false] [subject=auto|off]")
DEFAULTS = {"input": None, "ckpt": None, "out": None, "side_by_side": "false", "short_side": "auto",
            "quality": "95", "threads": "0", "value_range": "auto", "max_pixels": "default", "accelerator": "cpu",
            "precision": "auto", "overwrite": "false", "focus": None, "aperture": None, "matte": "false",
            "subject": "auto"}
FLAGS = {"--side-by-side": ("side_by_side", "true"), "--side_by_side": ("side_by_side", "true")}
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class UsageError(ValueError):
    """A command-line argument that is missing or wrong."""


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments (``--key=value`` too, and the flag ``--side-by-side``) into typed settings."""
    raw = dict(DEFAULTS)
    for arg in argv:
        if arg in FLAGS:
            key, value = FLAGS[arg]
        else:
            key, sep, value = arg.lstrip("-").partition("=")
            key = key.replace("-", "_")
            if not sep or key not in DEFAULTS:
                raise UsageError(f"unknown argument {arg!r}")
        raw[key] = value
    missing = [key for key in ("input", "ckpt", "out") if not raw[key]]
    if missing:
        raise UsageError(f"missing {', '.join(k + '=' for k in missing)}")
    settings = {"input": Path(raw["input"]), "ckpt": Path(raw["ckpt"]), "out": Path(raw["out"]),
                "value_range": raw["value_range"], "accelerator": raw["accelerator"].lower(),
                "precision": raw["precision"].lower()}
    from bokeh.inference import PRECISIONS

    if settings["precision"] not in PRECISIONS:
        raise UsageError(f"precision={raw['precision']!r}: one of {', '.join(PRECISIONS)} (default auto)")
    side = raw["side_by_side"].lower()
    if side not in TRUE + FALSE:
        raise UsageError(f"side_by_side={raw['side_by_side']!r}: use true or false")
    settings["side_by_side"] = side in TRUE
    overwrite = raw["overwrite"].lower()
    if overwrite not in TRUE + FALSE:
        raise UsageError(f"overwrite={raw['overwrite']!r}: use true or false")
    settings["overwrite"] = overwrite in TRUE
    matte = raw["matte"].lower()
    if matte not in TRUE + FALSE:
        raise UsageError(f"matte={raw['matte']!r}: use true or false")
    settings["matte"] = matte in TRUE
    from bokeh.render.fit import SUBJECT_MODES

    settings["subject"] = raw["subject"].lower()
    if settings["subject"] not in SUBJECT_MODES:
        raise UsageError(f"subject={raw['subject']!r}: auto (a subject matte and the model decide what stays sharp, the "
                         f"default) or off (the model alone)")
    short = raw["short_side"].lower()
    if short == "auto":
        settings["short_side"] = "auto"
    elif short in ("full", "none", "0"):
        settings["short_side"] = None
    elif short.isdigit() and int(short) >= 8:
        settings["short_side"] = int(short)
    else:
        raise UsageError(f"short_side={raw['short_side']!r}: a number of pixels >= 8, 'auto' (default) or 'full'")
    for key, low, high in (("quality", 1, 100), ("threads", 0, 1024)):
        if not raw[key].isdigit() or not low <= int(raw[key]) <= high:
            raise UsageError(f"{key}={raw[key]!r}: a whole number from {low} to {high}")
        settings[key] = int(raw[key])
    limit = raw["max_pixels"].lower().replace("_", "").replace(",", "")
    if limit == "default":
        settings["max_pixels"] = "default"
    elif limit == "none":
        settings["max_pixels"] = None
    elif limit.isdigit() and int(limit) > 0:
        settings["max_pixels"] = int(limit)
    else:
        raise UsageError(f"max_pixels={raw['max_pixels']!r}: a number of pixels (width x height), or 'none' for no limit")
    settings["focus"] = None if raw["focus"] is None else parse_focus(raw["focus"])
    settings["aperture"] = None if raw["aperture"] is None else parse_aperture(raw["aperture"])
    return settings


def parse_focus(text: str):
    """``"0.5,0.4"`` -> fractions ``(0.5, 0.4)`` (checked: in [0, 1]); ``"640px,480px"`` -> a
    :class:`~bokeh.render.fit.PixelPoint` (checked against each photo's size later, before any work);
    a file name (no comma, an image suffix, or an existing file) -> its ``Path``: a user's matte.

    Raises:
        ControlError: not two numbers, mixed units, or a fraction outside [0, 1].
    """
    import math

    from bokeh.models.controls import ControlError, check_focus
    from bokeh.render.fit import PixelPoint

    from bokeh.images import is_known_image_type

    if "," not in str(text) and (is_known_image_type(Path(text)) or Path(text).is_file()):
        return Path(text)
    parts = [part.strip().lower() for part in str(text).split(",")]
    pixels = [part.endswith("px") for part in parts]
    if len(parts) == 2 and all(pixels):
        try:
            x, y = (float(part[:-2]) for part in parts)
        except ValueError:
            x = y = math.nan
        if math.isfinite(x) and math.isfinite(y):
            return PixelPoint(x, y)
    elif len(parts) == 2 and not any(pixels):
        return check_focus(parts)
    raise ControlError(f"focus={text!r} is not a point: give x,y as fractions of the photo's width and height "
                       f"(focus=0.5,0.4) or as pixels from its top-left corner (focus=640px,480px)")


def parse_aperture(text: str) -> float:
    """``"2.8"`` or ``"f/2.8"`` -> 2.8 (:func:`bokeh.models.controls.check_aperture`: ``ControlError`` for
    f/0, negatives, NaN, text)."""
    from bokeh.models.controls import check_aperture

    value = str(text).strip()
    match = re.fullmatch(r"[fF]/?(\d.*)", value)
    return check_aperture(match.group(1) if match else value)


def check_focus_pixels(focus, inputs: list[Path]) -> None:
    """A :class:`~bokeh.render.fit.PixelPoint` must lie inside every photo (header sizes, EXIF
    orientation applied): ``ControlError`` naming the first photo it misses. Files whose header
    cannot be read are left to the render, which reports and skips them."""
    from bokeh.images import ImageError, read_size
    from bokeh.models.controls import ControlError
    from bokeh.render.fit import PixelPoint

    if not isinstance(focus, PixelPoint):
        return
    for path in inputs:
        try:
            size = read_size(path)
        except (ImageError, OSError):
            continue
        try:
            focus.fractions(size)
        except ControlError as error:
            raise ControlError(f"{path}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 all rendered, 1 some skipped, 2 bad settings, 130 Ctrl-C)."""
    from bokeh.cli import EXIT_OK, interruptible

    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return EXIT_OK
    try:  # Ctrl-C: one line saying what was finished (bokeh.cli.interruptible), exit status 130
        with interruptible("bokeh.render", lambda: "nothing was rendered"):
            prepared = _prepare(argv)
        if isinstance(prepared, int):
            return prepared
        return _render(*prepared)
    except SystemExit as exit_:
        return int(exit_.code)


def _render(settings: dict, inputs: list[Path], ignored: list[tuple[Path, str]], out: Path, backend) -> int:
    """Render ``inputs``, print the summary (what was not rendered, and why); the exit status."""
    from bokeh.cli import EXIT_OK, EXIT_SKIPPED, interruptible
    from bokeh.models.controls import REFERENCE_F_NUMBER
    from bokeh.render.files import Summary, render_files

    console = Console(stderr=True)
    if backend.static_size is None:  # torch: its name says the precision it computes in
        console.print(f"{backend.name}: each photo at its size (short side capped by short_side=), padded to a "
                      f"multiple of 8", highlight=False)
    else:
        h, w = backend.static_size
        console.print(f"{backend.name}: static input {h} x {w}; each photo is fitted to it "
                      f"(turned if its orientation differs) and the result resized back", highlight=False)
    if settings["user_matte"] is not None:
        console.print("focus: your matte decides what stays sharp", highlight=False)
    elif settings["subject"] == "auto":
        console.print("subject=auto: a subject matte (MediaPipe's selfie segmenter) and the model's own decide what stays sharp",
                      highlight=False)
    if backend.contract.controls:
        focus, aperture = settings["focus"], settings["aperture"]
        where = "auto (the model decides)" if focus is None else (
            f"{focus.x:g}px, {focus.y:g}px" if hasattr(focus, "fractions") else f"{focus[0]:g}, {focus[1]:g} of the width, height")
        console.print(f"controls: focus {where}; aperture f/{aperture if aperture is not None else REFERENCE_F_NUMBER:g}",
                      highlight=False)
    start, summary = time.perf_counter(), Summary()

    def finished() -> str:
        return f"rendered {len(summary.rendered)} of {len(inputs)} image(s) into {out}; each written file is complete"

    try:
        with interruptible("bokeh.render", finished):
            render_files(inputs, out, backend, settings["short_side"], settings["side_by_side"],
                         settings["quality"], console, summary, settings["focus"], settings["aperture"], settings["matte"],
                         settings["subject"], settings["user_matte"])
    except OSError as error:  # writing an output failed: every later file would too
        print(f"bokeh.render: stopped: could not write into out={out} ({error.strerror or error}); {finished()}", file=sys.stderr)
        return EXIT_SKIPPED
    seconds = time.perf_counter() - start
    console.print(f"rendered {len(summary.rendered)} of {len(inputs)} image(s) into {out} in {seconds:.1f} s", highlight=False)
    if ignored:
        console.print(f"not rendered, not images ({len(ignored)}):")
        for path, reason in ignored:
            console.print(f"  {path.name}: {reason}", highlight=False, markup=False)
    if summary.skipped:
        console.print(f"[yellow]skipped {len(summary.skipped)}:[/yellow]")
        for path, _reason in summary.skipped:  # each reason was printed when the file was skipped
            console.print(f"  {path}", highlight=False, markup=False)
        return EXIT_SKIPPED
    return EXIT_OK


def _prepare(argv: list[str]):
    """Settings, inputs, ignored files, out folder and backend; or an exit status after printing why."""
    from bokeh.checkpoint import CheckpointError
    from bokeh.cli import EXIT_SETTINGS
    from bokeh.images import set_max_pixels
    from bokeh.models.controls import ControlError, InputContract
    from bokeh.render.backends import load_backend
    from bokeh.images import ImageError, read_size
    from bokeh.render.files import RenderError, check_matte, check_paths, ignored_files, list_inputs, read_matte
    from bokeh.render.fit import subject_segmenter
    from bokeh.runtimes import NotFullyAccelerated, RuntimeUnavailable

    try:
        settings = parse_args(argv)
        if settings["max_pixels"] != "default":
            set_max_pixels(settings["max_pixels"])
        inputs = list_inputs(settings["input"])
        out = check_paths(settings["input"], inputs, settings["out"], settings["overwrite"], settings["matte"])
        backend = load_backend(settings["ckpt"], settings["threads"], settings["value_range"], settings["accelerator"],
                               precision=settings["precision"])
        settings["user_matte"] = None
        if isinstance(settings["focus"], Path):  # focus=matte.png: the user's own matte, for one photo
            if len(inputs) != 1 or settings["input"].is_dir():
                raise RenderError(f"focus={settings['focus']}: a matte belongs to one photo; pass input= a single photo")
            settings["user_matte"] = read_matte(settings["focus"], read_size(inputs[0]))
            settings["focus"] = None
        if settings["matte"]:
            check_matte(backend, f"ckpt={settings['ckpt']}", "auto" if settings["user_matte"] is not None else settings["subject"])
        given = [name for name in ("focus", "aperture") if settings[name] is not None]
        getattr(backend, "contract", InputContract()).check_taken(*given)
        check_focus_pixels(settings["focus"], inputs)
        if settings["subject"] == "auto" and settings["user_matte"] is None:
            subject_segmenter(backend)  # missing: one sentence now (SegmenterMissing), before any work
    except UsageError as error:
        print(f"bokeh.render: {error}\n{USAGE}", file=sys.stderr)
        return EXIT_SETTINGS
    except (ControlError, RenderError, CheckpointError, FileNotFoundError, ImageError, ValueError, RuntimeUnavailable,
            NotFullyAccelerated) as error:
        print(f"bokeh.render: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    return settings, inputs, ignored_files(settings["input"]), out, backend


if __name__ == "__main__":
    sys.exit(main())
