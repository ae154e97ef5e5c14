"""Writing a generated data set folder, shared by the synthetic and the photo-pair writers.

* :func:`prepare_folder`: a non-empty folder is never written into without ``overwrite``; the old
  ``meta.json`` goes first, so a folder being (re)written never looks finished, then the old pairs.
* :func:`unfinished_set_reason`: what every reader asks first: is a generated set what its
  ``meta.json`` says (finished, holding exactly its own pairs)?
* :func:`run_jobs`: one job per pair, in this process or a pool of worker processes; Ctrl-C lets
  the running jobs finish (complete files) and cancels the rest, with no worker traceback.
* :func:`write_meta`: ``meta.json`` written last and atomically: its presence marks a finished set.
* :func:`ensure_folder`: a set made once: reused when its ``meta.json`` matches, otherwise written
  to a temporary sibling and renamed into place, so an interrupted or concurrent run never leaves
  a half-written set under the final name.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from bokeh.cli import ignoring_interrupts, json_text, write_text_atomic
from bokeh.data.layout import COC_DIR, F_NUMBERS, INPUT_DIR

META = "meta.json"


def prepare_folder(out: str | Path, overwrite: bool, subfolders: Iterable[str]) -> Path:
    """Make ``out`` and its ``subfolders`` ready to write into. Over an earlier set
    (``overwrite``), its ``meta.json`` goes first (the folder never looks finished), then its
    ``f_numbers.json`` and every file in ``subfolders``: no stale pair of the old set is left to be
    read as one of the new.

    Raises:
        FileExistsError: ``out`` exists, is not empty, and ``overwrite`` is false.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty: choose a new folder, or pass overwrite=true to write into it")
    (out / META).unlink(missing_ok=True)
    (out / F_NUMBERS).unlink(missing_ok=True)
    for name in subfolders:
        folder = out / name
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() or path.is_symlink():
                    path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    return out


#: The sets this project writes: ``meta.json``'s ``generator`` -> the command that writes them.
GENERATORS = {"bokeh.data.photo_pairs": "python -m bokeh.data.photo_pairs", "bokeh.data.synthetic": "python -m bokeh.data.synthesize"}


def unfinished_set_reason(root: str | Path) -> str | None:
    """``None`` unless ``root`` is a generated set (:data:`GENERATORS`) that is not what its
    metadata says: then the sentence saying so. Every reader of pairs asks this first.

    A set with a ``coc/`` folder (only generators write one) but no ``meta.json`` was interrupted
    (or is being written); a finished one must hold exactly the pairs its ``meta.json`` counts, and
    its ``f_numbers.json`` must name exactly those pairs (a photo-pair set always has one).
    """
    root = Path(root)
    if not (root / META).is_file():
        if (root / COC_DIR).is_dir():
            return (f"{root} is an unfinished generated set (a {COC_DIR}/ folder but no {META}: it was interrupted or is "
                    f"still being written): write it again with overwrite=true")
        return None
    try:
        meta = json.loads((root / META).read_text())
        generator = meta.get("generator")
    except (OSError, ValueError, AttributeError) as error:
        return f"{root / META} cannot be read ({error}): write the set again with overwrite=true"
    if generator not in GENERATORS:
        return None
    again = f"write it again with {GENERATORS[generator]} ... overwrite=true"
    names = {p.stem for p in (root / INPUT_DIR).iterdir() if p.is_file() and not p.name.startswith(".")} if (root / INPUT_DIR).is_dir() else set()
    if generator == "bokeh.data.synthetic":
        start, n = int(meta.get("start", 0)), int(meta.get("n", -1))
        wanted = {str(i) for i in range(start, start + n)}
    else:
        wanted = None
    count = len(wanted) if wanted is not None else meta.get("pairs")
    if len(names) != count or (wanted is not None and names != wanted):
        return f"{root} holds {len(names)} pairs but its {META} says {count}: pairs of another set are mixed in or missing; {again}"
    f_numbers = root / F_NUMBERS
    if f_numbers.is_file() or generator == "bokeh.data.photo_pairs":
        try:
            listed = set(json.loads(f_numbers.read_text()))
        except (OSError, ValueError, TypeError) as error:
            return f"{f_numbers} cannot be read ({error}): {again}"
        if listed != names:
            odd = sorted(listed ^ names)[0]
            return f"{f_numbers} and the pairs in {root / INPUT_DIR} disagree (e.g. {odd}): {again}"
    return None


def _ignore_interrupts_in_worker() -> None:
    """Worker processes leave Ctrl-C to the main process, which lets running jobs finish and
    cancels the rest: no worker traceback, no half-written pair."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_jobs(function: Callable, jobs: dict[Hashable, tuple], workers: int, done: Callable[[Hashable, object], None]) -> None:
    """Call ``function(*args)`` for every ``key: args`` of ``jobs`` and ``done(key, result)`` as each
    finishes (in completion order with ``workers > 1``).

    A job's exception goes on (the rest are cancelled). On Ctrl-C the jobs running in workers
    finish, their ``done`` is called, the others are cancelled, and the ``KeyboardInterrupt`` goes on.
    """
    if workers <= 1:
        for key, args in jobs.items():
            done(key, function(*args))
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_ignore_interrupts_in_worker)
    reported = set()
    try:
        futures = {pool.submit(function, *args): key for key, args in jobs.items()}
        for future in as_completed(futures):
            result = future.result()
            reported.add(futures[future])
            done(futures[future], result)
    except BaseException:  # Ctrl-C: jobs being run finish (complete files), the rest is cancelled
        with ignoring_interrupts():
            pool.shutdown(wait=True, cancel_futures=True)
            for future, key in futures.items():
                if key not in reported and future.done() and not future.cancelled() and future.exception() is None:
                    done(key, future.result())
        raise
    pool.shutdown(wait=True)


def write_meta(out: str | Path, meta: dict) -> Path:
    """``out/meta.json`` written atomically (last: it marks a finished set)."""
    return write_text_atomic(Path(out) / META, json_text(meta, indent=1) + "\n")


def plain(value: object) -> object:
    """``value`` as JSON gives it back (tuples as lists), for comparing with a ``meta.json``."""
    return json.loads(json.dumps(value))


def ensure_folder(folder: str | Path, wanted: dict, write: Callable[[Path], object], what: str, setting: str = "folder") -> Path:
    """``folder`` holding the set whose ``meta.json`` has the entries of ``wanted``, made once by
    ``write(temporary_folder)`` (which must end by writing ``meta.json``).

    Raises:
        FileExistsError: ``folder`` exists but holds something else (``what`` names the set,
            ``setting`` the option that chose the folder).
    """
    folder = Path(folder)
    meta = folder / META
    wanted = plain(wanted)
    if meta.is_file() and all(json.loads(meta.read_text()).get(k) == v for k, v in wanted.items()):
        return folder
    if folder.exists():
        raise FileExistsError(f"{folder} exists but does not hold this {what} (meta.json missing or different): remove it or choose another {setting}")
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write(temporary)
    except BaseException:  # Ctrl-C while the set is made: no half-written set is left behind
        with ignoring_interrupts():
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    try:
        os.rename(temporary, folder)
    except OSError:  # another process finished first: use its copy
        shutil.rmtree(temporary, ignore_errors=True)
        if not meta.is_file():
            raise
    return folder
