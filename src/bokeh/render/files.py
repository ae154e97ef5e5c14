"""Render files and folders: inputs, output paths, safety, atomic writes, progress.

* Inputs: one image file, or every image file directly inside a folder (not its subfolders),
  in name order; suffixes :data:`bokeh.images.IMAGE_SUFFIXES` (the JPEG family, ``.jpg .jpeg .jpe
  .jfif`` in any case, and PNG above all). Photos in formats that cannot be decoded here (HEIC,
  camera raw) are listed too, and reported as skipped with what to do; other files of the folder
  are named in the summary as not images (:func:`ignored_files`).
* Outputs: ``<out>/<input file name>``: the same name and so the same format, in sRGB and tagged
  with an sRGB ICC profile (a photo with another profile, Adobe RGB, Display P3, ProPhoto, CMYK, is
  converted to sRGB on reading: :func:`bokeh.images.to_srgb`). A JPEG is written
  at ``quality`` (95) without chroma subsampling; an 8-bit RGB image always (a grayscale photo
  comes back as RGB, a 16-bit one as 8-bit). Pixels are stored upright (EXIF orientation applied
  on reading), so the output looks the way the photo is shown.
* With ``matte=True`` each photo's matte goes beside its output as ``<out>/<stem>.matte.png``:
  8-bit gray, the photo's size and orientation, 255 = the photo's own pixel (:func:`matte_path`),
  under the same rules as the outputs below. Two photos of one stem (``a.jpg``, ``a.png``) would
  share a matte: refused before any work, as is a name that would be too long with ``.matte.png``.
* Never overwrites an input: ``out`` may not be the input folder, and no output path may be an
  input file; ``out`` must be a folder this process can write; an existing file under an output's
  name is never replaced unless ``overwrite=True`` (all checked before anything runs).
* Each output is written to a temporary file in ``out`` and renamed (:func:`bokeh.images.write_image`):
  ``out`` never holds a partial image under a final name, even after a crash or Ctrl-C.
* A file that cannot be read (corrupt, truncated, transparent, a header claiming more pixels than
  :func:`bokeh.images.max_pixels`, a format not decoded here) or rendered (out of memory, a
  runtime error) or written in its format (a side-by-side WebP wider than 16,383 px) is reported,
  with the reason, and skipped; the rest are rendered. So are entries with an image name that are not
  files (broken symbolic links, link loops, FIFOs). A failure of the output folder itself (disk
  full, permissions changed) stops the run (``OSError``): the next files would fail the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bokeh.files import OutputFolderError, OutputPlanError, check_output_folder, check_planned, existing_outputs
from bokeh.images import (IMAGE_SUFFIXES, ImageError, check_writable_size, from_tensor, is_known_image_type, not_a_file_reason, page_notes, read_rgb,
                          srgb_profile, unsupported_reason, write_image)
from bokeh.render.fit import has_matte, matte_to_uint8, render_photo


class RenderError(ValueError):
    """A render setting that cannot work (missing input, out = input folder, ...); says what to do."""


@dataclass
class Summary:
    """What :func:`render_files` did: outputs written, and inputs skipped with the reason."""

    rendered: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def list_inputs(source: str | os.PathLike) -> list[Path]:
    """The image files to render: ``source`` itself, or the photos directly inside the folder (in
    name order, hidden files left out), including formats :func:`render_files` will report as not
    decodable here (HEIC, camera raw).

    Entries with an image name that are not regular files (broken symbolic links, link loops,
    FIFOs) are listed too: :func:`render_files` reports them as skipped with the reason.

    Raises:
        RenderError: no such file or folder, a single file that cannot be read as an image, or a
            folder without any image this can read.
    """
    source = Path(source)
    if not source.is_dir() and os.path.lexists(source) and not_a_file_reason(source) is not None:
        raise RenderError(f"input={source}: {not_a_file_reason(source)}; pass a photo or a folder")
    if source.is_file():
        problem = unsupported_reason(source)
        if problem is not None:
            raise RenderError(f"input={source}: {problem[0]}; {problem[1]}")
        return [source]
    if source.is_dir():
        try:
            files = sorted(p for p in source.iterdir() if not p.is_dir() and is_known_image_type(p) and not p.name.startswith("."))
        except OSError as error:  # no permission to list it, an I/O error
            raise RenderError(f"input={source}: the folder cannot be read ({error.strerror or error}); make it readable "
                              f"(chmod u+rx) or copy the photos somewhere you can read") from None
        if not any(unsupported_reason(p) is None for p in files):
            found = f" (only {', '.join(sorted({p.suffix for p in files}))} files, which cannot be decoded here)" if files else ""
            raise RenderError(f"input={source}: the folder holds no image files this can read{found}; "
                              f"readable: {', '.join(IMAGE_SUFFIXES)}; subfolders are not searched")
        return files
    raise RenderError(f"input={source}: no such file or folder")


def ignored_files(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """What a folder ``source`` holds besides the photos of :func:`list_inputs`, each with the
    reason it is not rendered (not an image; a subfolder, not searched). Hidden entries are left
    out. Empty for a file ``source``."""
    source = Path(source)
    if not source.is_dir():
        return []
    ignored = []
    for path in sorted(source.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            ignored.append((path, "a folder: subfolders are not searched"))
        elif not is_known_image_type(path):
            ignored.append((path, unsupported_reason(path)[0]))
    return ignored


def output_path(source: Path, out: Path) -> Path:
    """Where the rendering of ``source`` goes: ``out`` / the same file name."""
    return out / source.name


MATTE_SUFFIX = ".matte.png"


def matte_path(source: Path, out: Path) -> Path:
    """Where the matte of ``source`` goes with ``matte=true``: ``out`` / ``<stem>.matte.png``."""
    return out / (source.stem + MATTE_SUFFIX)


def output_paths(source: Path, out: Path, matte: bool = False) -> list[Path]:
    """Every file the rendering of ``source`` writes: the output, and its matte with ``matte``."""
    return [output_path(source, out)] + ([matte_path(source, out)] if matte else [])


def planned_outputs(inputs: list[Path], out: Path, matte: bool = False) -> list[tuple[Path, str]]:
    """``(path, what)`` of every file rendering ``inputs`` writes (:func:`bokeh.files.check_planned`)."""
    planned = []
    for path in inputs:
        planned.append((output_path(path, out), f"the render of {path.name}"))
        if matte:
            planned.append((matte_path(path, out), f"the matte of {path.name}"))
    return planned


def check_matte(backend, label: str, subject: str = "off") -> None:
    """``matte=true`` needs a matte to write: a model with one, or ``subject="auto"`` (the subject matte,
    or the user's): :class:`RenderError` in one sentence otherwise (``label`` names the model, e.g.
    ``ckpt=model.onnx``)."""
    if subject == "off" and not has_matte(backend):
        raise RenderError(f"matte=true: {label} has no matte output (a model trained without model.blend=true, or "
                          f"exported before the matte) and subject=off; leave matte= out, use subject=auto, or a model "
                          f"with a matte, e.g. ckpt=reference")


def read_matte(path: str | os.PathLike, photo_size: tuple[int, int] | None = None) -> np.ndarray:
    """A user's matte from an image file (``focus=path/to/matte.png``): ``(H, W)`` ``uint8``, 255 = keep
    the photo sharp, 0 = the rendered blur.

    The alpha channel where the file has one that is not fully opaque, else the gray value (colour
    files are converted to gray); the EXIF orientation is applied. ``photo_size`` ``(H, W)``: the
    matte must have the photo's shape (its aspect ratio within 2 %); it is resized to the photo
    when rendered.

    Raises:
        RenderError: a missing or unreadable file, or a matte whose shape is not the photo's (one sentence).
    """
    from bokeh.images import read_gray

    path = Path(path)
    hint = "give a point (focus=0.5,0.4) or a matte image the photo's shape (gray or alpha, white = sharp)"
    if path.is_dir():
        raise RenderError(f"focus={path} is a folder; {hint}")
    if not path.is_file():
        raise RenderError(f"focus={path}: no such file; {hint}")
    try:  # the one image reader: an empty file said as empty, a multi-page file noted, EXIF orientation applied
        gray = read_gray(path)
    except ImageError as error:
        reason = "not a readable matte image (corrupt, or not an image)" if "not a readable image" in error.reason else error.reason
        raise RenderError(f"focus={path}: {reason}; {hint}") from None
    if photo_size is not None:
        (h, w), (ph, pw) = gray.shape, photo_size
        if abs((w / h) / (pw / ph) - 1.0) > 0.02:
            raise RenderError(f"focus={path}: the matte is {w} x {h} px but the photo is {pw} x {ph} px; a matte must "
                              f"have the photo's shape (any size of it)")
    return np.ascontiguousarray(gray)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symbolic link loop: it is no file that could be overwritten
        return False
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links, case-insensitive disks
    except OSError:
        return False


def check_paths(source: str | os.PathLike, inputs: list[Path], out: str | os.PathLike, overwrite: bool = False,
                matte: bool = False) -> Path:
    """Refuse settings that would overwrite an input or cannot be written; returns ``out`` as a ``Path``.

    ``out`` is proven writable with a probe file (:func:`bokeh.files.check_output_folder`); a folder
    created for the probe is removed again, so a run refused later leaves nothing behind.

    Raises:
        RenderError: ``out`` is a file, ``out`` is the input folder, an output path (a matte's too,
            with ``matte``) is an input, two inputs would write the same output (``a.jpg`` and
            ``a.png`` with ``matte``: both ``a.matte.png``), an output's name is longer than the file
            system allows (:func:`bokeh.files.check_planned`), an output path holds a file already
            (unless ``overwrite``), or ``out`` cannot be written (read-only, no permission).
    """
    source, out = Path(source), Path(out)
    if out.exists() and not out.is_dir():
        raise RenderError(f"out={out} is a file; pass a folder for the rendered images")
    if source.is_dir() and _same_file(source, out):
        raise RenderError(f"out={out} is the input folder: the renders would replace the photos; pass another folder")
    remedy = "rename one of the photos, or render them into separate folders"
    try:  # every name the run writes, known now: no two the same, none too long
        written = check_planned(planned_outputs(inputs, out, matte), "out", remedy=remedy)
    except OutputPlanError as error:
        raise RenderError(str(error)) from None
    for path in inputs:
        for target in written:
            if _same_file(path, target):
                raise RenderError(f"out={out}: writing {target.name} would overwrite the input {path}; pass another folder")
    refused = None if overwrite else existing_outputs(written)
    if refused:
        raise RenderError(refused)
    try:
        check_output_folder(out, "out", keep=False)
    except OutputFolderError as error:
        raise RenderError(str(error)) from error
    return out


def render_files(
    inputs: list[Path],
    out: str | os.PathLike,
    backend,
    short_side: int | str | None = "auto",
    side_by_side: bool = False,
    quality: int = 95,
    console: Console | None = None,
    summary: Summary | None = None,
    focus=None,
    aperture: float | None = None,
    matte: bool = False,
    subject: str = "auto",
    user_matte: np.ndarray | None = None,
) -> Summary:
    """Render every file in ``inputs`` into ``out`` (see the module doc for the rules).

    Args:
        backend: a :class:`~bokeh.render.Backend` (:func:`~bokeh.render.load_backend`).
        short_side: working resolution for torch models (:func:`bokeh.render.fit.plan_dynamic`; ``"auto"``: :func:`bokeh.render.fit.working_short_side`);
            ``None`` = full resolution.
        side_by_side: write ``input | output`` (twice as wide) instead of the output alone.
        console: where progress and warnings go (default: stderr).
        summary: filled in place as each file is done (pass one to know what was finished when
            an exception or Ctrl-C ends the run); a new one by default.
        focus, aperture: the controls of every photo (:func:`bokeh.render.fit.render_image`):
            fractions of each photo's width and height or a :class:`~bokeh.render.fit.PixelPoint`,
            and an f-number; None: auto focus, f/1.8.
        matte: also write the matte each render used (:func:`matte_path`); there must be one
            (:func:`check_matte`).
        subject: the focus decision (:func:`bokeh.render.render_photo`): ``auto`` or ``off``.
        user_matte: the user's matte (:func:`read_matte`) for the one photo in ``inputs``, used
            instead of a point or the subject matte.

    Raises:
        OSError: an output could not be written (disk full, permissions changed); the files
            before it are complete, and no partial file is left.

    Call :func:`check_paths` first; this function trusts that no output path is an input.
    Raises :class:`RenderError` for ``matte`` with a backend without a matte (:func:`check_matte`), before any work.
    """
    if matte:
        check_matte(backend, getattr(backend, "name", "the model"), "auto" if user_matte is not None else subject)  # RenderError
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    summary = Summary() if summary is None else summary
    profile = srgb_profile()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=len(inputs) < 2) as progress:
        task = progress.add_task("rendering", total=len(inputs))
        for path in inputs:
            progress.update(task, description=f"rendering {path.name}")
            try:
                problem = unsupported_reason(path)
                if problem is not None:
                    raise ImageError(path, *problem)
                with page_notes(lambda line: progress.console.print(escape(line), highlight=False)):  # a multi-page TIFF: said once
                    image = read_rgb(path)  # (H, W, 3) uint8, upright, sRGB
                check_writable_size(output_path(path, out), (image.shape[0], image.shape[1] * (2 if side_by_side else 1)))
                done = render_photo(image, backend, focus=focus, aperture=aperture, subject=subject, matte=user_matte,
                                    short_side=short_side)
                rendered = from_tensor(done.image)
                picture = np.concatenate([image, rendered], axis=1) if side_by_side else rendered  # (H, W or 2W, 3)
                if matte:  # the matte first: an output on disk always has its matte beside it
                    write_image(matte_path(path, out), matte_to_uint8(done.matte))
                summary.rendered.append(write_image(output_path(path, out), picture, quality, icc_profile=profile))
            except OSError:
                raise  # the output folder failed (disk full, permissions): every later file would too
            except Exception as error:  # noqa: BLE001  this file's problem: report it, render the rest
                summary.skipped.append((path, _reason(path, error)))
                progress.console.print(f"[yellow]skipped[/yellow] {escape(summary.skipped[-1][1])}", highlight=False)
            progress.advance(task)
    return summary


def _reason(path: Path, error: Exception) -> str:
    """Why ``path`` was skipped, for the report (naming the file)."""
    if isinstance(error, ImageError):
        return str(error)
    if isinstance(error, MemoryError):
        return f"{path}: out of memory ({error}); try short_side=1024"
    if isinstance(error, ValueError) and path.name in str(error):
        return str(error)  # already names the file (check_writable_size)
    return f"{path}: could not be rendered ({type(error).__name__}: {error})"
