"""One ``key=value`` options parser for every command line that does not go through Hydra.

``bokeh.render``, the ``real=`` / ``portraits=`` modes of ``bokeh.evaluate``, ``bokeh.data.photo_pairs``,
``bokeh.data.synthesize``, ``bokeh.pretrained`` and ``bokeh.demo`` declare their options once, as a
table of :class:`Option` (name, type with its range, default, help), and :func:`parse` reads the
command line against it:

* every value is converted and checked before the command does any work; the first bad one is
  refused in one sentence that names the option as the user typed it (``seed=-1: a whole number
  of at least 0``), never Python's rendering of it (no ``['50%', '50%']``, no doubled quotes);
* an unknown key is refused naming the known ones (``unknown argument 'colour=red'``);
* ``--help`` (``-h``, ``help``) prints the usage and one line per option (:class:`HelpRequested`);
* ``true``/``false`` words are defined here only (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`).

The types are small functions ``text -> value`` raising ``ValueError`` with the reason (without the
option's name, which :func:`parse` adds): :func:`boolean`, :func:`integer`, :func:`number`,
:func:`choice`, :func:`path`, :func:`text`, :func:`size`, :func:`numbers`; ``describe`` on each says
what it takes, for ``--help``. Pure: no I/O (paths are checked by the command that uses them).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
HELP_WORDS = ("-h", "--help", "help")
REQUIRED = object()  # the default of an option that must be given


class OptionError(ValueError):
    """A command-line argument that is unknown, missing or has a bad value; ``str()`` is one sentence."""


class HelpRequested(Exception):
    """``--help`` was given; ``str()`` is the text to print (usage and the options)."""


def shown(value: str) -> str:
    """``value`` as the user typed it, quoted only where a shell would need it (``''`` for empty)."""
    return shlex.quote(value) if value == "" or re.search(r"[\s'\"\\$`]", value) else value


def parse_bool(key: str, value: str | bool) -> bool:
    """``value`` of option ``key`` as a bool; ``ValueError`` (one sentence naming ``key=value``) for
    anything but true/false, 1/0, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    try:
        return boolean(str(value))
    except ValueError as error:
        raise ValueError(f"{key}={shown(str(value))}: {error}") from None


# ----------------------------------------------------------------------------- types
def _described(parse_text: Callable[[str], Any], description: str) -> Callable[[str], Any]:
    parse_text.describe = description  # type: ignore[attr-defined]
    return parse_text


def boolean(value: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off, any case)."""
    word = value.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError("use true or false")


boolean.describe = "true or false"  # type: ignore[attr-defined]


def _word(value: str, words: dict[str, Any]) -> tuple[bool, Any]:
    word = value.strip().lower()
    return (True, words[word]) if word in words else (False, None)


def integer(low: int | None = None, high: int | None = None, words: dict[str, Any] | None = None) -> Callable[[str], Any]:
    """A whole number in ``[low, high]`` (either bound may be open), or one of ``words`` (``{"all": None}``)."""
    words = words or {}
    if low is not None and high is not None:
        span = f"a whole number from {low} to {high}"
    elif low is not None:
        span = f"a whole number of at least {low}"
    elif high is not None:
        span = f"a whole number of at most {high}"
    else:
        span = "a whole number"
    span += "".join(f" or {w!s}" for w in words)

    def parse_integer(value: str) -> Any:
        known, word = _word(value, words)
        if known:
            return word
        text = value.strip().replace("_", "")
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"give {span}")
        number = int(text)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"give {span}")
        return number

    return _described(parse_integer, span)


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False,
           words: dict[str, Any] | None = None, what: str = "a number") -> Callable[[str], Any]:
    """A finite number in ``[low, high]`` (``low_open``/``high_open``: the bound itself is refused),
    or one of ``words``; ``what`` names it in the message (``an f-number``)."""
    words = words or {}
    parts = []
    if low is not None:
        parts.append(f"{'above' if low_open else 'at least'} {low:g}")
    if high is not None:
        parts.append(f"{'below' if high_open else 'at most'} {high:g}")
    span = what + (" " + " and ".join(parts) if parts else "") + "".join(f" or {w!s}" for w in words)

    def parse_number(value: str) -> Any:
        known, word = _word(value, words)
        if known:
            return word
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"give {span}") from None
        if not math.isfinite(result):
            raise ValueError(f"give {span} (a finite one)")
        if low is not None and (result < low or (low_open and result == low)):
            raise ValueError(f"give {span}")
        if high is not None and (result > high or (high_open and result == high)):
            raise ValueError(f"give {span}")
        return result

    return _described(parse_number, span)


def first_repeat(values: Iterable[Any], same: Callable[[Any], Any] | None = None) -> tuple[Any, Any] | None:
    """The first value of ``values`` given a second time and that second one (``same(value)`` says
    which count as one: resolved paths, for folders), or ``None``: every list option refuses a value
    given twice (one folder twice would silently double its weight)."""
    seen: dict[Any, Any] = {}
    for value in values:
        key = same(value) if same is not None else value
        if key in seen:
            return seen[key], value
        seen[key] = value
    return None


def numbers(each: Callable[[str], Any], what: str = "numbers separated by commas") -> Callable[[str], tuple]:
    """Values separated by commas, each checked by ``each`` (``numbers(number(0, low_open=True))``)."""

    def parse_numbers(value: str) -> tuple:
        parts = [part for part in value.split(",")]
        if not value.strip() or any(not part.strip() for part in parts):
            raise ValueError(f"give {what}, e.g. 1.8,2.8")
        try:
            parsed = tuple(each(part) for part in parts)
        except ValueError as error:
            raise ValueError(f"{what}, each {getattr(each, 'describe', '')}: {error}") from None
        repeat = first_repeat(zip(parts, parsed), same=lambda pair: pair[1])
        if repeat:
            raise ValueError(f"{repeat[0][0].strip()} is given twice" + (f" (as {repeat[1][0].strip()})" if repeat[0][0].strip() != repeat[1][0].strip() else "")
                             + ": give each once")
        return parsed

    return _described(parse_numbers, f"{what} ({getattr(each, 'describe', '')})")


def choice(*words: str, case: bool = False) -> Callable[[str], str]:
    """One of ``words`` (any case unless ``case``); returns the word as declared."""

    def parse_choice(value: str) -> str:
        for word in words:
            if value.strip() == word or (not case and value.strip().lower() == word.lower()):
                return word
        raise ValueError(f"one of {', '.join(words)}")

    return _described(parse_choice, " | ".join(words))


def auto_or_bool(value: str) -> bool | None:
    """``auto`` (``None``: the command decides) or true/false."""
    if value.strip().lower() == "auto":
        return None
    try:
        return boolean(value)
    except ValueError:
        raise ValueError("use auto, true or false") from None


auto_or_bool.describe = "auto, true or false"  # type: ignore[attr-defined]


def model(value: str) -> str:
    """A model: a file's path or a shipped model's name (checked by the command that loads it)."""
    if not value.strip():
        raise ValueError("the model is empty (an unset shell variable?): give a .ckpt, .onnx or .tflite file or a shipped name")
    return value


model.describe = "a .ckpt, .onnx or .tflite file, or a shipped model's name (reference)"  # type: ignore[attr-defined]


def path(value: str) -> Path:
    """A path; an empty one (``out=$UNSET``) is refused, not taken as the current folder."""
    if not value.strip():
        raise ValueError("the path is empty (an unset shell variable?): give a path")
    return Path(value).expanduser()


path.describe = "a path"  # type: ignore[attr-defined]


def text(value: str) -> str:
    """Any text, unchanged."""
    return value


text.describe = "text"  # type: ignore[attr-defined]


def size(min_side: int = 16, max_side: int | None = None) -> Callable[[str], tuple[int, int]]:
    """``HEIGHTxWIDTH`` (``512x768``) -> ``(512, 768)``, each side from ``min_side`` to ``max_side``."""
    span = f"HEIGHTxWIDTH in pixels, e.g. 512x768, each side at least {min_side}" + (f" and at most {max_side}" if max_side else "")

    def parse_size(value: str) -> tuple[int, int]:
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if not match:
            raise ValueError(f"give {span}")
        height, width = int(match.group(1)), int(match.group(2))
        if min(height, width) < min_side or (max_side is not None and max(height, width) > max_side):
            raise ValueError(f"give {span}")
        return height, width

    return _described(parse_size, span)


# ----------------------------------------------------------------------------- the table and the parser
@dataclass(frozen=True)
class Option:
    """One option of a command line: ``name=value``, converted and checked by ``kind``.

    ``default`` is the typed value used when the option is not given (:data:`REQUIRED`: it must be
    given); ``help`` is one line for ``--help``.
    """

    name: str
    kind: Callable[[str], Any] = text
    default: Any = None
    help: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def help_text(usage: str, options: Sequence[Option], epilog: str = "") -> str:
    """``usage`` and one line per option: ``name=`` what it takes (default) and its help."""
    lines = [usage, "", "options:"]
    for option in options:
        default = "required" if option.required else f"default {_show_default(option.default)}"
        what = getattr(option.kind, "describe", "")
        lines.append(f"  {option.name}=  {what} ({default})" + (f": {option.help}" if option.help else ""))
    return "\n".join(lines + ([epilog] if epilog else []))


def _show_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    return str(value)


def wants_help(argv: Iterable[str]) -> bool:
    """True if ``argv`` asks for help (``-h``, ``--help``, ``help``)."""
    return any(arg in HELP_WORDS for arg in argv)


def parse(argv: Sequence[str], options: Sequence[Option], usage: str, *,
          flags: dict[str, tuple[str, str]] | None = None, passthrough: Callable[[str], bool] | None = None,
          dashes: bool = False, epilog: str = "") -> tuple[dict[str, Any], list[str]]:
    """``(settings, passed)``: every option's checked value (its default where not given) and the
    arguments ``passthrough`` claims (e.g. Hydra overrides with a dot in the key), in order.

    Args:
        flags: bare words that stand for ``key=value`` (``--side-by-side``: ``side_by_side=true``).
        dashes: also accept ``--key=value`` and ``key-name=value`` for ``key_name``.

    Raises:
        HelpRequested: ``argv`` asks for help (checked first, whatever else it holds).
        OptionError: an unknown argument, an option given twice, a missing required one, or a value
            its type refuses: one sentence naming the option as typed.
    """
    if wants_help(argv):
        raise HelpRequested(help_text(usage, options, epilog))
    table = {option.name: option for option in options}
    for option in options:
        table.update({alias: option for alias in option.aliases})
    given: dict[str, str] = {}
    passed = []
    for arg in argv:
        if flags and arg in flags:
            key, value = flags[arg]
        else:
            key, sep, value = arg.partition("=")
            if dashes:
                key = key.lstrip("-").replace("-", "_")
            if passthrough is not None and key not in table and passthrough(arg):
                passed.append(arg)
                continue
            if not sep or key not in table:
                known = ", ".join(f"{o.name}=" for o in options)
                raise OptionError(f"unknown argument {arg!r}; options: {known} (see --help)")
        name = table[key].name
        if name in given and given[name] != value:
            raise OptionError(f"{name}= is given twice ({name}={shown(given[name])} and {name}={shown(value)}): give it once")
        given[name] = value
    missing = [o.name for o in options if o.required and o.name not in given]
    if missing:
        raise OptionError(f"missing {', '.join(m + '=' for m in missing)} (see --help)")
    settings = {}
    for option in options:
        if option.name not in given:
            settings[option.name] = option.default
            continue
        value = given[option.name]
        try:
            settings[option.name] = option.kind(value)
        except ValueError as error:
            reason = str(error)
            if reason.startswith(f"{option.name}="):  # a checker that names the option itself
                raise OptionError(reason) from None
            raise OptionError(f"{option.name}={shown(value)}: {reason}") from None
    return settings, passed
