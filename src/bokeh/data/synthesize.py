"""Write a synthetic data set in the EBB! layout.

    python -m bokeh.data.synthesize out=DIR n=200 size=512x768 seed=0

writes ``DIR/original/<i>.jpg`` (sharp), ``DIR/bokeh/<i>.jpg`` (wide aperture) and
``DIR/coc/<i>.png`` (the blur radius rendered at each pixel, :mod:`bokeh.data.coc`) for
``i = start .. start + n - 1``, and ``DIR/meta.json`` last (its presence marks a finished set).
Other keys: ``start=0``, ``noise=0.01`` (largest noise std, in [0, 1] units), ``quality=95``
(JPEG), ``workers=2`` (processes), ``overwrite=false`` (allow writing into a non-empty folder: only
an earlier set of ours is replaced, exactly the files its ``meta.json`` lists).
An existing non-empty folder is never written into unless ``overwrite=true``; an unwritable one is
refused before anything is rendered (exit status 2). Ctrl-C stops with one line saying how many
pairs were written (exit status 130); every file in the folder is complete, and ``meta.json`` is
missing, so the set does not count as finished.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bokeh.cli import EXIT_SETTINGS, interruptible, json_text
from bokeh.data.coc import write_coc
from bokeh.data.folders import check_seed, check_set_folder, ensure_folder, finish_folder, plain, prepare_folder, run_jobs
from bokeh.data.layout import COC_DIR, F_NUMBERS, INPUT_DIR, TARGET_DIR
from bokeh.data.synthetic import GENERATOR_VERSION, make_pair, scene_config
from bokeh.files import OutputFolderError, check_output_folder, write_text_atomic
from bokeh.images import write_image

USAGE = "usage: python -m bokeh.data.synthesize out=DIR [n=200] [size=512x768] [seed=0] [start=0] [noise=0.01] [quality=95] [workers=2] [overwrite=false]"


def parse_size(text: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)`` (height x width), each side from 16 to 65500 (JPEG's limit)."""
    from bokeh.options import size

    return size(16, 65500)(text)


parse_size.describe = "HEIGHTxWIDTH in pixels, each side from 16 to 65500 (JPEG's limit)"


def options():
    """The options of ``bokeh.data.synthesize``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.options import REQUIRED, Option, boolean, integer, number, path

    return (
        Option("out", path, REQUIRED, "the folder to write original/, bokeh/ and coc/ into"),
        Option("n", integer(1), 200, "pairs"),
        Option("size", parse_size, (512, 768), "height x width of each pair"),
        Option("seed", integer(0, 2**32 - 1), 0, "the set: pair i of set s is the same on every machine"),
        Option("start", integer(0), 0, "the index of the first pair"),
        Option("noise", number(0, 1), 0.01, "largest noise standard deviation, in [0, 1] units"),
        Option("quality", integer(1, 100), 95, "JPEG quality"),
        Option("workers", integer(1, 256), 2, "processes"),
        Option("overwrite", boolean, False, "write into a non-empty folder"),
    )


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments into typed settings, each checked (:mod:`bokeh.options`); one
    ``ValueError`` sentence for anything wrong."""
    from bokeh.options import parse

    return parse(argv, options(), USAGE)[0]


#: The files of one pair: (folder, suffix) in the EBB! layout (:mod:`bokeh.data.layout`)
PAIR_FILES = ((INPUT_DIR, ".jpg"), (TARGET_DIR, ".jpg"), (COC_DIR, ".png"))


def _write_one(out: Path, index: int, seed: int, size: tuple[int, int], noise: float, quality: int, scene: dict | None = None) -> float:
    """Write pair ``index``; returns the target's f-number."""
    pair = make_pair(index, seed=seed, size=size, noise=noise, config=scene_config(scene))
    write_image(out / INPUT_DIR / f"{index}.jpg", pair.sharp, quality)
    write_image(out / TARGET_DIR / f"{index}.jpg", pair.bokeh, quality)
    write_coc(out / COC_DIR / f"{index}.png", pair.blur_radius)
    return pair.scene.lens.f_number


def write_dataset(
    out: str | Path,
    n: int = 200,
    size: tuple[int, int] = (512, 768),
    seed: int = 0,
    start: int = 0,
    noise: float = 0.01,
    quality: int = 95,
    workers: int = 1,
    overwrite: bool = False,
    scene: dict | None = None,
    written: list[int] | None = None,
) -> Path:
    """Write pairs ``start .. start + n - 1`` of set ``seed`` under ``out`` (EBB! layout); return ``out``.

    ``scene``: :class:`~bokeh.data.scene.SceneConfig` overrides (``data.scene`` in the configs).
    ``written`` (optional) receives the index of each pair once both of its files are complete.
    ``meta.json`` is written last: a folder without it (an interrupted run) is not a finished set.

    Raises:
        FileExistsError: ``out`` exists, is not empty, and ``overwrite`` is false.
    """
    written = [] if written is None else written
    check_seed(seed)  # every value is checked before the first file is touched
    if start < 0:
        raise ValueError(f"start={start}: the first pair's index is a whole number >= 0")
    scene = dict(scene or {})
    scene_config(scene)  # unknown keys fail now, not in a worker
    planned = {index: [f"{folder}/{index}{suffix}" for folder, suffix in PAIR_FILES] for index in range(start, start + n)}
    out = prepare_folder(out, overwrite, (INPUT_DIR, TARGET_DIR, COC_DIR), [F_NUMBERS, *(f for files in planned.values() for f in files)])
    args = (seed, tuple(size), noise, quality, scene)
    jobs = {index: (out, index, *args) for index in range(start, start + n)}
    f_numbers: dict[str, float] = {}

    def done(index, f_number) -> None:
        written.append(index)
        f_numbers[str(index)] = f_number

    run_jobs(_write_one, jobs, workers, done)
    if len(set(f_numbers.values())) > 1:  # the aperture control's data: each target's f-number
        write_text_atomic(out / F_NUMBERS, json_text(dict(sorted(f_numbers.items(), key=lambda kv: int(kv[0]))), indent=0) + "\n")
    files = [f for index in sorted(written) for f in planned[index]] + ([F_NUMBERS] if (out / F_NUMBERS).is_file() else [])
    finish_folder(out, {"generator": "bokeh.data.synthetic", "version": GENERATOR_VERSION, "n": n, "start": start, "size": list(size), "seed": seed, "noise": noise, "quality": quality, "scene": plain(scene)}, files)
    return out


def ensure_dataset(folder: str | Path, **settings) -> Path:
    """``folder`` holding the set described by ``settings`` (:func:`write_dataset`'s keys), made once.

    A finished folder (its ``meta.json`` matches) is reused; otherwise the set is written to a
    temporary sibling and renamed into place, so concurrent or interrupted runs never leave a
    half-written set under ``folder``.
    """
    settings = {"workers": 1, **settings}
    wanted = {"version": GENERATOR_VERSION, "n": settings["n"], "start": settings.get("start", 0), "size": list(settings["size"]), "seed": settings["seed"], "noise": settings["noise"], "quality": settings["quality"], "scene": dict(settings.get("scene") or {})}
    return ensure_folder(folder, wanted, lambda temporary: write_dataset(temporary, **settings), "synthetic set", "cache_dir")


def main(argv: list[str] | None = None) -> int:
    from bokeh.options import help_text, wants_help

    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(__doc__.strip() + "\n\n" + help_text(USAGE, options()))
        return 0
    written: list[int] = []
    try:
        settings = parse_args(argv)
        check_set_folder(settings["out"], settings["overwrite"], (INPUT_DIR, TARGET_DIR, COC_DIR))  # refused as it stands: before any probe
        check_output_folder(settings["out"], "out", keep=False)
        started = time.perf_counter()
        with interruptible("bokeh.data.synthesize", lambda: (
                f"{len(written)} of {settings['n']} pairs written to {settings['out']} (each complete); no meta.json, "
                f"so it is not a finished set: rerun with overwrite=true")):
            out = write_dataset(**settings, written=written)
    except (ValueError, FileExistsError, OutputFolderError) as error:
        print(f"bokeh.data.synthesize: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    except SystemExit as exit_:  # interrupted: the line is printed
        return int(exit_.code)
    seconds = time.perf_counter() - started
    height, width = settings["size"]
    print(f"wrote {settings['n']} pairs of {height}x{width} to {out} in {seconds:.1f} s ({settings['n'] / seconds:.2f} pairs/s, {settings['workers']} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
