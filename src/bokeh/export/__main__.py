"""``python -m bokeh.export ckpt=<.ckpt> [out=<dir>] [size=HxW] [export.instance_norm=plain] ...``

Hydra entry point for :func:`bokeh.export.pipeline.run` (config ``conf/export/tflite.yaml``).
Prints the summary table and exits 1 naming the failed checks, 2 for bad settings or files.
"""

from __future__ import annotations

import torch._dynamo  # noqa: F401, I001  (import order: before TensorFlow, see bokeh.export.tflite)

import sys

import hydra
from omegaconf import DictConfig

from bokeh.checkpoint import CheckpointError
from bokeh.export.pipeline import ExportConfigError, run
from bokeh.export.table import print_summary


@hydra.main(version_base="1.3", config_path="../../../conf/export", config_name="tflite")
def main(cfg: DictConfig) -> None:
    try:
        report = run(cfg).to_json()
    except (ExportConfigError, CheckpointError) as error:
        print(f"bokeh.export: {error}", file=sys.stderr)
        sys.exit(2)
    print_summary(report)
    if not report["passed"]:
        print(f"bokeh.export: FAILED checks: {', '.join(report['failed_checks'])} "
              f"(files kept in {report['out_dir']}; earlier results in the out folder are untouched)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
