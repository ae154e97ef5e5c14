"""BGGAN (Bokeh-Glass GAN) in PyTorch Lightning, exported to TFLite for the GPU delegate.

Import name ``bokeh``; distribution name ``bggan-bokeh`` (``bokeh`` on PyPI is the plotting
library: install this project into its own virtual environment).
"""

__version__ = "0.1.0"

import sys as _sys


def _command_hook(kind, value, traceback, _default=_sys.excepthook) -> None:
    """``sys.excepthook`` of a ``python -m bokeh...`` command: a Ctrl-C before the command could catch
    it (while torch is imported, its first seconds) is one line, not a traceback (the exit status
    stays Ctrl-C's); output piped to a reader that stopped reading (``--help | head``) ends quietly."""
    if issubclass(kind, KeyboardInterrupt):
        from pathlib import Path

        module = Path(_sys.argv[0]).with_suffix("").parts if _sys.argv[0] != "-m" else ("bokeh",)
        command = ".".join(module[len(module) - 1 - module[::-1].index("bokeh"):]) if "bokeh" in module else "bokeh"
        print(f"{command.removesuffix('.__main__')}: interrupted (Ctrl-C) while starting; nothing was done",
              file=_sys.stderr, flush=True)
    elif issubclass(kind, BrokenPipeError):
        pass
    else:
        _default(kind, value, traceback)


if _sys.argv[:1] == ["-m"]:  # imported by `python -m bokeh.<command>` as it starts (not as a library)
    _sys.excepthook = _command_hook
