"""Where the Hydra configs live, and one config file read as plain defaults.

``conf/`` (beside ``src/``; ``BOKEH_CONF_DIR`` points elsewhere) is the one home of every default
setting: ``bokeh.train`` composes it with Hydra, and code that is built without Hydra (the
LightningModule in tests and notebooks, a checkpoint of an earlier run whose saved settings predate
a newer key) fills what it was not given from the same files (:func:`group_defaults`).
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

CONF_DIR = Path(os.environ.get("BOKEH_CONF_DIR", Path(__file__).resolve().parents[2] / "conf"))


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def group_defaults(group: str, option: str) -> dict[str, Any]:
    """The settings of ``conf/<group>/<option>.yaml`` as a plain dict (a fresh copy on every call).

    Raises:
        FileNotFoundError: the file is missing, in one sentence saying where it was looked for.
    """
    path = CONF_DIR / group / f"{option}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the {group} defaults live there; run from a checkout of the project or set BOKEH_CONF_DIR to its conf folder")
    return copy.deepcopy(_read(path))
