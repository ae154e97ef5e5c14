"""Render files and folders: inputs, output paths, safety, atomic writes, progress.

* Inputs: one image file, or every image file directly inside a folder (not its subfolders),
  in name order; suffixes :data:`bokeh.images.IMAGE_SUFFIXES` (JPEG and PNG above all).
* Outputs: ``<out>/<input file name>``: the same name and so the same format. A JPEG is written
  at ``quality`` (95) without chroma subsampling; an 8-bit RGB image always (a grayscale photo
  comes back as RGB, a 16-bit one as 8-bit). Pixels are stored upright (EXIF orientation applied
  on reading), so the output looks the way the photo is shown.
* Never overwrites an input: ``out`` may not be the input folder, and no output path may be an
  input file (checked before anything runs).
* Each output is written to a temporary file in ``out`` and renamed (:func:`bokeh.images.write_image`):
  ``out`` never holds a partial image under a final name, even after a crash or Ctrl-C.
* A file that cannot be read (corrupt, truncated, transparent, not an image) or rendered (out of
  memory) is reported, with the reason, and skipped; the rest are rendered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bokeh.images import IMAGE_SUFFIXES, ImageError, read_rgb, write_image
from bokeh.render.fit import DEFAULT_SHORT_SIDE, render_to_uint8


class RenderError(ValueError):
    """A render setting that cannot work (missing input, out = input folder, ...); says what to do."""


@dataclass
class Summary:
    """What :func:`render_files` did: outputs written, and inputs skipped with the reason."""

    rendered: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def list_inputs(source: str | os.PathLike) -> list[Path]:
    """The image files to render: ``source`` itself, or the image files directly inside the folder."""
    source = Path(source)
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise RenderError(f"input={source}: not an image file name (expected {', '.join(IMAGE_SUFFIXES)})")
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise RenderError(f"input={source}: the folder holds no image files ({', '.join(IMAGE_SUFFIXES)}); "
                              f"subfolders are not searched")
        return files
    raise RenderError(f"input={source}: no such file or folder")


def output_path(source: Path, out: Path) -> Path:
    """Where the rendering of ``source`` goes: ``out`` / the same file name."""
    return out / source.name


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links, case-insensitive disks
    except OSError:
        return False


def check_paths(source: str | os.PathLike, inputs: list[Path], out: str | os.PathLike) -> Path:
    """Refuse settings that would overwrite an input; returns ``out`` as a ``Path``.

    Raises:
        RenderError: ``out`` is a file, ``out`` is the input folder, or an output path is an input.
    """
    source, out = Path(source), Path(out)
    if out.exists() and not out.is_dir():
        raise RenderError(f"out={out} is a file; pass a folder for the rendered images")
    if source.is_dir() and _same_file(source, out):
        raise RenderError(f"out={out} is the input folder: the renders would replace the photos; pass another folder")
    for path in inputs:
        if _same_file(path, output_path(path, out)):
            raise RenderError(f"out={out}: the rendering of {path} would overwrite it; pass another folder")
    return out


def render_files(
    inputs: list[Path],
    out: str | os.PathLike,
    backend,
    short_side: int | None = DEFAULT_SHORT_SIDE,
    side_by_side: bool = False,
    quality: int = 95,
    console: Console | None = None,
) -> Summary:
    """Render every file in ``inputs`` into ``out`` (see the module doc for the rules).

    Args:
        backend: a :class:`~bokeh.render.Backend` (:func:`~bokeh.render.load_backend`).
        short_side: working resolution for torch models (:func:`bokeh.render.fit.plan_dynamic`);
            ``None`` = full resolution.
        side_by_side: write ``input | output`` (twice as wide) instead of the output alone.
        console: where progress and warnings go (default: stderr).

    Call :func:`check_paths` first; this function trusts that no output path is an input.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    summary = Summary()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=len(inputs) < 2) as progress:
        task = progress.add_task("rendering", total=len(inputs))
        for path in inputs:
            progress.update(task, description=f"rendering {path.name}")
            try:
                image = read_rgb(path)  # (H, W, 3) uint8, upright
                rendered = render_to_uint8(image, backend, short_side)
            except (ImageError, MemoryError) as error:
                reason = str(error) if isinstance(error, ImageError) else f"{path}: out of memory ({error}); try short_side=1024"
                summary.skipped.append((path, reason))
                progress.console.print(f"[yellow]skipped[/yellow] {escape(reason)}", highlight=False)
            else:
                picture = np.concatenate([image, rendered], axis=1) if side_by_side else rendered  # (H, W or 2W, 3)
                summary.rendered.append(write_image(output_path(path, out), picture, quality))
            progress.advance(task)
    return summary
