"""What a run writes so that people can watch it: CSV files and TensorBoard event files.

In every run folder, rewritten after every epoch (atomically, never ahead of the checkpoint):

* ``history.csv``: one row per epoch: epoch, train_loss, train_accuracy, test_loss,
  test_accuracy, lr, train_seconds, test_seconds, seconds (accuracies are fractions in [0, 1]);
* ``steps.csv``: one row per optimizer step: epoch (1-based), step (1-based within the epoch),
  global_step (1-based), loss (the batch's mean cross-entropy), lr (the LR that step used).

With TensorBoard installed (``pip install 'cifarhelpers[tensorboard]'``) the same figures go to
event files in the run folder through ``torch.utils.tensorboard.SummaryWriter`` (``train/loss`` and
``train/lr`` per step; ``epoch/*`` per epoch), so ``%tensorboard --logdir runs`` in Jupyter or Colab
shows every run. Without it the CSV files are written all the same.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cifarhelpers.files import atomic_write

HISTORY_CSV = "history.csv"
STEPS_CSV = "steps.csv"
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "train_seconds",
                   "test_seconds", "seconds")
STEP_COLUMNS = ("epoch", "step", "global_step", "loss", "lr")
_EPOCH_SCALARS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "seconds")


def epoch_steps(epoch: int, losses: Sequence[float], lrs: Sequence[float], first_global_step: int) -> list[dict]:
    """The ``steps.csv`` rows of one epoch.

    Args:
        epoch: the epoch, 1-based.
        losses, lrs: each step's loss and LR, in order.
        first_global_step: the global step (1-based) of the epoch's first step.
    """
    return [{"epoch": epoch, "step": i + 1, "global_step": first_global_step + i, "loss": loss, "lr": lr}
            for i, (loss, lr) in enumerate(zip(losses, lrs))]


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts with at least ``columns``) as CSV with a header, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    return atomic_write(path, lambda f: f.write(data))


def _summary_writer(folder: Path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tensorboard's own deprecation warnings on import
            from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is an extra
        return None
    return SummaryWriter(log_dir=str(folder))


class RunLogs:
    """The CSV files and (when TensorBoard is installed) the event files of one run folder.

    Args:
        folder: the run folder.
        tensorboard: write TensorBoard event files when the package is installed.
    """

    def __init__(self, folder: Path, tensorboard: bool = True):
        self.folder = Path(folder)
        self.writer = _summary_writer(self.folder) if tensorboard else None

    @property
    def tensorboard(self) -> bool:
        """True when TensorBoard event files are written."""
        return self.writer is not None

    def record(self, history: Sequence[dict], steps: Sequence[dict], new_steps: Sequence[dict]) -> None:
        """Rewrite ``history.csv`` and ``steps.csv`` with every epoch and step so far, and send the
        last epoch (``history[-1]``) and its ``new_steps`` to TensorBoard.

        Raises:
            RunWriteError: a CSV file could not be written.
        """
        write_csv(self.folder / HISTORY_CSV, HISTORY_COLUMNS, history)
        write_csv(self.folder / STEPS_CSV, STEP_COLUMNS, steps)
        if self.writer is None or not history:
            return
        for row in new_steps:
            self.writer.add_scalar("train/loss", row["loss"], row["global_step"])
            self.writer.add_scalar("train/lr", row["lr"], row["global_step"])
        entry = history[-1]
        for key in _EPOCH_SCALARS:
            self.writer.add_scalar(f"epoch/{key}", entry[key], entry["epoch"])
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer (if any)."""
        if self.writer is not None:
            self.writer.close()
