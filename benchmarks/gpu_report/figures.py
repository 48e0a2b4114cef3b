"""A training run's figures in the GPU report: the record every run has (:func:`run_template`), its figures
read from ``metrics.json`` (:func:`run_figures`: the wall time split into data, warm-up, training, evaluation
and other), the accuracy over seeds (:func:`accuracy_summary`) and a variant against the default
(:func:`compare_to_default`: the difference, the default's spread, Welch's t). Pure functions.
"""

from __future__ import annotations

import statistics

from .settings import ADOPTION_SEEDS


def warmup_seconds(seconds: list[float]) -> float | None:
    """First epoch's seconds minus the median of the others' (>= 0); None with fewer than 2 epochs."""
    if len(seconds) < 2:
        return None
    return max(0.0, seconds[0] - statistics.median(seconds[1:]))


def run_figures(metrics: dict, wall_seconds: float | None, batch_size: int) -> dict:
    """A run's figures from its ``metrics.json`` (complete or partial) and the wall time around ``fit``."""
    hist = list(metrics.get("history") or [])
    timings = metrics.get("timings") or {}
    train = [float(h["train_seconds"]) for h in hist]
    test = [float(h["test_seconds"]) for h in hist]
    data = timings.get("data_seconds")
    wall = wall_seconds if wall_seconds is not None else timings.get("wall_seconds")
    warm = warmup_seconds(train)
    train_total, test_total = sum(train), sum(test)
    flip_tta = sum(float(h.get("flip_tta_seconds") or 0.0) for h in hist)  # the last epoch's extra test pass
    training = train_total - (warm or 0.0)
    other = (wall - (data or 0.0) - train_total - test_total - flip_tta) if wall is not None else None
    train_images = (metrics.get("data") or {}).get("train_images")
    steps = train_images // batch_size if train_images else None
    steady_train = statistics.median(train[1:]) if len(train) > 1 else (train[0] if train else None)
    steady_epoch = statistics.median([a + b for a, b in zip(train[1:], test[1:])]) if len(hist) > 1 else (
        train[0] + test[0] if hist else None)
    completed = metrics.get("status") == "completed"
    acc = metrics.get("final_test_accuracy") if completed else None
    tta = metrics.get("final_test_accuracy_flip_tta") if completed else None
    return {
        "status": metrics.get("status"),
        "epochs_run": len(hist),
        "train_images": train_images,
        "test_images": (metrics.get("data") or {}).get("test_images"),
        "steps_per_epoch": steps,
        "wall_seconds": wall,
        "fit_wall_seconds": timings.get("wall_seconds"),
        "data_seconds": data,
        "warmup_seconds": warm,
        "training_seconds": training if hist else None,
        "evaluation_seconds": test_total + flip_tta if hist else None,
        "flip_tta_seconds": flip_tta if hist else None,
        "other_seconds": other,
        "eval_warmup_seconds": warmup_seconds(test),
        "train_seconds_total": train_total if hist else None,
        "seconds_per_epoch": (train_total + test_total) / len(hist) if hist else None,
        "steady_seconds_per_epoch": steady_epoch,
        "steady_train_images_per_second": (steps * batch_size / steady_train) if steps and steady_train else None,
        "test_accuracy_fraction": acc,
        "test_accuracy_percent": 100.0 * acc if acc is not None else None,
        "test_accuracy_flip_tta_percent": 100.0 * tta if tta is not None else None,
        "last_epoch_test_accuracy_fraction": hist[-1]["test_accuracy"] if hist else None,
        "history": [{k: h.get(k) for k in ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                                           "lr", "train_seconds", "test_seconds")} for h in hist],
    }


def run_template(label: str) -> dict:
    """Every key a training run's record has (the same whether it ran, failed or was cut short)."""
    return {
        "label": label, "status": "pending", "model": None, "recipe": None, "loader": None, "seed": None,
        "max_lr": None, "weight_decay": None, "label_smoothing": None, "variant": None, "overrides": None,
        "compile": False, "epochs_target": None, "epochs_run": 0, "batch_size": None,
        "num_workers": None, "train_images": None, "test_images": None, "steps_per_epoch": None,
        "wall_seconds": None, "fit_wall_seconds": None, "data_seconds": None, "warmup_seconds": None,
        "training_seconds": None, "evaluation_seconds": None, "flip_tta_seconds": None, "other_seconds": None,
        "eval_warmup_seconds": None, "train_seconds_total": None, "seconds_per_epoch": None,
        "steady_seconds_per_epoch": None, "steady_train_images_per_second": None, "test_accuracy_fraction": None,
        "test_accuracy_percent": None, "test_accuracy_flip_tta_percent": None,
        "last_epoch_test_accuracy_fraction": None, "peak_gpu_memory_mib": None, "precision": None,
        "precision_source": None, "estimate_seconds": None, "source": None, "reused_from": None,
        "probe": None, "run_dir": None, "history": [], "notes": [], "error": None,
    }


def accuracy_summary(records: list[dict]) -> dict:
    """Mean/min/max/std test accuracy (percent; plain, and the mean with flip TTA) and mean seconds over
    completed runs."""
    done = [r for r in records if r.get("test_accuracy_percent") is not None]
    acc = [r["test_accuracy_percent"] for r in done]

    def mean(key):
        vals = [r[key] for r in done if r.get(key) is not None]
        return statistics.mean(vals) if vals else None

    return {
        "runs_completed": len(done),
        "seeds": [r.get("seed") for r in done],
        "test_accuracy_percent_mean": statistics.mean(acc) if acc else None,
        "test_accuracy_percent_min": min(acc) if acc else None,
        "test_accuracy_percent_max": max(acc) if acc else None,
        "test_accuracy_percent_std": statistics.stdev(acc) if len(acc) > 1 else None,
        "test_accuracy_flip_tta_percent_mean": mean("test_accuracy_flip_tta_percent"),
        "wall_seconds_mean": mean("wall_seconds"),
        "seconds_per_epoch_mean": mean("seconds_per_epoch"),
        "steady_seconds_per_epoch_mean": mean("steady_seconds_per_epoch"),
    }


def compare_to_default(default: list[float], variant: list[float], min_seeds: int = ADOPTION_SEEDS) -> dict:
    """Whether a variant earns a change of default: the project's rule (a change is adopted only on at least
    ``min_seeds`` seeds each, when its mean test accuracy beats the default's by more than the spread, max - min,
    of the default's seeds), with Welch's t beside the difference.

    Args:
        default, variant: test accuracies in percent, one per seed (completed runs only).
        min_seeds: seeds each side needs before ``adopt`` can be True.

    Returns:
        ``difference_points`` (variant mean - default mean, percentage points), ``default_spread_points``,
        ``welch_t`` and ``welch_p`` (two-sided; Welch's unequal-variance t-test, ``scipy.stats.ttest_ind`` with
        ``equal_var=False``; None with fewer than 2 runs a side or no variance at all), the seed counts and
        ``adopt`` (bool).
    """
    from scipy import stats  # scikit-learn's own dependency; imported here so the report starts without it

    out = {"default_runs": len(default), "variant_runs": len(variant), "difference_points": None,
           "default_spread_points": None, "welch_t": None, "welch_p": None, "adopt": False}
    if not default or not variant:
        return out
    out["difference_points"] = statistics.mean(variant) - statistics.mean(default)
    out["default_spread_points"] = max(default) - min(default)
    if len(default) > 1 and len(variant) > 1 and (statistics.pvariance(default) + statistics.pvariance(variant)) > 0:
        test = stats.ttest_ind(variant, default, equal_var=False)
        out["welch_t"], out["welch_p"] = float(test.statistic), float(test.pvalue)
    out["adopt"] = (len(default) >= min_seeds and len(variant) >= min_seeds
                    and out["difference_points"] > out["default_spread_points"])
    return out
