"""The GPU report's training runs, each recorded in the report as it starts and as it ends (a run cut short by
the watchdog keeps what it finished):

* :func:`train`: one run, ``fit(cfg)`` (the main job's seeds, the albumentations path, the zoo models);
* :func:`run_trials`: a sweep's trials (the LR sweep, the variants) through :mod:`cifarhelpers.sweep`
  (``run_sweep`` / ``resume_sweep`` on the sequential backend, in this process on the report's loaded data), the
  part admitting each trial that fits its budget just before it runs.

Both fill the same record (``figures.run_template``): the config, the figures of its ``metrics.json``
(``figures.run_figures``), the wall time around the run (``torch.cuda.synchronize()`` at both ends), peak GPU
memory, the precision; a failure or divergence is recorded in the report's ``errors`` and the part goes on.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cifarhelpers.errors import CifarHelpersError, DivergenceError
from cifarhelpers.files import read_json
from cifarhelpers.sweep import SweepConfig, SweepResult, Trial, latest_run, resume_sweep, run_sweep
from cifarhelpers.training import METRICS_FILE, TrainConfig, fit, resolved_loader, select_precision

from .budget import sync
from .figures import run_figures
from .settings import costs_as_main_job

#: Parts whose completed runs at the main job's cost calibrate the estimates.
CALIBRATING_PARTS = ("main_job", "lr_sweep", "variants")


def train(ctx, rec: dict, cfg: TrainConfig, part: str) -> dict:
    """``fit(cfg)`` in ``<work dir>/<part>/<label>`` with its figures written into ``rec`` (already placed in the
    report). Errors are recorded, not raised; KeyboardInterrupt is recorded, then raised."""
    out = ctx.work_dir / part / rec["label"]
    cfg = cfg.replace(output_dir=str(out))
    start = _begin(ctx, rec, cfg)
    metrics = run_dir = None
    try:
        result = fit(cfg, data=ctx.data, progress=False)
        metrics, run_dir = result.metrics, result.run_dir
        del result
    except KeyboardInterrupt:
        _fill(ctx, rec, *cut_short_run(out), None, cfg, status="interrupted")
        rec["error"] = "interrupted (budget watchdog or signal)"
        raise
    except Exception as err:  # recorded; the next run goes on
        rec["error"] = ctx.note_error(f"{part} {rec['label']}", err)
        status = "diverged" if isinstance(err, DivergenceError) else "failed"
        _fill(ctx, rec, *cut_short_run(out), None, cfg, status=status)
        return rec
    finally:
        _release(ctx.device)
    sync(ctx.device)
    _ended(ctx, rec, cfg, part, metrics, run_dir, time.perf_counter() - start)
    return rec


def run_trials(ctx, part: str, admit: Callable[[Trial], dict | None], *, spec: SweepConfig | None = None,
               sweep_dir: Path | None = None) -> SweepResult:
    """Run a sweep's trials with :mod:`cifarhelpers.sweep`, recording each one in the report.

    Args:
        ctx: the report's ``Context`` (its data is every trial's).
        part: the part the trials belong to.
        admit: called with each trial about to run: the record to fill (already placed in the part's results),
            or None to leave the trial pending in the sweep folder (not this time: the budget, another seed).
        spec: a new sweep (``run_sweep``; its ``output_dir`` inside the work dir, ``backend="sequential"``).
        sweep_dir: or an existing sweep folder to continue (``resume_sweep``).

    Returns:
        The sweep's :class:`~cifarhelpers.sweep.SweepResult` (its folder, every trial's record, the table).

    Raises:
        KeyboardInterrupt: the watchdog or a signal, after the trial in flight was recorded as interrupted.
        CifarHelpersError: the sweep itself could not be written (its folder), after that trial was recorded as
            failed (a trial's own failure is recorded, not raised).
    """
    current: dict = {}

    def before(trial: Trial) -> bool:
        rec = admit(trial)
        if rec is not None:
            current.update(rec=rec, cfg=trial.config, start=_begin(ctx, rec, trial.config))
        return rec is not None

    def after(trial: Trial, record: dict) -> None:
        sync(ctx.device)
        wall = time.perf_counter() - current["start"]
        rec, cfg = current.pop("rec"), current.pop("cfg")
        _release(ctx.device)
        run_dir = Path(record["run_dir"]) if record.get("run_dir") else None
        metrics = _read_metrics(run_dir)
        if record["status"] == "completed" and metrics is not None:
            _ended(ctx, rec, cfg, part, metrics, run_dir, wall)
            return
        rec["error"] = ctx.note_failure(f"{part} {rec['label']}", record.get("reason") or "no metrics.json",
                                        record.get("traceback"))
        _fill(ctx, rec, metrics, run_dir if metrics else None, None, cfg,
              status=record["status"] if record["status"] != "completed" else "failed")

    try:
        if sweep_dir is not None:
            return resume_sweep(sweep_dir, data=ctx.data, progress=False, before_trial=before, after_trial=after)
        return run_sweep(spec, data=ctx.data, progress=False, before_trial=before, after_trial=after)
    except BaseException as err:  # the trial in flight, if any, is recorded as cut short; then the part stops
        if "rec" in current:
            cfg, interrupted = current["cfg"], isinstance(err, KeyboardInterrupt)
            _fill(ctx, current["rec"], *cut_short_run(Path(cfg.output_dir)), None, cfg,
                  status="interrupted" if interrupted else "failed")
            current["rec"]["error"] = ("interrupted (budget watchdog or signal)" if interrupted
                                       else f"{type(err).__name__}: {err}")
        raise


def cut_short_run(run_parent: Path) -> tuple[dict | None, Path | None]:
    """The ``metrics.json`` and folder of the run under ``run_parent`` that fit() left without a
    result (a failure or an interrupt): ``(None, None)`` if it wrote no readable metrics.json."""
    run_dir = latest_run(run_parent)
    metrics = _read_metrics(run_dir)
    return (metrics, run_dir) if metrics is not None else (None, None)


def _read_metrics(run_dir: Path | None) -> dict | None:
    if run_dir is None:
        return None
    with contextlib.suppress(CifarHelpersError):
        return read_json(run_dir / METRICS_FILE)
    return None


def _begin(ctx, rec: dict, cfg: TrainConfig) -> float:
    """The run's config into ``rec`` (status running, saved); peak memory reset; the clock read after a sync."""
    loader = resolved_loader(cfg.loader, cfg.transform_set, ctx.device.type)  # "auto" resolved, as fit() does
    rec.update(model=cfg.model, recipe=cfg.recipe, loader=loader, seed=cfg.seed, max_lr=cfg.resolved_max_lr,
               weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing,
               compile=cfg.compile, epochs_target=rec["epochs_target"] or cfg.epochs, batch_size=cfg.batch_size,
               num_workers=cfg.num_workers if loader == "albumentations" else None, status="running")
    ctx.save()
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
    sync(ctx.device)
    return time.perf_counter()


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _ended(ctx, rec: dict, cfg: TrainConfig, part: str, metrics: dict, run_dir: Path | None, wall: float) -> None:
    """A run that returned: its figures, the calibration (a completed run at the main job's cost), one line."""
    _fill(ctx, rec, metrics, run_dir, wall, cfg)
    if part in CALIBRATING_PARTS and rec["status"] == "completed" and costs_as_main_job(cfg, ctx.main_config()):
        ctx.calibrate_from(rec)
    acc = rec["test_accuracy_percent"]
    print(f"[{part}] {rec['label']}: {rec['status']}, test accuracy "
          f"{'-' if acc is None else f'{acc:.2f}%'} ({rec['test_images']} images), wall {wall:.1f} s "
          f"(data {rec['data_seconds'] or 0:.1f}, warm-up {rec['warmup_seconds'] or 0:.1f}, "
          f"train {rec['training_seconds'] or 0:.1f}, eval {rec['evaluation_seconds'] or 0:.1f}, "
          f"other {rec['other_seconds'] or 0:.1f}), {rec['seconds_per_epoch'] or 0:.2f} s/epoch "
          f"x {rec['epochs_run']}; {ctx.budget.left():.0f} s left", flush=True)


def _fill(ctx, rec: dict, metrics: dict | None, run_dir: Path | None, wall: float | None, cfg: TrainConfig,
          status: str | None = None) -> None:
    if metrics:
        rec.update(run_figures(metrics, wall, cfg.batch_size))
        rec["run_dir"] = str(run_dir)
    if status is not None:
        rec["status"] = status
    if metrics and metrics.get("precision"):
        rec["precision"], rec["precision_source"] = metrics["precision"], "metrics.json"
    else:
        rec["precision"] = select_precision(ctx.device, amp=cfg.amp).to_dict()
        rec["precision_source"] = "cifarhelpers.training.precision.select_precision (metrics.json has none)"
    if ctx.device.type == "cuda":
        rec["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(ctx.device) / 2**20
    ctx.save()
