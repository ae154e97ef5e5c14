"""Writing a generated data set folder, shared by the synthetic and the photo-pair writers.

* :func:`prepare_folder`: a non-empty folder is never written into without ``overwrite``, and
  with it only where it holds a set of ours: exactly the files that set's ``meta.json`` lists are
  removed (``meta.json`` first, so a folder being rewritten never looks finished), never a user's.
* :func:`finish_folder`: ``meta.json``, listing every file of the set, written last.
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

from bokeh.cli import ignoring_interrupts, json_text
from bokeh.data.layout import COC_DIR, F_NUMBERS, INPUT_DIR
from bokeh.files import write_text_atomic

META = "meta.json"


#: Hidden in a set being written: the files it will hold (and an earlier set's, being replaced), so
#: an interrupted write is known to be ours and ``overwrite=true`` can remove it, and nothing else.
MANIFEST = ".bokeh-writing.json"


def _relative_files(out: Path, subfolders: Iterable[str]) -> list[str]:
    """The visible files of ``out``'s ``subfolders`` and its ``meta.json`` / ``f_numbers.json``, relative to ``out``."""
    found = [name for name in (META, F_NUMBERS) if os.path.lexists(out / name)]
    for name in subfolders:
        folder = out / name
        if folder.is_dir():
            found += sorted(f"{name}/{p.name}" for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    return found


def files_of_set(out: str | Path, subfolders: Iterable[str]) -> set[str] | None:
    """The files (relative to ``out``) that a set this project wrote there holds; ``None`` if ``out``
    holds no such set. From its ``meta.json`` (``files``), or the :data:`MANIFEST` of a set whose
    writing was interrupted; a ``meta.json`` of ours from before the list (no ``files``) owns the
    files of its ``subfolders``."""
    out = Path(out)
    owned: set[str] | None = None
    for marker in (out / MANIFEST, out / META):
        if not marker.is_file():
            continue
        try:
            record = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if marker.name == MANIFEST and isinstance(record, list):
            owned = (owned or set()) | {str(f) for f in record}
        elif isinstance(record, dict) and record.get("generator") in GENERATORS:
            listed = record.get("files")
            owned = (owned or set()) | ({str(f) for f in listed} if isinstance(listed, list) else set(_relative_files(out, subfolders)))
    return None if owned is None else owned | {META, F_NUMBERS}


def check_seed(seed: object, setting: str = "seed") -> int:
    """``seed`` as the seed of a set: a whole number >= 0 (numpy's ``SeedSequence`` takes no
    negative one); ``ValueError`` naming the option (``seed=-1``) otherwise, before any file is touched."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{setting}={seed}: the seed of a set is a whole number >= 0, e.g. {setting}=0")
    return seed


def prepare_folder(out: str | Path, overwrite: bool, subfolders: Iterable[str], planned: Iterable[str] = ()) -> Path:
    """Make ``out`` and its ``subfolders`` ready to write a set of ``planned`` files (relative paths).

    A non-empty ``out`` is written into only with ``overwrite``, and only where it holds a set this
    project wrote (:func:`files_of_set`) and none of the set's places hold files of anyone else (a
    user's own pairs, or ``out=`` mistyped as an EBB! folder): then exactly that set's files go,
    ``meta.json`` first (the folder never looks finished). Before anything is removed or written, a
    hidden :data:`MANIFEST` lists the old set's files and the ``planned`` ones, so an interrupted
    run is known to be ours. :func:`finish_folder` ends the write.

    Raises:
        FileExistsError: ``out`` is a file; or exists, is not empty, and ``overwrite`` is false; or
            holds files no set of ours wrote where the set would go (nothing is touched).
    """
    out = Path(out)
    subfolders = tuple(subfolders)
    owned = check_set_folder(out, overwrite, subfolders)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / MANIFEST, json.dumps(sorted(owned | set(planned)), indent=0) + "\n")
    (out / META).unlink(missing_ok=True)
    removed = [out / name for name in sorted(owned - {META}) if _in_set(name, subfolders)]
    for path in removed:
        if path.is_file() or path.is_symlink():
            path.unlink()
    _remove_temporaries(out, subfolders, removed)
    for name in subfolders:
        (out / name).mkdir(parents=True, exist_ok=True)
    return out


def check_set_folder(out: str | Path, overwrite: bool, subfolders: Iterable[str]) -> set[str]:
    """What :func:`prepare_folder` refuses, checked without touching anything (no probe, no folder
    made): every writer of a set asks this first, before any other check that writes.
    Returns the files of our earlier set in ``out`` (what ``overwrite`` would remove).

    Raises:
        FileExistsError: as :func:`prepare_folder`.
    """
    out = Path(out)
    subfolders = tuple(subfolders)
    if os.path.lexists(out) and not out.is_dir():
        raise FileExistsError(f"out={out} is a file: choose a folder for the pairs")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty: choose a new folder, or pass overwrite=true to write into it")
        owned = files_of_set(out, subfolders) or set()
        foreign = [f for f in _relative_files(out, subfolders) if f not in owned]
        stranded = [f for f in sorted(owned) if _stranded(f, subfolders) and os.path.lexists(out / f)]
        if stranded:  # a set of another command (photo pairs' focal/ under synthesize): half of it would stay
            raise FileExistsError(
                f"out={out} holds a set another command wrote ({stranded[0]} is outside this command's "
                f"{', '.join(f'{n}/' for n in subfolders)}): overwrite=true replaces only a set this command wrote; "
                f"choose an empty or new out= folder")
        if foreign:
            raise FileExistsError(
                f"out={out} holds {len(foreign)} file(s) that no set written by this command lists (e.g. {foreign[0]}): "
                f"overwrite=true replaces only a set this command wrote, never other files; choose an empty or new out= folder")
        return owned
    return set()


def _stranded(name: str, subfolders: tuple[str, ...]) -> bool:
    """True for a listed ``<folder>/<file>`` of an earlier set in a folder this command does not write
    (it would neither remove nor replace it)."""
    parts = Path(name).parts
    return len(parts) == 2 and parts[0] not in subfolders and ".." not in parts and "." not in parts


def _in_set(name: str, subfolders: tuple[str, ...]) -> bool:
    """True for a set's own places: ``meta.json``, ``f_numbers.json``, or ``<subfolder>/<file>``
    (a listed name anywhere else, ``../x`` say, is never removed)."""
    parts = Path(name).parts
    return name in (META, F_NUMBERS) or (len(parts) == 2 and parts[0] in subfolders and parts[1] not in ("..", "."))


def _remove_temporaries(out: Path, subfolders: tuple[str, ...], removed: list[Path]) -> None:
    """Hidden temporary files that a killed write of one of ``removed`` left beside it
    (:func:`bokeh.files.atomic_file`: ``.<name>.XXXXXXXX``)."""
    from bokeh.files import temporary_prefix

    prefixes = {(path.parent, temporary_prefix(path, 8)) for path in removed}
    for folder in [out, *(out / name for name in subfolders)]:
        if not folder.is_dir():
            continue
        mine = [prefix for parent, prefix in prefixes if parent == folder]
        for stale in folder.iterdir():
            if stale.name.startswith(".") and any(stale.name.startswith(prefix) for prefix in mine):
                stale.unlink(missing_ok=True)


def finish_folder(out: str | Path, meta: dict, files: Iterable[str]) -> Path:
    """End a write begun by :func:`prepare_folder`: ``meta.json`` (with the list of ``files`` the
    set holds, relative to ``out``) written last and atomically, then the hidden manifest removed."""
    out = Path(out)
    path = write_meta(out, {**meta, "files": sorted(set(files))})
    (out / MANIFEST).unlink(missing_ok=True)
    return path


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
