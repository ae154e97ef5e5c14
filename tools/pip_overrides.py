"""Install the pip overrides of ``pyproject.toml`` and run ``pip check`` tolerating exactly the documented conflicts.

``make venv`` runs ``python tools/pip_overrides.py install`` after the editable install, then
``python tools/pip_overrides.py check``. Both read ``[tool.bokeh]`` in ``pyproject.toml``:

* ``pip-overrides``: exact pins installed with ``pip install --no-deps`` on top of what pip resolved for
  the project, for a version pip's resolver refuses because another package pins an older one
  exactly. ``--no-deps`` brings in nothing unpinned; ``check`` then proves the override's own
  requirements are met (pip check lists any that are not).
* ``pip-check-tolerated``: the exact ``pip check`` lines those overrides cause. ``check`` fails on any
  other line (a real conflict) and on a tolerated line that no longer appears (the conflict is gone:
  drop the override).

Why ai-edge-litert needs this: see the comment in ``pyproject.toml`` and docs/development.md ("Installing: the ai-edge-litert override").
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def settings(pyproject: Path = PYPROJECT) -> tuple[list[str], list[str]]:
    table = tomllib.loads(pyproject.read_text())["tool"]["bokeh"]
    return list(table["pip-overrides"]), list(table["pip-check-tolerated"])


def install(overrides: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *overrides]).returncode


def unexpected_lines(report: str, tolerated: list[str]) -> tuple[list[str], list[str]]:
    """(lines of ``pip check`` output that are not tolerated, tolerated lines that are absent)."""
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    lines = [line for line in lines if line != "No broken requirements found."]
    return [line for line in lines if line not in tolerated], [line for line in tolerated if line not in lines]


def check(tolerated: list[str]) -> int:
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    unexpected, gone = unexpected_lines(result.stdout + result.stderr, tolerated)
    for line in unexpected:
        print(f"pip check: {line}", file=sys.stderr)
    for line in gone:
        print(f"pip check no longer reports the tolerated conflict {line!r}: remove it and its override "
              f"from [tool.bokeh] in pyproject.toml", file=sys.stderr)
    if unexpected or gone:
        return 1
    print(f"pip check: no conflicts besides the {len(tolerated)} documented in pyproject.toml [tool.bokeh]")
    return 0


def main(argv: list[str]) -> int:
    overrides, tolerated = settings()
    if argv == ["install"]:
        return install(overrides)
    if argv == ["check"]:
        return check(tolerated)
    print("usage: python tools/pip_overrides.py install|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
