"""The GPU report's run context (:class:`Context`): what every part needs (settings, device, data, budget, the
report being written) and the bookkeeping of its decisions (run, skip, reuse), estimates and errors. The
training runs themselves are :mod:`gpu_report.runs`'.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch

from cifarhelpers.files import write_json
from cifarhelpers.training import TrainConfig

from .budget import Budget, Calibration, decide, fmt_s, skip_record
from .figures import run_template
from .probes import probe_step_seconds
from .settings import PARTS, REPORT_JSON, REPORT_NOTEBOOKS, Settings, main_config


class Context:
    """What every part needs, and the bookkeeping of decisions, estimates, errors and writes.

    Args:
        settings: :data:`~gpu_report.settings.FULL` or :data:`~gpu_report.settings.SMOKE`.
        report: the report's JSON (``report.new_report``), updated in place and written by :meth:`save`.
        budget: the command's :class:`~gpu_report.budget.Budget`.
        out_dir, work_dir: the output folder (``gpu_report.json``...) and the scratch folder of run folders.
        device, data, data_root: the torch device, the loaded ``CIFAR10Data`` and its folder.
        seeds, lr_grid, variants, variant_top_k, compile_run, notebooks, notebook_parameters, zoo_budgets,
            notebooks_dir, parts: the command line's choices (None: the settings').
        save: write ``gpu_report.json`` on every :meth:`save` (tests turn it off).
    """

    def __init__(self, *, settings: Settings, report: dict, budget: Budget, out_dir: Path, work_dir: Path,
                 device: torch.device | None = None, data=None, data_root: Path | None = None,
                 seeds: list[int] | None = None, lr_grid: list[float] | None = None,
                 variants: list[tuple[str, dict]] | None = None, variant_top_k: int | None = None,
                 compile_run: bool = True, notebooks: tuple[str, ...] = REPORT_NOTEBOOKS,
                 notebook_parameters: dict | None = None, zoo_budgets: dict[str, float] | None = None,
                 notebooks_dir: Path | None = None, parts: list[str] | None = None, save: bool = True):
        self.settings, self.report, self.budget = settings, report, budget
        self.out_dir, self.work_dir = out_dir, work_dir
        self.device, self.data, self.data_root = device, data, data_root
        self.seeds = list(seeds if seeds is not None else settings.seeds)
        self.lr_grid = list(lr_grid if lr_grid is not None else settings.lr_grid)
        self.variants = [(name, dict(o)) for name, o in (variants if variants is not None else settings.variants)]
        self.variant_top_k = variant_top_k if variant_top_k is not None else settings.variant_top_k
        self.compile_run = compile_run
        self.notebooks = tuple(notebooks)
        self.notebook_parameters = {**settings.notebook_parameters, **(notebook_parameters or {})}
        self.zoo_budgets = dict(zoo_budgets or {})
        self.notebooks_dir = notebooks_dir
        self.parts = list(parts if parts is not None else PARTS)
        self.calibration: Calibration | None = None
        self.current_part: str | None = None
        self.notebook_run_dir: Path | None = None
        self._save = save

    # -- writes ------------------------------------------------------------------------
    def save(self) -> None:
        """The budget's figures and the calibration into the report, then ``gpu_report.json`` (atomically)."""
        self.report["budget"].update(self.budget.to_dict())
        self.report["budget"]["calibration"] = self.calibration.to_dict() if self.calibration else None
        if self._save:
            write_json(self.out_dir / REPORT_JSON, self.report)

    def part(self, name: str) -> dict:
        return self.report["parts"][name]

    # -- decisions ---------------------------------------------------------------------
    def reserve_seconds(self, part: str) -> float:
        """Time held back for the cheap profile part while earlier parts run."""
        if "profile" not in self.parts or part == "profile" or self.part("profile")["status"] != "pending":
            return 0.0
        est = self.estimate_profile(probe=False)
        return est if est is not None else self.settings.profile_fixed_seconds

    def decide(self, part: str, item: str, estimate: float | None, *, reserve: bool = True) -> bool:
        """Run ``item`` if its estimate fits in the time left minus what is held back for the profile
        part; else record and print the skip. Counts the item in the part's ``items_run``/``items_skipped``."""
        left = self.budget.left()
        held = self.reserve_seconds(part) if reserve else 0.0
        d = decide(estimate, left - held, self.settings.min_start_seconds)
        if d.run:
            self.part(part)["items_run"] += 1
            print(f"[{part}] start {item} (estimate {fmt_s(estimate)}, {d.available_seconds:.0f} s available)",
                  flush=True)
        else:
            why = f"{d.reason} ({left:.0f} s left, {held:.0f} s held back for the profile part)" if held else d.reason
            self.skip(part, item, why, estimate, d.available_seconds)
        return d.run

    def skip(self, part: str, item: str, reason: str, estimate: float | None = None,
             available: float | None = None) -> None:
        """Record and print an item left out, and why."""
        self.report["skipped"].append(skip_record(part, item, reason, self.budget.elapsed(), estimate, available))
        self.part(part)["items_skipped"] += 1
        print(f"[{part}] SKIP {item}: {reason}", flush=True)
        self.save()

    def reuse(self, part: str, label: str, run: dict, note: str) -> dict:
        """A record for ``label`` that is part 1's ``run`` (the same config and seed), not trained again;
        counted in the part's ``items_run``. Its ``notes`` are ``[note]``."""
        rec = {**run_template(label), **{k: v for k, v in run.items() if k not in ("label", "notes")},
               "label": label, "reused_from": f"main_job {run['label']}", "estimate_seconds": 0.0, "notes": [note]}
        self.part(part)["items_run"] += 1
        print(f"[{part}] {label}: reused main_job {run['label']} ({rec['test_accuracy_percent']:.2f}%)", flush=True)
        return rec

    # -- estimates ---------------------------------------------------------------------
    def scaled(self, seconds: float | None) -> float | None:
        """An estimate times the settings' safety factor."""
        return None if seconds is None else seconds * self.settings.safety_factor

    def main_config(self, **changes) -> TrainConfig:
        """The main job on this context's device and data (:func:`~gpu_report.settings.main_config`)."""
        base = main_config(self.settings, device=str(self.device),
                           data_root=str(self.data_root) if self.data_root else None)
        return base.replace(**changes) if changes else base

    def train_images(self) -> int:
        return self.settings.train_subset or len(self.data.y_train)

    def test_images(self) -> int:
        return self.settings.test_subset or len(self.data.y_test)

    def ensure_calibration(self) -> Calibration | None:
        """The main job's figures; before any main-job run, a prior from a short step-time probe."""
        if self.calibration is None:
            try:
                step = probe_step_seconds("custom_resnet", self)
            except Exception as err:  # an estimate is not worth a crash
                self.note_error("calibration probe", err)
                return None
            s = self.settings
            steps = self.train_images() // s.batch_size
            test_batch = max(s.batch_size, 256)
            test_steps = -(-self.test_images() // test_batch)
            self.calibration = Calibration(
                step_seconds=step, steps_per_epoch=steps,
                test_seconds_per_epoch=0.4 * step * test_steps * test_batch / s.batch_size,
                epoch_overhead_seconds=s.prior_epoch_overhead_seconds, fixed_seconds=s.prior_fixed_seconds,
                source=f"probe: {s.probe_steps} synthetic steps of custom_resnet at batch {s.batch_size}")
        return self.calibration

    def calibrate_from(self, record: dict) -> None:
        """Measured figures replace the probe's prior (the first completed main-job-cost run's)."""
        if self.calibration is None or self.calibration.source.startswith("probe"):
            cal = Calibration.from_run(record)
            if cal is not None:
                self.calibration = cal

    def estimate_main(self, epochs: int, extra_fixed: float = 0.0) -> float | None:
        cal = self.ensure_calibration()
        return self.scaled(cal.run_seconds(epochs, extra_fixed=extra_fixed)) if cal else None

    def estimate_lr_test(self, iterations: int) -> float | None:
        cal = self.ensure_calibration()
        if cal is None:
            return None
        return self.scaled(cal.fixed_seconds + self.settings.lr_test_step_factor * iterations * cal.step_seconds)

    def estimate_profile(self, probe: bool = True) -> float | None:
        cal = self.ensure_calibration() if probe else self.calibration
        if cal is None:
            return None
        s = self.settings
        steps = cal.steps_per_epoch * s.profiler_overhead_factor + s.profile_warmup_steps
        return self.scaled(s.profile_fixed_seconds + steps * cal.step_seconds)

    # -- errors ------------------------------------------------------------------------
    def note_error(self, where: str, err: BaseException) -> str:
        """Record the exception being handled (with its traceback) in the report's ``errors``; returns its text."""
        return self.note_failure(where, f"{type(err).__name__}: {err}", traceback.format_exc())

    def note_failure(self, where: str, text: str, trace: str | None = None) -> str:
        """Record a failure (``text``, and its traceback when there is one) in the report's ``errors`` and
        print it; returns the text (at most 4,000 characters)."""
        self.report["errors"].append({"where": where, "error": text[:4000],
                                      "traceback": trace[-4000:] if trace else None})
        print(f"[{self.current_part}] ERROR in {where}: {text[:500]}", file=sys.stderr, flush=True)
        return text[:4000]
