"""What the command lines share: exit codes, paths as Hydra overrides, Ctrl-C (files: :mod:`bokeh.files`).

Every entry point (``bokeh.render``, ``bokeh.train``, ``bokeh.evaluate``, ``bokeh.export``,
``bokeh.demo``, ``bokeh.data.synthesize``) uses these, so a bad output folder, an awkward path or
an interrupt reads the same everywhere:

* :func:`bokeh.files.check_output_folder` (re-exported here): an output folder is proven writable
  (a probe file is written and removed) before any work, and the error names the setting
  (``out=``, ``hydra.run.dir=``).
* :func:`hydra_quote` / :func:`quote_path_overrides`: a path is passed to Hydra as a quoted
  string, so ``=``, spaces, commas, brackets, quotes and backslashes reach the config unchanged
  (Hydra's override grammar would split or reject them: ``ckpt=runs/epoch=3-step=9/last.ckpt``
  fails with ``mismatched input '='``).
* :func:`interruptible`: Ctrl-C ends the command with one line saying what was finished and exit
  status :data:`EXIT_INTERRUPTED`, not a traceback; ``SIGTERM`` (``timeout``, ``kill``) and
  ``SIGHUP`` (a closed terminal or SSH session) are handled the same way (exit 143 and 129).
  Temporary files are removed by the code that made them (``try``/``except BaseException``),
  before this line is printed.
* :func:`parse_bool`: ``true``/``false`` options are checked, not guessed (``tflite=maybe`` is refused);
  :func:`given_path`: an empty path (``out=`` of an unset shell variable) is refused, not taken as
  the current folder.
* :func:`bokeh.files.check_planned` / :func:`bokeh.files.existing_outputs`: every name a run
  writes is known and checked before the first write; no writer replaces an existing file unless
  ``overwrite=true`` is given. :func:`bokeh.files.atomic_file`: every file is written to a temporary
  file and renamed, so an interrupt never leaves half a file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from pathlib import Path

# the file part lives in bokeh.files; these names stay importable from here for older code
from bokeh.files import (NAME_MAX, OutputFolderError, check_output_file, check_output_folder, existing_outputs,  # noqa: F401
                         temporary_prefix, write_text_atomic)

EXIT_OK = 0
EXIT_SKIPPED = 1  # bokeh.render: some inputs were skipped (each named with the reason)
EXIT_SETTINGS = 2  # bad settings or files, refused before any work
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


# ----------------------------------------------------------------------------- Hydra and paths
def hydra_quote(value: str) -> str:
    """``value`` as a quoted Hydra override value that composes back to exactly ``value``.

    Hydra's grammar (1.3) splits unquoted values at ``,`` (sweeps), reads ``[...]`` as lists and
    ``1e3`` as numbers, and rejects ``=``, quotes and some other characters; inside single quotes
    only a quote and the backslashes right before a quote (or the closing quote) need escaping.
    OmegaConf then reads ``${`` as an interpolation: escaped as ``\\${`` (backslashes right before
    it doubled). Works for any string a file system allows as a path.

    >>> hydra_quote("runs/epoch=3-step=9/last.ckpt")
    "'runs/epoch=3-step=9/last.ckpt'"
    """
    text = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", str(value))  # OmegaConf
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)  # Hydra: quotes
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)  # Hydra: before the closing quote
    return f"'{text}'"


def _parses_as_itself(override: str, value: str) -> bool:
    """True if Hydra reads ``value`` (the part after ``=`` of ``override``) as that very string,
    as ``null``, or as an already quoted string: then it needs no quoting."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([override])[0]
    except (HydraException, ValueError):
        return False
    if parsed.is_sweep_override():
        return False
    parsed_value = parsed.value()
    if parsed_value is None:
        return True  # key=null stays null
    already_quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    return isinstance(parsed_value, str) and (parsed_value == value or already_quoted)


def unquote(value: str) -> str:
    """A value quoted by hand for Hydra (``'a=b'``) as the plain string; any other value unchanged."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides([f"key={value}"])[0].value()
        if isinstance(parsed, str):
            return parsed
    return value


def quote_path_overrides(overrides: Iterable[str], keys: Iterable[str]) -> list[str]:
    """``overrides`` with the values of path settings ``keys`` Hydra-quoted where Hydra would
    misread them (:func:`hydra_quote`): ``ckpt_path=runs/epoch=3-step=9/last.ckpt`` becomes
    ``ckpt_path='runs/epoch=3-step=9/last.ckpt'``.

    Values Hydra already reads as the same string are left alone (so are ``null``, values quoted
    by hand and interpolations such as ``${oc.env:EBB}``), so calling it twice changes nothing.
    A value in brackets (``data.photo_pairs=[a,b]``) is a Hydra list of paths and is left alone too.
    ``+key=`` and ``++key=`` count as ``key=``.
    """
    keys = set(keys)
    quoted = []
    for override in overrides:
        key, sep, value = override.partition("=")
        is_list = value.startswith("[") and value.endswith("]")
        if sep and key.lstrip("+") in keys and not is_list and not _parses_as_itself(override, value):
            override = f"{key}={hydra_quote(value)}"
        quoted.append(override)
    return quoted


def given_path(key: str, value: str | os.PathLike | None) -> Path:
    """``value`` of path option ``key`` as a ``Path``; ``ValueError`` (one sentence) when it is empty:
    ``out=$UNSET`` would otherwise be ``Path("")``, the current folder, and be written into."""
    if value is None or not str(value).strip():
        raise ValueError(f"{key}= is empty (an unset shell variable?): give a path, e.g. {key}=outputs/{key}")
    return Path(value)


from bokeh.options import FALSE_WORDS, TRUE_WORDS, parse_bool  # noqa: E402, F401  (the true/false words live there, once)


# ----------------------------------------------------------------------------- Hydra's refusals as one sentence
def _override_for(key: str, overrides: Iterable[str]) -> str:
    """The override (as typed) that sets ``key`` (``+key=``, ``++key=`` and ``~key`` included)."""
    for override in overrides:
        if override.partition("=")[0].lstrip("+~") == key:
            return override
    return key


def _keys_at(parent: str, compose_without: Callable[[str], Any] | None, bad: str) -> list[str]:
    """The keys of config node ``parent`` ('' = the top) once ``bad`` is left out; [] when unknown."""
    if compose_without is None:
        return []
    try:
        from omegaconf import OmegaConf

        cfg = compose_without(bad)
        node = cfg if not parent else OmegaConf.select(cfg, parent)
        return sorted(str(k) for k in node.keys() if str(k) != "hydra" and not str(k).startswith("_")) if hasattr(node, "keys") else []
    except Exception:  # noqa: BLE001  only used to word the message
        return []


def hydra_sentence(error: BaseException, overrides: Iterable[str], compose_without: Callable[[str], Any] | None = None) -> str:
    """Hydra's refusal of a command line (an unknown key, a value of the wrong type, an unknown
    config option, an override it cannot parse) as one sentence naming the override as typed and
    what it takes (the keys that exist, the options of the group, the type), instead of Hydra's lines.

    ``compose_without(override)`` composes the config without the bad override (for the list of keys).
    """
    import difflib

    overrides = list(overrides)
    text = str(error)
    cause = str(error.__cause__ or "").splitlines()[0] if error.__cause__ is not None else ""
    match = re.search(r"Could not override '([^']+)'", text)
    if match and "not in struct" in cause:
        key = match.group(1)
        parent, _, name = key.rpartition(".")
        keys = _keys_at(parent, compose_without, _override_for(key, overrides))
        where = f"{parent} has" if parent else "the config has"
        close = difflib.get_close_matches(name, keys, n=1)
        mean = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""
        known = f"; its keys are {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}" if keys else ""
        return (f"{_override_for(key, overrides)}: {where} no key {name!r}{mean}{known}: use one of them, "
                f"or write +{_override_for(key, overrides).lstrip('+')} to add a new key")
    match = re.search(r"Could not override '([^']+)'|Error merging override (\S+)", text)
    if match:
        key = (match.group(1) or match.group(2).partition("=")[0]).lstrip("+~")
        why = cause or text.splitlines()[-1]
        typed = re.match(r"Value '(.*)' is not a valid (\w+)", why)
        if typed:
            kind = {"bool": "true or false", "int": "a whole number", "float": "a number"}.get(typed.group(2), f"a {typed.group(2)}")
            why = f"{key} takes {kind}, not {typed.group(1)!r}"
        return f"{_override_for(key, overrides)}: {why}"
    match = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if match:
        group, option = match.group(1), match.group(2)
        available = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
        return (f"{group}={option}: there is no {group} option {option!r}"
                + (f"; available: {', '.join(available)}" if available else f" (no conf/{group}/{option}.yaml)"))
    match = re.search(r"An item is already at '([^']+)'", text)
    if match:
        key = match.group(1)
        return f"{_override_for(key, overrides)}: {key} exists already: set it without the + ({_override_for(key, overrides).lstrip('+')})"
    match = re.search(r"Could not delete from config\. '([^']+)' does not exist", text)
    if match:
        return f"~{match.group(1)}: there is no {match.group(1)} to delete"
    match = re.search(r"Ambiguous value for argument '([^']+)'", text)
    if match:
        return (f"{match.group(1)}: a value with commas is a sweep to Hydra: write a list as key=[a,b], "
                f"or quote a text as key='a,b'")
    from hydra.errors import OverrideParseException

    if isinstance(error, OverrideParseException):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        for override in overrides:
            try:
                OverridesParser.create().parse_overrides([override])
            except Exception:  # noqa: BLE001
                return (f"{override}: Hydra cannot read this value ({text.splitlines()[0]}); quote it, e.g. "
                        f"{override.partition('=')[0]}='{override.partition('=')[2]}'")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("\t", "Config search path", "See https"))]
    return " ".join(lines[:2]) or type(error).__name__


def check_given_once(overrides: Iterable[str]) -> None:
    """A user's Hydra overrides name each key once (Hydra takes the last of a key given twice, silently).

    Raises:
        ValueError: ``<key>= is given twice (<first> and <second>): give it once``.
    """
    seen: dict[str, str] = {}
    for override in overrides:
        key = override.partition("=")[0].lstrip("+~")
        if key in seen and "=" in override:
            raise ValueError(f"{key}= is given twice ({seen[key]} and {override}): give it once")
        seen[key] = override


def compose_checked(config_dir: str | os.PathLike, config_name: str, overrides: list[str], hydra_config: bool = False):
    """The config Hydra composes from ``config_dir/config_name`` with ``overrides``.

    Raises:
        ValueError: Hydra refused the command line; ``str()`` is :func:`hydra_sentence`.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def composed_with(given: list[str]):
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name, overrides=given, return_hydra_config=hydra_config)

    def composed(leave_out: str | None = None):
        return composed_with([o for o in overrides if o != leave_out])

    try:
        return composed()
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        sentence = hydra_sentence(error, overrides, composed)
        if not any(sentence.startswith(o.partition("=")[0].lstrip("+~")) or sentence.startswith(o) for o in overrides):
            culprit = _first_refused(overrides, lambda given: composed_with(given))
            sentence = f"{culprit}: {sentence}" if culprit else sentence
        raise ValueError(sentence) from None


def _first_refused(overrides: list[str], compose: Callable[[list[str]], Any]) -> str | None:
    """The first override whose addition makes composing fail (to name it in the message)."""
    for count in range(1, len(overrides) + 1):
        try:
            compose(overrides[:count])
        except Exception:  # noqa: BLE001
            return overrides[count - 1]
    return None


def check_hydra_command_line(program: str, config_dir: str | os.PathLike, config_name: str, argv: list[str]) -> None:
    """Before ``@hydra.main`` runs: compose the config from ``argv`` once, and refuse what Hydra would
    refuse (an unknown key, a value of the wrong type, an unknown group option, a value it cannot
    parse) in one sentence, exit status :data:`EXIT_SETTINGS`, instead of Hydra's seven lines.

    A command line with Hydra's own flags (``--help``, ``--cfg``, ``--multirun``, ...) is left to Hydra.
    """
    if any(arg.startswith("-") for arg in argv):
        return
    try:
        if os.environ.get("LOCAL_RANK", "0") == "0":  # DDP's other ranks rerun the line with hydra.run.dir added again
            check_given_once(argv)
        compose_checked(config_dir, config_name, list(argv), hydra_config=True)
    except ValueError as error:
        print(f"{program}: {error}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None


# ----------------------------------------------------------------------------- Ctrl-C and signals
#: Signals that stop a command like Ctrl-C does (temporary files removed, one line, 128 + number)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A stop signal (``SIGTERM``, ``SIGHUP``) turned into an interrupt, so cleanup code runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside the block, ``SIGTERM`` and ``SIGHUP`` raise :class:`Terminated` (a ``KeyboardInterrupt``)
    where they would kill the process without cleanup. A no-op outside the main thread."""
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _raise_terminated)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, carrying a sentence on what was finished before it (e.g. where to resume from)."""

    def __init__(self, finished: str) -> None:
        super().__init__(finished)
        self.finished = finished


@contextlib.contextmanager
def interruptible(program: str, finished: Callable[[], str]) -> Iterator[None]:
    """Turn Ctrl-C inside the block into one line on stderr and exit status 130; ``SIGTERM`` and
    ``SIGHUP`` likewise (exit status 128 + the signal's number: 143, 129).

    ``finished()`` says what was done when the interrupt came (called only then); an
    :class:`Interrupted` raised inside adds its own sentence. The code inside is responsible for
    removing its temporary files as the ``KeyboardInterrupt`` passes through it.
    """
    try:
        with stop_signals_interrupt():
            yield
    except KeyboardInterrupt as interrupt:
        # The interrupt may have landed inside a library's constructor (imageio's Pillow plugin, a
        # TFLite interpreter ...): its finalizer then fails on the half-built object as the process
        # exits and Python prints "Exception ignored in ... Traceback". Once stopping, those are noise.
        sys.unraisablehook = _ignore_unraisable
        said = [finished()] + ([interrupt.finished] if isinstance(interrupt, Interrupted) else [])
        signum = _stop_signal(interrupt)
        how = "Ctrl-C" if signum is None else signal.Signals(signum).name
        print(f"{program}: interrupted ({how}); " + "; ".join(s for s in said if s), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_INTERRUPTED if signum is None else 128 + signum) from None


def _ignore_unraisable(unraisable) -> None:
    """``sys.unraisablehook`` once a command is stopping: finalizers' errors are not reported."""


def _stop_signal(interrupt: BaseException) -> int | None:
    """The stop signal behind ``interrupt`` (also when a library re-raised it as its own), else None."""
    seen = set()
    while interrupt is not None and id(interrupt) not in seen:
        if isinstance(interrupt, Terminated):
            return interrupt.signum
        seen.add(id(interrupt))
        interrupt = interrupt.__cause__ or interrupt.__context__
    return None


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """Ctrl-C (and SIGTERM, SIGHUP) is ignored inside the block: for cleanup that must finish once an
    interrupt arrived (a second one would otherwise leave half a temporary folder). A no-op outside
    the main thread."""
    previous = {}
    try:
        for signum in (signal.SIGINT, *STOP_SIGNALS):
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals go to the main thread anyway
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_child(command: list[str], grace_s: float = 120.0) -> None:
    """Run ``command`` (a child CLI) to the end; raise ``CalledProcessError`` if it fails.

    On Ctrl-C the child is interrupted too (``SIGINT``: it may not share the terminal's process
    group) and waited for up to ``grace_s`` seconds, so it can remove its temporary files, before
    the ``KeyboardInterrupt`` goes on (``subprocess.run`` would kill it after 0.25 s).
    """
    process = subprocess.Popen(command)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        with ignoring_interrupts():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        raise
    if code != 0:
        raise subprocess.CalledProcessError(code, command)


# ----------------------------------------------------------------------------- JSON a reader can parse
def finite_json(value):
    """``value`` with every non-finite float (a mean over no image, an empty split) as ``None``, so
    it is valid JSON (``NaN`` is not): ``json.dumps(finite_json(v), allow_nan=False)``."""
    import math
    import numbers

    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):  # float, numpy floats
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


def json_text(value, indent: int | None = 2) -> str:
    """``value`` as strict JSON text (:func:`finite_json`, ``allow_nan=False``): what every result
    file (``metrics.json``, ``report.json``, a set's ``meta.json``) is written with."""
    import json

    return json.dumps(finite_json(value), indent=indent, allow_nan=False)
