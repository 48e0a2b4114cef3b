"""A sweep's results table: one row per config (its seeds together), as a CSV and as printed text.

Each row (:func:`results_table`) holds the swept values, then:

=========================  ================================================================
column                     meaning
=========================  ================================================================
``seeds``                  trials of this config (one per seed)
``completed``              of those, how many completed (``diverged``, ``failed``,
                           ``pending`` count the others)
``test_accuracy_mean``     mean final test accuracy of the completed trials, a fraction in
                           [0, 1] (empty when none completed); ``_min`` and ``_max`` likewise
``wall_seconds``           the config's wall time: its trials' wall-clock seconds, summed over seeds
=========================  ================================================================

The printed table (:func:`format_table`) shows the accuracies in percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COUNTS = ("completed", "diverged", "failed", "pending")
#: The units of the figures in a sweep's results (``sweep.json``, ``lr_sweep.json``).
UNITS = {"accuracy": "fraction of test images correct, in [0, 1]", "seconds": "wall-clock seconds"}
FIGURES = ("test_accuracy_mean", "test_accuracy_min", "test_accuracy_max", "wall_seconds")


def results_table(trials: Sequence[dict[str, Any]], swept: Sequence[str]) -> list[dict[str, Any]]:
    """One row per config, in the order the configs first appear in ``trials``.

    Args:
        trials: trial records with ``params`` (swept values and seed), ``status``,
            ``final_test_accuracy`` (fraction) and ``wall_seconds`` (as in ``sweep.json``).
        swept: the swept field names (the row's first columns).

    Returns:
        Dicts with the swept values, ``seeds``, the counts of :data:`COUNTS` and :data:`FIGURES`
        (accuracies as fractions, None when no trial of the config completed).
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for trial in trials:
        key = tuple(repr(trial["params"].get(name)) for name in swept)
        groups.setdefault(key, []).append(trial)
    rows = []
    for members in groups.values():
        row: dict[str, Any] = {name: members[0]["params"].get(name) for name in swept}
        row["seeds"] = len(members)
        for status in COUNTS:
            row[status] = sum(1 for t in members if _bucket(t["status"]) == status)
        accuracies = [t["final_test_accuracy"] for t in members if t["status"] == "completed"
                      and t.get("final_test_accuracy") is not None]
        row["test_accuracy_mean"] = sum(accuracies) / len(accuracies) if accuracies else None
        row["test_accuracy_min"] = min(accuracies, default=None)
        row["test_accuracy_max"] = max(accuracies, default=None)
        row["wall_seconds"] = sum(t["wall_seconds"] for t in members if t.get("wall_seconds") is not None)
        rows.append(row)
    return rows


def best_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the highest mean test accuracy (the first of equals), or None if no config completed."""
    done = [row for row in rows if row["test_accuracy_mean"] is not None]
    return max(done, key=lambda row: row["test_accuracy_mean"], default=None)


def _bucket(status: str) -> str:
    return status if status in COUNTS else "pending"  # "interrupted": not finished yet


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def format_table(rows: Sequence[dict[str, Any]], swept: Sequence[str]) -> str:
    """The table as aligned text: swept values, runs (completed / seeds, and any diverged or
    failed), test accuracy mean, min and max in percent, and wall seconds."""
    header = [*swept, "runs", "test acc mean", "min", "max", "wall s"]
    lines = []
    for row in rows:
        runs = f"{row['completed']}/{row['seeds']} completed"
        runs += "".join(f", {row[s]} {s}" for s in COUNTS[1:] if row[s])
        lines.append([*(_cell(row[name]) for name in swept), runs, _percent(row["test_accuracy_mean"]),
                      _percent(row["test_accuracy_min"]), _percent(row["test_accuracy_max"]),
                      f"{row['wall_seconds']:.1f}"])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in [header, *lines])


def epoch_line(name: str, entry: dict[str, Any], epochs: int) -> str:
    """One progress line for an epoch of trial ``name`` (``entry``: a history entry)."""
    return (f"  {name}: epoch {entry['epoch']}/{epochs}  train loss {entry['train_loss']:.4f}  test acc "
            f"{100 * entry['test_accuracy']:.2f}%  {entry['seconds']:.1f} s")


def trial_line(record: dict[str, Any]) -> str:
    """One line saying how trial ``record`` ended."""
    if record["status"] == "completed":
        how = f"test accuracy {100 * record['final_test_accuracy']:.2f}%"
    else:
        how = (record.get("reason") or "").split(". ")[0]
    return f"{record['name']}: {record['status']}: {how} ({record['wall_seconds']:.1f} s)"
