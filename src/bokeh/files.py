"""Files a run writes, in one place: atomic writes, output-folder probes, and the plan of every name.

Every writer of the project (images, checkpoints, shipped weights, ``report.json`` / ``metrics.json``,
``meta.json`` of a generated set) goes through :func:`atomic_file`: a temporary file beside the
target (same file system, so :func:`os.replace` is atomic), written, renamed over the target; on
any error or interrupt the temporary file is removed. A reader never sees half a file, and a failed
write never replaces a good one. New files get the mode ``open()`` would give them (``0o666`` less
the umask), not ``mkstemp``'s ``0o600``.

Before the first write, a run names every file it will write (:func:`check_planned`): the names
are checked against each other (two inputs ``a.jpg`` and ``a.png`` would both write ``a.matte.png``),
against the file system's limit on a name's length (a 254-byte input name is fine, its
``.matte.png`` is not), and against what already exists (:func:`existing_outputs`: replaced only
with ``overwrite=true``). Output folders are proven writable with a probe file
(:func:`check_output_folder`) before any work. None of this imports torch or the command-line
plumbing (:mod:`bokeh.cli`, which re-exports these names for older imports).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems


def _default_file_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_file_mode()


class OutputFolderError(OSError):
    """An output folder that cannot be written; ``str()`` names the setting and what to do."""


class OutputPlanError(ValueError):
    """The files one run would write collide with each other, exceed the length a file name may
    have, or already exist (without ``overwrite``); ``str()`` is one sentence naming the setting."""


# ----------------------------------------------------------------------------- atomic writes
def temporary_prefix(path: str | os.PathLike, room: int = 14) -> str:
    """``.<name>.`` for a hidden temporary file beside ``path``, the name shortened (at a character
    boundary) so that the prefix plus ``room`` more bytes (``mkstemp``'s 8 random characters and a
    suffix) still fit in :data:`NAME_MAX`: a legal 242-255-byte file name can be written atomically too."""
    name = Path(path).name
    while name and len(os.fsencode(f".{name}.")) + room > NAME_MAX:
        name = name[:-1]
    return f".{name}."


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", fsync: bool = False,
                temporary: str | os.PathLike | None = None) -> Iterator[IO]:
    """A stream to write ``path`` through: a temporary file beside it, renamed over ``path`` when the
    block ends without an error; removed (and ``path`` untouched) when it raises or is interrupted.

    Args:
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).
        fsync: flush the bytes and the folder entry to the disk (checkpoints: a crash right after
            leaves the new file or the old one, entire).
        temporary: the temporary file's path (default: a fresh hidden ``.<name>.XXXXXXXX`` beside it).

    Raises:
        OSError: the folder cannot be written (nothing is left behind).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding = None if "b" in mode else "utf-8"
    if temporary is None:
        handle, name = tempfile.mkstemp(prefix=temporary_prefix(path, 8), dir=path.parent)
        opened = lambda: os.fdopen(handle, mode, encoding=encoding)  # noqa: E731
    else:
        name = os.fspath(temporary)
        opened = lambda: open(name, mode, encoding=encoding)  # noqa: E731, SIM115
    try:
        with opened() as stream:
            yield stream
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(name, FILE_MODE)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    if fsync:
        fsync_folder(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`); return ``path``."""
    with atomic_file(path, "wb") as stream:
        stream.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_file`); return ``path``."""
    with atomic_file(path, "w") as stream:
        stream.write(text)
    return Path(path)


# ----------------------------------------------------------------------------- output folders
def _probe(folder: Path) -> None:
    """Write and remove a small file in ``folder`` (raises ``OSError`` when that is not possible)."""
    probe = folder / f".bokeh-write-probe-{os.getpid()}"  # one per process: DDP ranks probe at once
    try:
        probe.write_bytes(b"ok")
    finally:  # a full disk creates the file, then fails the write: the probe goes either way
        with contextlib.suppress(OSError):
            probe.unlink()


def check_output_folder(path: str | os.PathLike, setting: str, keep: bool = True) -> Path:
    """Prove that ``path`` is (or can be made) a folder this process can write, before any work.

    Missing folders are created; with ``keep=False`` the ones created here are removed again
    (empty), so a check that precedes other checks leaves nothing behind.

    Args:
        setting: the option that named the folder, for the message (``out``, ``hydra.run.dir``).

    Raises:
        OutputFolderError: ``path`` is a file, or a folder that cannot be created or written
            (read-only, no permission, read-only file system); the message names ``setting``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{setting}={path} is a file, not a folder: choose a folder for the outputs")
    created = []
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        created.append(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as error:
        refused = OutputFolderError(f"output folder {path} is not writable ({error.strerror or error}): choose another with {setting}=...")
        refused.errno = error.errno
        raise refused from error
    finally:
        if not keep:
            for folder in created:  # deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return path


def check_output_file(path: str | os.PathLike, setting: str, overwrite: bool = False) -> Path:
    """Like :func:`check_output_folder` for a file to be written (``out=report.json``): its folder
    must be writable, the path must not be a folder, and an existing file is replaced only with
    ``overwrite`` (the same sentence as :func:`existing_outputs`). The folder is created only when
    the file is written."""
    path = Path(path)
    if path.is_dir():
        raise OutputFolderError(f"{setting}={path} is a folder: give a file name, e.g. {setting}={path / 'report.json'}")
    refused = None if overwrite else existing_outputs([path], setting)
    if refused:
        raise OutputFolderError(refused.replace(f"choose another {setting}= folder", f"choose another {setting}= file"))
    check_output_folder(path.parent, setting, keep=False)
    return path


def _listed(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def existing_outputs(paths: Iterable[Path], setting: str = "out") -> str | None:
    """The sentence refusing to replace the files among ``paths`` that already exist (``None`` if
    none does): every writer (render, export, demo, synthesize, photo_pairs) says it the same way."""
    present = [Path(p) for p in paths if os.path.lexists(p)]
    if not present:
        return None
    return (f"{setting}: {len(present)} output file(s) already exist ({_listed(present)}) and would be replaced: "
            f"choose another {setting}= folder, or pass overwrite=true to replace them")


def _shortened(name: str, keep: int = 40) -> str:
    return name if len(name) <= 2 * keep else f"{name[:keep]}...{name[-keep:]}"


def case_insensitive(folder: str | os.PathLike) -> bool:
    """True if the file system holding ``folder`` (or its nearest existing parent) takes ``A.png``
    and ``a.png`` for one file (macOS and Windows by default); False where that cannot be probed.
    Asked by looking up a folder's name in the other case (nothing written in a user's folder); a
    probe file only where no folder name up the path has a letter."""
    folder = Path(os.path.abspath(folder))
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    for named in (folder, *folder.parents):  # read-only first: does the name in the other case reach the same folder?
        swapped = named.name.swapcase()
        if swapped != named.name:
            try:
                return os.path.samefile(named, named.with_name(swapped))
            except OSError:  # no such name: the file system tells case apart
                return False
    try:  # no letter in any folder name: a probe file, made and removed
        handle, name = tempfile.mkstemp(prefix=".bokeh-case-probe-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    try:
        probe = Path(name)
        return os.path.exists(probe.with_name(probe.name.upper()))
    finally:
        Path(name).unlink(missing_ok=True)


def check_planned(targets: Iterable[tuple[str | os.PathLike, str]], setting: str = "out", overwrite: bool = True,
                  remedy: str = "rename one of the inputs") -> list[Path]:
    """Check every file one run will write, before the first write; return their paths in order.

    Args:
        targets: ``(path, what)`` for each file, ``what`` saying what it holds, for the message
            (``"the matte of photos/a.jpg"``).
        setting: the option that chose the folder (``out``).
        overwrite: with ``False``, files that exist already are refused (:func:`existing_outputs`).
        remedy: what to do about two targets with one name (the end of the sentence).

    Raises:
        OutputPlanError: two targets with the same path (one would replace the other; names that
            differ in case only, where the file system folds case: :func:`case_insensitive`), a file name
            longer than :data:`NAME_MAX` bytes, or (without ``overwrite``) an existing file.
    """
    seen: dict[str, str] = {}
    paths = []
    folding: dict[Path, bool] = {}  # per folder: does its file system fold case (a.JPG and a.jpg are one file)?
    for path, what in targets:
        path = Path(path)
        size = len(os.fsencode(path.name))
        if size > NAME_MAX:
            raise OutputPlanError(f"{setting}: {_shortened(what, 60)} would be named {_shortened(path.name)!r}, {size} bytes, and file names may "
                                  f"have at most {NAME_MAX}: give the input a shorter name")
        key = os.path.normcase(os.path.abspath(path))
        if folding.setdefault(path.parent, case_insensitive(path.parent)):
            key = key.casefold()
        if key in seen:
            raise OutputPlanError(f"{setting}: {_shortened(seen[key], 60)} and {_shortened(what, 60)} would both be written to {path} (one would replace the "
                                  f"other): {remedy}")
        seen[key] = what
        paths.append(path)
    refused = None if overwrite else existing_outputs(paths, setting)
    if refused:
        raise OutputPlanError(refused)
    return paths
