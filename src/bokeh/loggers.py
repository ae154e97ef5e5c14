"""Lightning loggers of this project.

:class:`CSVLogger` is Lightning's, except that a run never deletes what an earlier run in the same
folder logged: Lightning's writer removes an existing ``metrics.csv`` when it starts (a resumed run
lost every earlier row, with only a warning saying so); this one appends to it.
"""

from __future__ import annotations

import csv
import os

from lightning_fabric.loggers.csv_logs import _ExperimentWriter
from pytorch_lightning.loggers import csv_logs
from pytorch_lightning.loggers.logger import rank_zero_experiment


class AppendingExperimentWriter(csv_logs.ExperimentWriter):
    """Lightning's CSV writer that keeps the rows already in ``metrics.csv`` and appends after them
    (its columns are read from the file, so a new column rewrites the header around the old rows)."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class CSVLogger(csv_logs.CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` whose ``metrics.csv`` grows across resumes
    (:class:`AppendingExperimentWriter`) instead of starting over."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
