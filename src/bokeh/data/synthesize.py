"""Write a synthetic data set in the EBB! layout.

    python -m bokeh.data.synthesize out=DIR n=200 size=512x768 seed=0

writes ``DIR/original/<i>.jpg`` (sharp), ``DIR/bokeh/<i>.jpg`` (wide aperture) and
``DIR/coc/<i>.png`` (the blur radius rendered at each pixel, :mod:`bokeh.data.coc`) for
``i = start .. start + n - 1``, and ``DIR/meta.json`` last (its presence marks a finished set).
Other keys: ``start=0``, ``noise=0.01`` (largest noise std, in [0, 1] units), ``quality=95``
(JPEG), ``workers=2`` (processes), ``overwrite=false`` (allow writing into a non-empty folder).
An existing non-empty folder is never written into unless ``overwrite=true``; an unwritable one is
refused before anything is rendered (exit status 2). Ctrl-C stops with one line saying how many
pairs were written (exit status 130); every file in the folder is complete, and ``meta.json`` is
missing, so the set does not count as finished.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from bokeh.cli import EXIT_SETTINGS, OutputFolderError, check_output_folder, ignoring_interrupts, interruptible, parse_bool
from bokeh.data.coc import write_coc
from bokeh.data.layout import COC_DIR, F_NUMBERS, INPUT_DIR, TARGET_DIR
from bokeh.data.synthetic import GENERATOR_VERSION, make_pair, scene_config
from bokeh.images import write_image

USAGE = "usage: python -m bokeh.data.synthesize out=DIR [n=200] [size=512x768] [seed=0] [start=0] [noise=0.01] [quality=95] [workers=2] [overwrite=false]"
DEFAULTS = {"out": None, "n": 200, "size": (512, 768), "seed": 0, "start": 0, "noise": 0.01, "quality": 95, "workers": 2, "overwrite": False}


def parse_size(text: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)`` (height x width)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like HEIGHTxWIDTH, e.g. 512x768, got {text!r}") from None
    if height < 16 or width < 16:
        raise ValueError(f"size must be at least 16x16, got {text!r}")
    if max(height, width) > 65500:
        raise ValueError(f"size {text!r}: JPEG files hold at most 65500 px a side")
    return height, width


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments into typed settings; a clear ``ValueError`` for anything wrong."""
    settings = dict(DEFAULTS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in DEFAULTS:
            raise ValueError(f"unknown argument {arg!r}; valid keys: {', '.join(DEFAULTS)}")
        try:
            if key == "out":
                settings[key] = Path(value)
            elif key == "size":
                settings[key] = parse_size(value)
            elif key == "noise":
                settings[key] = float(value)
            elif key == "overwrite":
                settings[key] = parse_bool(key, value)
            else:
                settings[key] = int(value)
        except ValueError as error:
            raise ValueError(f"bad value for {key}: {value!r}" + (f" ({error})" if str(error) else "")) from None
    if settings["out"] is None or str(settings["out"]) == "":
        raise ValueError("out=DIR is required (the folder to write original/ and bokeh/ into)")
    if settings["n"] < 1 or settings["start"] < 0 or settings["workers"] < 1:
        raise ValueError("n and workers must be >= 1 and start >= 0")
    if not 1 <= settings["quality"] <= 100 or settings["noise"] < 0:
        raise ValueError("quality must be in 1..100 and noise >= 0")
    return settings


def _write_one(out: Path, index: int, seed: int, size: tuple[int, int], noise: float, quality: int, scene: dict | None = None) -> float:
    """Write pair ``index``; returns the target's f-number."""
    pair = make_pair(index, seed=seed, size=size, noise=noise, config=scene_config(scene))
    write_image(out / INPUT_DIR / f"{index}.jpg", pair.sharp, quality)
    write_image(out / TARGET_DIR / f"{index}.jpg", pair.bokeh, quality)
    write_coc(out / COC_DIR / f"{index}.png", pair.blur_radius)
    return pair.scene.lens.f_number


def _ignore_interrupts_in_worker() -> None:
    """Worker processes leave Ctrl-C to the main process, which lets running pairs finish and
    cancels the rest: no worker traceback, no half-written pair."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty: choose a new folder, or pass overwrite=true to write into it")
    (out / INPUT_DIR).mkdir(parents=True, exist_ok=True)
    (out / TARGET_DIR).mkdir(parents=True, exist_ok=True)
    (out / COC_DIR).mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    indices = range(start, start + n)
    scene = dict(scene or {})
    scene_config(scene)  # unknown keys fail now, not in a worker
    args = (seed, tuple(size), noise, quality, scene)
    f_numbers: dict[str, float] = {}
    if workers <= 1:
        for index in indices:
            f_numbers[str(index)] = _write_one(out, index, *args)
            written.append(index)
    else:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_ignore_interrupts_in_worker)
        try:
            futures = {pool.submit(_write_one, out, index, *args): index for index in indices}
            for future in as_completed(futures):
                f_numbers[str(futures[future])] = future.result()
                written.append(futures[future])
        except BaseException:  # Ctrl-C: pairs being written finish (complete files), the rest is cancelled
            with ignoring_interrupts():
                pool.shutdown(wait=True, cancel_futures=True)
            done = [i for f, i in futures.items() if f.done() and not f.cancelled() and f.exception() is None]
            written.extend(i for i in done if i not in written)
            raise
        pool.shutdown(wait=True)
    if len(set(f_numbers.values())) > 1:  # the aperture control's data: each target's f-number
        (out / F_NUMBERS).write_text(json.dumps(dict(sorted(f_numbers.items(), key=lambda kv: int(kv[0]))), indent=0) + "\n")
    meta = {"generator": "bokeh.data.synthetic", "version": GENERATOR_VERSION, "n": n, "start": start, "size": list(size), "seed": seed, "noise": noise, "quality": quality, "scene": _plain(scene)}
    temporary = out / ".meta.json.tmp"
    temporary.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(temporary, out / "meta.json")
    return out


def _plain(scene: dict | None) -> dict:
    """Scene overrides as JSON would give them back (tuples as lists), for comparing with meta.json."""
    return json.loads(json.dumps(dict(scene or {})))


def ensure_dataset(folder: str | Path, **settings) -> Path:
    """``folder`` holding the set described by ``settings`` (:func:`write_dataset`'s keys), made once.

    A finished folder (its ``meta.json`` matches) is reused; otherwise the set is written to a
    temporary sibling and renamed into place, so concurrent or interrupted runs never leave a
    half-written set under ``folder``.
    """
    folder = Path(folder)
    settings = {"workers": 1, **settings}
    wanted = {"version": GENERATOR_VERSION, "n": settings["n"], "start": settings.get("start", 0), "size": list(settings["size"]), "seed": settings["seed"], "noise": settings["noise"], "quality": settings["quality"], "scene": _plain(settings.get("scene"))}
    meta = folder / "meta.json"
    if meta.is_file() and all(json.loads(meta.read_text()).get(k) == v for k, v in wanted.items()):
        return folder
    if folder.exists():
        raise FileExistsError(f"{folder} exists but does not hold this synthetic set (meta.json missing or different): remove it or choose another cache_dir")
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write_dataset(temporary, **settings)
    except BaseException:  # Ctrl-C while the set is made: no half-written set is left behind
        with ignoring_interrupts():
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    try:
        os.rename(temporary, folder)
    except OSError:  # another process finished first: use its copy
        shutil.rmtree(temporary, ignore_errors=True)
        if not (folder / "meta.json").is_file():
            raise
    return folder


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__.strip() + "\n\n" + USAGE)
        return 0
    written: list[int] = []
    try:
        settings = parse_args(argv)
        check_output_folder(settings["out"], "out", keep=False)
        started = time.perf_counter()
        with interruptible("bokeh.data.synthesize", lambda: (
                f"{len(written)} of {settings['n']} pairs written to {settings['out']} (each complete); no meta.json, "
                f"so it is not a finished set: rerun with overwrite=true")):
            out = write_dataset(**settings, written=written)
    except (ValueError, FileExistsError, OutputFolderError) as error:
        print(f"error: {error}\n{USAGE}", file=sys.stderr)
        return EXIT_SETTINGS
    except SystemExit as exit_:  # interrupted: the line is printed
        return int(exit_.code)
    seconds = time.perf_counter() - started
    height, width = settings["size"]
    print(f"wrote {settings['n']} pairs of {height}x{width} to {out} in {seconds:.1f} s ({settings['n'] / seconds:.2f} pairs/s, {settings['workers']} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
