"""bokeh.options: the one key=value parser of the command lines that do not use Hydra."""

from __future__ import annotations

from pathlib import Path

import pytest

from bokeh.models.controls import ControlError, PixelPoint, parse_aperture, parse_focus
from bokeh.options import (REQUIRED, HelpRequested, Option, OptionError, auto_or_bool, boolean, choice, integer, number, numbers,
                           parse, path, size)

TABLE = (
    Option("out", path, REQUIRED, "where"),
    Option("n", integer(1), 200, "how many"),
    Option("seed", integer(0, 2**32 - 1), 0),
    Option("noise", number(0, 1), 0.01),
    Option("size", size(16), (512, 768)),
    Option("mode", choice("fast", "exact"), "fast"),
    Option("overwrite", boolean, False),
    Option("tap", auto_or_bool, None),
    Option("apertures", numbers(number(0, low_open=True, what="an f-number")), None),
    Option("focus", parse_focus, None),
    Option("aperture", parse_aperture, None),
)


def test_values_are_typed_and_defaults_filled():
    settings, passed = parse(["out=o", "n=3", "size=16x24", "mode=EXACT", "overwrite=yes", "tap=auto", "apertures=1.8,2.8",
                              "focus=640px,480px", "aperture=f/4", "data.n=4"], TABLE, "usage: x", passthrough=lambda a: "." in a)
    assert settings == {"out": Path("o"), "n": 3, "seed": 0, "noise": 0.01, "size": (16, 24), "mode": "exact", "overwrite": True,
                        "tap": None, "apertures": (1.8, 2.8), "focus": PixelPoint(640, 480), "aperture": 4.0}
    assert passed == ["data.n=4"]


@pytest.mark.parametrize("arg, message", [
    ("seed=-1", "seed=-1: give a whole number from 0 to 4294967295"),
    ("n=many", "n=many: give a whole number of at least 1"),
    ("noise=nan", "noise=nan: give a number at least 0 and at most 1 (a finite one)"),
    ("size=8x16", "size=8x16: give HEIGHTxWIDTH in pixels, e.g. 512x768, each side at least 16"),
    ("mode=slow", "mode=slow: one of fast, exact"),
    ("overwrite=maybe", "overwrite=maybe: use true or false"),
    ("tap=sometimes", "tap=sometimes: use auto, true or false"),
    ("apertures=1.8,,2", "apertures=1.8,,2: give numbers separated by commas"),
    ("apertures=1.8,0", "apertures=1.8,0:"),
    ("out=", "out='': the path is empty"),
    ("out=a b", "out='a b'") ,
    # a control's own checker names the option itself, as typed, once
    ("focus=50%,50%", "focus=50%,50% is not a point"),
    ("focus=1.2,0.5", "focus=1.2,0.5 lies outside the photo"),
    ("aperture=1.4", "aperture=1.4 is wider than the model was trained for"),
    ("aperture=wide", "aperture=wide is not an f-number"),
])
def test_a_bad_value_is_one_sentence_naming_the_option_as_typed(arg, message):
    argv = [arg] if arg.startswith("out=") else ["out=o", arg]
    if arg == "out=a b":  # a fine path: only the quoting of a shown value is tested here
        with pytest.raises(OptionError, match="n=x"):
            parse(["out=a b", "n=x"], TABLE, "usage: x")
        return
    with pytest.raises(OptionError) as refused:
        parse(argv, TABLE, "usage: x")
    text = str(refused.value)
    assert message in text and "\n" not in text, text
    assert "'" not in text.replace("''", "") or arg == "out=", f"the value is quoted: {text}"
    assert "['" not in text and "(1.2, 0.5)" not in text, f"Python's rendering of the value in the message: {text}"


def test_unknown_missing_and_twice():
    with pytest.raises(OptionError, match=r"unknown argument 'colour=red'; options: out=, n=.*see --help"):
        parse(["out=o", "colour=red"], TABLE, "usage: x")
    with pytest.raises(OptionError, match=r"missing out= \(see --help\)"):
        parse(["n=3"], TABLE, "usage: x")
    with pytest.raises(OptionError, match="n= is given twice"):
        parse(["out=o", "n=3", "n=4"], TABLE, "usage: x")
    with pytest.raises(OptionError, match="unknown argument 'data.n=4'"):  # no passthrough: refused too
        parse(["out=o", "data.n=4"], TABLE, "usage: x")


def test_help_wins_over_everything_and_lists_every_option():
    with pytest.raises(HelpRequested) as shown:
        parse(["colour=red", "--help"], TABLE, "usage: x out=DIR")
    text = str(shown.value)
    assert text.startswith("usage: x out=DIR")
    for option in TABLE:
        assert f"  {option.name}=" in text
    assert "(required)" in text and "(default 200)" in text and "(default 512x768)" in text


def test_the_control_parsers_are_pure_and_beside_the_checks():
    assert parse_focus(" 0.25 , 1 ") == (0.25, 1.0)
    assert parse_aperture("F2.8") == 2.8
    with pytest.raises(ControlError, match=r"^focus=0.5 is not a point"):
        parse_focus("0.5")


def test_the_true_false_words_live_in_one_place():
    import bokeh.cli
    import bokeh.options
    import bokeh.render.__main__ as render_main

    assert bokeh.cli.TRUE_WORDS is bokeh.options.TRUE_WORDS and bokeh.cli.parse_bool is bokeh.options.parse_bool
    source = Path(render_main.__file__).read_text()
    assert '"yes", "on"' not in source and "partition(\"=\")" not in source
