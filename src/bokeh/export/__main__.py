"""``python -m bokeh.export ckpt=<.ckpt> [out=<dir>] [size=HxW] [export.instance_norm=plain] ...``

Hydra entry point for :func:`bokeh.export.pipeline.run` (config ``conf/export/tflite.yaml``).
Prints the summary table and exits 1 naming the failed checks, 2 for bad settings or files (an
unwritable ``out=`` included), 130 when interrupted (Ctrl-C: the temporary folder is removed).
``ckpt=`` and ``out=`` may be any path (``=``, spaces, quotes): they are quoted for Hydra here.
"""

from __future__ import annotations

import torch._dynamo  # noqa: F401, I001  (import order: before TensorFlow, see bokeh.export.tflite)

import sys

import hydra
from omegaconf import DictConfig

from bokeh.checkpoint import CheckpointError
from bokeh.cli import EXIT_SETTINGS, check_hydra_command_line, interruptible, quote_path_overrides
from bokeh.config import CONF_DIR
from bokeh.export.pipeline import ExportConfigError, ExportWriteError, run
from bokeh.export.table import print_summary

PATH_KEYS = ("ckpt", "out")


@hydra.main(version_base="1.3", config_path="../../../conf/export", config_name="tflite")
def main(cfg: DictConfig) -> None:
    try:
        with interruptible("bokeh.export", lambda: f"the temporary export folder was removed; out={cfg.out} holds "
                                                   f"only the files of the last finished export"):
            report = run(cfg).to_json()
    except (ExportConfigError, CheckpointError) as error:
        print(f"bokeh.export: {error}", file=sys.stderr)
        sys.exit(EXIT_SETTINGS)
    except ExportWriteError as error:
        print(f"bokeh.export: stopped: {error.strerror}", file=sys.stderr)
        sys.exit(1)
    print_summary(report)
    if not report["passed"]:
        print(f"bokeh.export: FAILED checks: {', '.join(report['failed_checks'])} "
              f"(files kept in {report['out_dir']}; earlier results in the out folder are untouched)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    sys.argv[1:] = quote_path_overrides(sys.argv[1:], PATH_KEYS)  # before Hydra parses them
    check_hydra_command_line("bokeh.export", CONF_DIR / "export", "tflite", sys.argv[1:])  # Hydra's refusals: one sentence
    main()
