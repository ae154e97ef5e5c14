"""Running a command line as a user does: ``python -m bokeh.<cli>`` in a subprocess (:func:`cli`), and
the check that it refused in one sentence, without a traceback (:func:`one_line`). Shared by the tests
of every command (written for the new-user faults of issues 21 and 25).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: A child's environment: this checkout's src/ first (a worktree or a clone tests its own code), one thread
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
       "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def cli(module: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The command failed with ``code`` and said why without a traceback; its stderr."""
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr
