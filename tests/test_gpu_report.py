"""The GPU report (the package benchmarks/gpu_report/): the budget and skip decisions, the estimates, the LR grid
order, the figures taken from a run's metrics, the kernel shares, the JSON layout and the part runner, all with
pure functions and fake parts; the LR sweep and variants parts run their trials through cifarhelpers.sweep with a
stand-in for fit() (no training). One short real run of the smoke mode with a tight budget is marked ``data`` and
``slow``; the whole smoke run is the bundle test's (tests/test_bundle.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cifarhelpers.data import CLASSES, CIFAR10Data, DataSource
from cifarhelpers.errors import ConfigError, DivergenceError
from cifarhelpers.sweep import trials as sweep_trials
from cifarhelpers.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the package gpu_report and its sibling peer_airbench

from gpu_report import budget, cli, context, figures, report, runner, runs, session, settings
from gpu_report.parts import lr_sweep, main_job, notebooks, profiling, variants


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_tree(obj, skip: frozenset = frozenset()):
    """The nested keys of a JSON-like object (lists: the key tree of their first element)."""
    if isinstance(obj, dict):
        return {k: (None if k in skip else key_tree(v, skip)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [key_tree(obj[0], skip)] if obj else []
    return None


def fake_metrics(train=(5.0, 2.0, 2.1, 1.9), test=(0.6, 0.5, 0.5, 0.5), *, data=3.0, wall=30.0,
                 status="completed", train_images=50_000, acc=0.93):
    hist = [{"epoch": i + 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": acc,
             "lr": 0.01, "train_seconds": a, "test_seconds": b, "seconds": a + b}
            for i, (a, b) in enumerate(zip(train, test))]
    return {"status": status, "history": hist, "final_test_accuracy": acc if status == "completed" else None,
            "timings": {"data_seconds": data, "wall_seconds": wall - 0.2},
            "data": {"train_images": train_images, "test_images": 10_000}, "config": {"output_dir": "/nowhere"}}


def tiny_data(train: int = 64, test: int = 50) -> CIFAR10Data:
    """Random images (format only): the data a sweep trial's stand-in for fit() is handed."""
    rng = np.random.default_rng(0)
    return CIFAR10Data(x_train=rng.integers(0, 256, (train, 32, 32, 3), dtype=np.uint8),
                       y_train=np.arange(train, dtype=np.int64) % 10,
                       x_test=rng.integers(0, 256, (test, 32, 32, 3), dtype=np.uint8),
                       y_test=np.arange(test, dtype=np.int64) % 10, classes=CLASSES,
                       source=DataSource("image-folder", "/synthetic", "0" * 64))


class FakeFit:
    """A stand-in for ``fit`` where cifarhelpers.sweep's trials call it (``run_trial``): writes a run folder with
    a 2-epoch ``metrics.json`` and returns what fit returns, at ``outcome(cfg)`` percent test accuracy; an
    exception as the outcome is raised after the folder is written (a divergence, an interruption). Each call
    advances ``clock`` by ``seconds``."""

    def __init__(self, outcome, clock=None, seconds: float = 0.0):
        self.outcome, self.clock, self.seconds, self.calls = outcome, clock, seconds, []

    def __call__(self, cfg, *, data=None, progress=True, on_epoch=None):
        assert data is not None, "the report hands its loaded data to every trial"
        self.calls.append(cfg)
        if self.clock is not None:
            self.clock.now += self.seconds
        outcome = self.outcome(cfg)
        done = isinstance(outcome, float)
        status = "completed" if done else ("diverged" if isinstance(outcome, DivergenceError) else "interrupted")
        metrics = fake_metrics(train=(2.0, 1.0), test=(0.2, 0.1), acc=outcome / 100 if done else 0.1, status=status,
                               train_images=64)
        run_dir = Path(cfg.output_dir) / f"20261203-00000{len(self.calls)}-{cfg.model}"
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        if not done:
            raise outcome
        return SimpleNamespace(run_dir=run_dir, final_test_accuracy=outcome / 100, history=metrics["history"],
                               metrics=metrics)


def install_fit(monkeypatch, fake: FakeFit) -> None:
    """``fake`` where a sweep's trials call ``fit`` (``cifarhelpers.sweep.trials``, which imports the name at its top)."""
    monkeypatch.setattr(sweep_trials, "fit", fake)


def sweep_json(folder: Path) -> dict:
    """The one sweep folder's ``sweep.json`` under ``folder``."""
    found = sorted(folder.glob("sweep-*/sweep.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


# -- budget and decisions ------------------------------------------------------------------

def test_budget_counts_from_the_start_and_keeps_the_final_margin():
    clock = FakeClock(100.0)
    clocked = budget.Budget(540, margin_seconds=15, start=90.0, clock=clock)
    assert clocked.elapsed() == 10.0 and clocked.left() == 515.0
    clock.now = 700.0
    assert clocked.left() < 0
    assert set(clocked.to_dict()) == {"budget_seconds", "final_margin_seconds", "elapsed_seconds", "left_seconds"}


def test_decide_runs_what_fits_and_says_why_not():
    assert budget.decide(100.0, 120.0, 20.0).run
    no = budget.decide(130.0, 120.0, 20.0)
    assert not no.run and "130" in no.reason and "120" in no.reason and no.estimate_seconds == 130.0
    assert budget.decide(None, 25.0, 20.0).run, "no estimate yet: runs when enough time is left to start"
    assert not budget.decide(None, 10.0, 20.0).run
    assert "0 s available" in budget.decide(5.0, -3.0, 1.0).reason, "negative time left reads as 0"


def test_fit_epochs_runs_fewer_epochs_or_none():
    assert budget.fit_epochs(24, 10.0, 20.0, 500.0) == 24
    assert budget.fit_epochs(24, 10.0, 20.0, 100.0) == 8
    assert budget.fit_epochs(24, 10.0, 20.0, 25.0) == 0
    assert budget.fit_epochs(100, 2.0, 0.0, 1e9) == 100


def test_order_lr_grid_puts_the_informative_values_first():
    grid = [5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]
    order = lr_sweep.order_lr_grid(grid, 0.01, suggestion=2.59e-4)
    assert [e["max_lr"] for e in order] == [0.01, 5e-3, 2e-2, 2.59e-4, 2e-3, 1e-3, 5e-4]
    assert [e["source"] for e in order[:4]] == ["default", "grid", "grid", "suggestion"]
    near = lr_sweep.order_lr_grid(grid, 0.01, suggestion=1.02e-3)  # within 5% of a grid value: that value moves up
    assert [e["max_lr"] for e in near] == [0.01, 5e-3, 2e-2, 1e-3, 2e-3, 5e-4]
    assert near[3]["source"] == "grid+suggestion" and len(near) == len(grid)
    assert [e["max_lr"] for e in lr_sweep.order_lr_grid(grid, 0.01, float("nan"))][:3] == [0.01, 5e-3, 2e-2]
    assert [e["max_lr"] for e in lr_sweep.order_lr_grid([1e-3, 1e-2], 0.01)] == [0.01, 1e-3]


# -- figures ----------------------------------------------------------------------------------

def test_run_figures_split_the_wall_time():
    rec = figures.run_figures(fake_metrics(), wall_seconds=30.0, batch_size=512)
    assert rec["warmup_seconds"] == pytest.approx(5.0 - 2.0)  # first epoch minus the median of the others
    parts = (rec["data_seconds"], rec["warmup_seconds"], rec["training_seconds"], rec["evaluation_seconds"],
             rec["other_seconds"])
    assert sum(parts) == pytest.approx(rec["wall_seconds"]) and rec["other_seconds"] > 0
    assert rec["steps_per_epoch"] == 97 and rec["epochs_run"] == 4
    assert rec["test_accuracy_fraction"] == 0.93 and rec["test_accuracy_percent"] == pytest.approx(93.0)
    metrics = fake_metrics()
    metrics["history"][-1]["flip_tta_seconds"] = 0.7  # the last epoch's flip-TTA pass counts as evaluation
    tta = figures.run_figures(metrics, wall_seconds=30.0, batch_size=512)
    assert tta["evaluation_seconds"] == pytest.approx(rec["evaluation_seconds"] + 0.7)
    assert tta["other_seconds"] == pytest.approx(rec["other_seconds"] - 0.7) and tta["flip_tta_seconds"] == 0.7
    assert rec["steady_seconds_per_epoch"] == pytest.approx(2.5)
    assert rec["steady_train_images_per_second"] == pytest.approx(97 * 512 / 2.0)
    assert set(rec) <= set(figures.run_template("x")), "every figure has its place in the run template"


def test_run_figures_of_a_run_cut_short_have_no_final_accuracy():
    rec = figures.run_figures(fake_metrics(train=(5.0,), test=(0.6,), status="interrupted"), None, 512)
    assert rec["test_accuracy_fraction"] is None and rec["last_epoch_test_accuracy_fraction"] == 0.93
    assert rec["warmup_seconds"] is None and rec["epochs_run"] == 1
    assert figures.warmup_seconds([1.0, 3.0, 3.0]) == 0.0, "never negative"


def test_calibration_from_a_run_predicts_a_run_of_the_same_shape():
    rec = figures.run_figures(fake_metrics(), wall_seconds=30.0, batch_size=512)
    cal = budget.Calibration.from_run({**rec, "label": "seed0"})
    assert cal.steps_per_epoch == 97 and cal.step_seconds == pytest.approx(2.0 / 97)
    assert cal.run_seconds(4) == pytest.approx(rec["wall_seconds"], rel=0.1)
    assert cal.train_epoch_seconds(data_seconds=10.0) == 10.0, "a slower loader bounds the epoch"
    assert cal.run_seconds(24) > cal.run_seconds(4)
    assert budget.Calibration.from_run({"history": []}) is None


def test_accuracy_summary_over_seeds():
    records = [{"seed": s, "test_accuracy_percent": a, "wall_seconds": 60.0, "seconds_per_epoch": 2.5,
                "steady_seconds_per_epoch": 2.4} for s, a in enumerate((93.0, 94.0, 95.0))]
    records.append({"seed": 3, "test_accuracy_percent": None})
    s = figures.accuracy_summary(records)
    assert s["runs_completed"] == 3 and s["seeds"] == [0, 1, 2]
    assert (s["test_accuracy_percent_mean"], s["test_accuracy_percent_min"], s["test_accuracy_percent_max"]) == (
        94.0, 93.0, 95.0)
    assert set(s) == set(figures.accuracy_summary([]))


def test_kernel_shares_sum_to_100_and_cudnn_batch_norm_is_not_a_convolution():
    assert profiling.classify_kernel("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc") == "conv_matmul"
    assert profiling.classify_kernel("cutlass3x_sm90_tensorop_gemm_bf16") == "conv_matmul"
    assert profiling.classify_kernel("cudnn::bn_fw_tr_1C11_kernel_NCHW") == "other"
    assert profiling.classify_kernel("void at::native::vectorized_elementwise_kernel<4>") == "other"
    assert profiling.classify_kernel("aten::convolution_backward") == "conv_matmul"
    assert profiling.classify_kernel("aten::native_batch_norm") == "other"
    records = [("sm90_xmma_fprop_implicit_gemm", 0.6, 100), ("cudnn::bn_fw_tr", 0.2, 50), ("Memset (Device)", 0.05, 3)]
    s = profiling.summarize_kernels(records, wall_seconds=1.0)
    assert s["conv_matmul_percent"] == pytest.approx(60.0) and s["idle_percent"] == pytest.approx(15.0)
    assert s["conv_matmul_percent"] + s["other_kernel_percent"] + s["idle_percent"] == pytest.approx(100.0)
    assert [k["rank"] for k in s["top_kernels"]] == [1, 2, 3] and s["top_kernels"][0]["seconds"] == 0.6
    overlapped = profiling.summarize_kernels(records, wall_seconds=0.5)
    assert overlapped["idle_seconds"] == 0.0
    assert overlapped["conv_matmul_percent"] + overlapped["other_kernel_percent"] == pytest.approx(100.0)
    text = profiling.top_kernels_text(s, "header")
    assert text.startswith("header") and "sm90_xmma_fprop_implicit_gemm" in text


def test_kernel_records_leave_out_annotations_that_span_counted_kernels():
    """The H200 report of 2026-11-26 listed ``Optimizer.step#Adam.step`` (a range over the optimizer's own
    kernels, device type CUDA) among the top kernels: its time was counted twice."""
    from types import SimpleNamespace

    def event(name, us, annotation=False):
        return SimpleNamespace(name=name, device_type="DeviceType.CUDA", is_user_annotation=annotation,
                               time_range=SimpleNamespace(elapsed_us=lambda: us))

    events = [event("sm90_xmma_fprop_implicit_gemm", 600), event("multi_tensor_apply_kernel<Adam>", 300),
              event("Optimizer.step#Adam.step", 320), event("ProfilerStep#3", 1000),
              event("some_range", 900, annotation=True), event("multi_tensor_apply_kernel<Adam>", 100)]
    records, what = profiling.kernel_records(SimpleNamespace(events=lambda: events), torch.device("cuda"))
    assert what.startswith("CUDA kernels")
    assert sorted(records) == [("multi_tensor_apply_kernel<Adam>", pytest.approx(400e-6), 2),
                               ("sm90_xmma_fprop_implicit_gemm", pytest.approx(600e-6), 1)]


# -- the JSON layout --------------------------------------------------------------------------

def test_the_layout_has_the_same_keys_in_smoke_and_full_mode():
    whole = budget.Budget(60, clock=FakeClock())
    smoke = report.new_report(settings.SMOKE, list(settings.PARTS), whole, ["gpu_report.py", "--smoke"])
    full = report.new_report(settings.FULL, list(settings.PARTS), whole, ["gpu_report.py"])
    assert key_tree(smoke, frozenset({"notebook_parameters"})) == key_tree(full, frozenset({"notebook_parameters"}))
    assert list(smoke["parts"]) == list(settings.PARTS)
    for key in ("environment", "data", "budget", "settings", "parts", "skipped", "errors", "summary", "files", "units"):
        assert key in smoke
    assert set(smoke["files"]) >= {"report", "notebooks_tar", "profile_top_kernels", "log"}
    assert len(settings.OUTPUT_FILES) <= 8
    json.dumps(smoke, allow_nan=False)


# -- the part runner with fake parts and a fake clock -------------------------------------------

def make_ctx(tmp_path, budget_seconds=100.0, parts=None, clock=None):
    clock = clock or FakeClock()
    clocked = budget.Budget(budget_seconds, margin_seconds=0.0, start=0.0, clock=clock)
    layout = report.new_report(settings.SMOKE, list(parts or settings.PARTS), clocked, ["test"])
    ctx = context.Context(settings=settings.SMOKE, report=layout, budget=clocked, out_dir=tmp_path, work_dir=tmp_path / "work",
                     parts=parts)
    return ctx, clock


def costing(seconds):
    """A fake part: one item estimated (exactly) at ``seconds``; running it advances the clock."""
    def runner(ctx, part):
        if ctx.decide(ctx.current_part, "item", seconds):
            ctx.budget.clock.now += seconds
            part["notes"].append("ran")
    return runner


def test_parts_that_no_longer_fit_are_skipped_and_recorded(tmp_path):
    ctx, clock = make_ctx(tmp_path, budget_seconds=100.0)
    runners = {"main_job": costing(40), "peer": costing(0), "lr_sweep": costing(58), "variants": costing(0), "albumentations_path": costing(30),
               "notebooks": costing(30), "zoo": costing(20), "profile": costing(4)}
    assert runner.run_parts(ctx, runners) is True
    parts = ctx.report["parts"]
    # the profile part's estimate (smoke: 5 s before any calibration) is held back from earlier parts
    assert parts["main_job"]["status"] == "completed"          # 40 s of 95 s available
    assert parts["lr_sweep"]["status"] == "skipped"            # 58 s > 60 - 5 s
    assert parts["albumentations_path"]["status"] == "completed"  # 30 s of 55 s
    assert parts["notebooks"]["status"] == "skipped"           # 30 s > 30 - 5 s
    assert parts["zoo"]["status"] == "completed"               # 20 s of 25 s
    assert parts["profile"]["status"] == "completed"           # 4 s of the 10 s left: nothing held back now
    assert clock.now == 94
    skipped = {s["part"]: s for s in ctx.report["skipped"]}
    assert set(skipped) == {"lr_sweep", "notebooks"}
    assert skipped["lr_sweep"]["estimate_seconds"] == 58 and skipped["lr_sweep"]["available_seconds"] == 55
    assert skipped["lr_sweep"]["reason"] == "estimated 58 s > 55 s available (60 s left, 5 s held back for the profile part)"
    assert skipped["notebooks"]["at_elapsed_seconds"] == 70
    on_disk = json.loads((tmp_path / settings.REPORT_JSON).read_text())
    assert on_disk["parts"]["profile"]["status"] == "completed" and len(on_disk["skipped"]) == 2
    assert on_disk["budget"]["left_seconds"] == 6


def test_a_failing_part_is_recorded_and_the_next_one_runs(tmp_path):
    ctx, _ = make_ctx(tmp_path)

    def broken(ctx, part):
        raise RuntimeError("no cuDNN here")

    runners = {**{p: costing(1) for p in settings.PARTS}, "lr_sweep": broken}
    assert runner.run_parts(ctx, runners) is True
    parts = ctx.report["parts"]
    assert parts["lr_sweep"]["status"] == "failed" and "no cuDNN here" in parts["lr_sweep"]["error"]
    assert parts["albumentations_path"]["status"] == "completed"
    assert ctx.report["errors"][0]["where"] == "lr_sweep"


def test_an_interruption_stops_the_parts_and_keeps_what_was_measured(tmp_path):
    ctx, _ = make_ctx(tmp_path)

    def interrupted(ctx, part):
        part["notes"].append("half done")
        raise KeyboardInterrupt

    runners = {**{p: costing(1) for p in settings.PARTS}, "albumentations_path": interrupted}
    assert runner.run_parts(ctx, runners) is False
    on_disk = json.loads((tmp_path / settings.REPORT_JSON).read_text())
    assert on_disk["parts"]["main_job"]["status"] == "completed"
    assert on_disk["parts"]["albumentations_path"]["status"] == "interrupted"
    assert on_disk["parts"]["albumentations_path"]["notes"] == ["half done"]
    assert on_disk["parts"]["notebooks"]["status"] == "pending"


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_the_watchdog_interrupts_a_run_that_overstays_the_budget(tmp_path, sigint):
    """Also when SIGINT is ignored (a background job of a script, nohup): there the watchdog once never fired."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint == "ignored" else signal.default_int_handler)
    try:
        _watchdog_interrupts(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)


def _watchdog_interrupts(tmp_path):
    ctx, _ = make_ctx(tmp_path, budget_seconds=0.5, parts=["main_job", "profile"])
    ctx.budget = budget.Budget(0.5)  # the real clock

    def endless(ctx, part):
        deadline = time.monotonic() + 30  # a watchdog that never fires fails the test instead of hanging it
        while time.monotonic() < deadline:
            time.sleep(0.01)

    timer = session.start_watchdog(ctx.budget, ctx.report)
    try:
        assert runner.run_parts(ctx, {**{p: costing(0) for p in settings.PARTS}, "main_job": endless}) is False
    finally:
        timer.cancel()
    assert ctx.report["budget"]["watchdog_fired"] and ctx.report["parts"]["main_job"]["status"] == "interrupted"
    assert ctx.report["parts"]["profile"]["status"] == "pending"


def test_parts_not_requested_are_recorded_as_skipped(tmp_path):
    ctx, _ = make_ctx(tmp_path, parts=["main_job", "profile"])
    assert runner.run_parts(ctx, {p: costing(1) for p in settings.PARTS})
    parts = ctx.report["parts"]
    assert parts["zoo"]["status"] == "not_requested" and parts["profile"]["status"] == "completed"
    assert {s["part"] for s in ctx.report["skipped"]} == {"peer", "lr_sweep", "variants", "albumentations_path",
                                                          "notebooks", "zoo"}
    assert all(s["reason"] == "not in --parts" for s in ctx.report["skipped"])


# -- the variants part ------------------------------------------------------------------------

def test_variants_parse_each_value_as_cifar_train_does():
    assert variants.parse_variants([["default"], ["sgd", "recipe=onecycle_sgd", "weight-decay=5e-4", "label_smoothing=0.2"],
                              ["lr", "max_lr=0.01", "compile=true"]]) == [
        ("default", {}), ("sgd", {"recipe": "onecycle_sgd", "weight_decay": 5e-4, "label_smoothing": 0.2}),
        ("lr", {"max_lr": 0.01, "compile": True})]


@pytest.mark.parametrize("items, message", [
    ([["wd=1"]], r"name 'wd=1': a variant's first word is its name"),
    ([["a/b"]], r"name 'a/b'"),
    ([["a"], ["a", "weight_decay=0.1"]], r"'a' is given twice"),
    ([["a", "weight_decay"]], r"'weight_decay' is not FIELD=VALUE"),
    ([["a", "seed=3"]], r"seed is set by the report for every run"),
    ([["a", "weight_decy=0.1"]], r"weight_decy.*weight_decay"),
    ([["a", "weight_decay=lots"]], r"weight_decay='lots'"),
    ([["a", "label_smoothing=1.5"]], r"label_smoothing"),
    ([["a", "recipe=onecycle_sgd", "max_lr=0.1", "min_lr=0.2"]], r"min_lr=0.2 is above max_lr=0.1"),
    ([["a", "max_lr=find"]], r"max_lr=find would run the LR range test.*give LRMAX as a number"),
    ([["a", "transform_set=affine_cutout16"]], r"--variant a: loader='device' implements transform_set in \['cutout8', 'cutout8_p05'\] only"),
])
def test_a_bad_variant_is_named_with_the_fix(items, message):
    with pytest.raises(ConfigError, match=message):
        variants.parse_variants(items)
    with pytest.raises(SystemExit):
        cli.parse_args([arg for item in items for arg in ["--variant", *item]])


def test_a_variant_needs_the_variants_part():
    with pytest.raises(SystemExit):
        cli.parse_args(["--parts", "main_job", "--variant", "ls0", "label_smoothing=0"])
    assert cli.parse_args(["--parts", "variants", "--variant", "ls0", "label_smoothing=0"]).variants == [
        ("ls0", {"label_smoothing": 0.0})]


def test_only_runs_that_cost_as_the_main_job_calibrate_its_estimates():
    base = settings.main_config(settings.FULL)
    assert settings.costs_as_main_job(base.replace(recipe="onecycle_sgd", max_lr=0.4, weight_decay=5e-4, seed=2), base)
    for change in ({"compile": True}, {"batch_size": 256}, {"model": "resnet18"}, {"loader": "albumentations"}):
        assert not settings.costs_as_main_job(base.replace(**change), base), change


def test_no_compile_run_leaves_the_main_job_complete(tmp_path, monkeypatch):
    def fake_train(ctx, rec, cfg, part):
        rec.update(status="completed", seed=cfg.seed, compile=cfg.compile, test_accuracy_percent=90.0)
        return rec

    monkeypatch.setattr(runs, "train", fake_train)
    monkeypatch.setattr(context.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 1.0)
    ctx, _ = make_ctx(tmp_path, parts=["main_job"])
    ctx.device, ctx.seeds, ctx.compile_run = torch.device("cpu"), [0, 1], False
    assert runner.run_parts(ctx, {**{p: costing(0) for p in settings.PARTS}, "main_job": main_job.run})
    main = ctx.report["parts"]["main_job"]
    assert main["status"] == "completed" and main["items_skipped"] == 0 and main["compile_run"] is None
    assert [r["seed"] for r in main["runs"]] == [0, 1]
    assert {"part": "main_job", "item": "seed0-compile", "reason": "--no-compile-run"}.items() <= next(
        s for s in ctx.report["skipped"] if s["part"] == "main_job").items()


def variant_of(cfg: TrainConfig) -> str:
    """Which of the tests' variants a trial's config is."""
    return ("sgd" if cfg.recipe == "onecycle_sgd" else "ls" if cfg.label_smoothing == 0.1
            else "wd" if cfg.weight_decay == 1e-4 else "default")


def test_variants_run_on_the_first_seed_then_the_best_on_the_others(tmp_path, monkeypatch):
    accuracy = {("default", 0): 90.0, ("ls", 0): 91.0, ("sgd", 0): 92.0, ("wd", 0): 89.0,
                ("ls", 1): 91.4, ("sgd", 1): 90.0, ("ls", 2): 91.2, ("sgd", 2): 90.2}
    fit = FakeFit(lambda cfg: accuracy[(variant_of(cfg), cfg.seed)])
    install_fit(monkeypatch, fit)
    monkeypatch.setattr(context.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 1.0)
    ctx, _ = make_ctx(tmp_path, parts=["main_job", "variants"])
    ctx.device, ctx.seeds, ctx.data = torch.device("cpu"), [0, 1, 2], tiny_data()
    ctx.variants = variants.parse_variants([["default"], ["ls", "label_smoothing=0.1"],
                                      ["sgd", "recipe=onecycle_sgd", "label_smoothing=0.3"], ["wd", "weight_decay=1e-4"]])
    ctx.variant_top_k = 2
    for seed, acc in ((0, 90.0), (1, 89.5)):  # the main job ran seeds 0 and 1
        ctx.report["parts"]["main_job"]["runs"].append({**figures.run_template(f"seed{seed}"), "seed": seed,
                                                        "status": "completed", "epochs_run": 2,
                                                        "test_accuracy_percent": acc})
    part = ctx.report["parts"]["variants"]
    variants.run(ctx, part)
    smoothing = TrainConfig().label_smoothing  # the wd variant keeps the default
    trained = [(variant_of(cfg), cfg.seed, cfg.recipe, cfg.label_smoothing) for cfg in fit.calls]
    assert trained == [("ls", 0, "onecycle_adam", 0.1), ("sgd", 0, "onecycle_sgd", 0.3), ("wd", 0, "onecycle_adam", smoothing),
                       ("sgd", 1, "onecycle_sgd", 0.3), ("ls", 1, "onecycle_adam", 0.1),
                       ("sgd", 2, "onecycle_sgd", 0.3), ("ls", 2, "onecycle_adam", 0.1)]
    assert part["runs"][0]["reused_from"] == "main_job seed0", "the default variant is the main job's own run"
    reused = [r["label"] for r in part["runs"] if r["reused_from"]]
    assert reused == ["default-seed0", "default-seed1"], "on every seed the main job ran, finalist or not"
    assert part["items_run"] == 9 and part["summary"]["default"]["seeds"] == [0, 1]
    assert part["finalists"] == ["sgd", "ls"]
    assert part["best"]["variant"] == "ls" and part["best"]["seeds"] == [0, 1, 2]
    assert part["best"]["test_accuracy_percent_mean"] == pytest.approx(91.2)
    assert part["summary"]["sgd"]["test_accuracy_percent_mean"] == pytest.approx((92.0 + 90.0 + 90.2) / 3)
    assert part["summary"]["wd"]["runs_completed"] == 1
    assert [r["item"] for r in report.summary_rows(ctx.report) if r["part"] == "variants"][:2] == ["default-seed0", "ls-seed0"]
    sgd = next(r for r in part["runs"] if r["label"] == "sgd-seed1")
    assert (sgd["status"], sgd["epochs_run"], sgd["steps_per_epoch"]) == ("completed", 2, 4), "figures of its metrics"
    assert sgd["max_lr"] == 0.4 and sgd["weight_decay"] == 5e-4, "a swept recipe brings its own settings"
    # each variant is a sweep over the seeds: the finalists' run on all three, the others' stay pending
    on_disk = {name: sweep_json(tmp_path / "work" / "variants" / name) for name in ("ls", "sgd", "wd")}
    assert [t["status"] for t in on_disk["sgd"]["trials"]] == ["completed"] * 3 and on_disk["sgd"]["status"] == "completed"
    assert [t["status"] for t in on_disk["wd"]["trials"]] == ["completed", "pending", "pending"]
    assert on_disk["wd"]["status"] == "interrupted", "resume_sweep would run the other seeds"
    assert sgd["run_dir"].startswith(str(tmp_path / "work" / "variants" / "sgd" / "sweep-"))
    assert not (tmp_path / "work" / "variants" / "default").exists(), "the default reused the main job's runs"


def test_a_change_is_adopted_only_beyond_the_defaults_spread_on_three_seeds():
    default = [90.0, 90.4, 89.8]  # spread 0.6 points
    beyond = figures.compare_to_default(default, [90.9, 90.8, 91.0])
    assert beyond["adopt"] and beyond["difference_points"] == pytest.approx(0.8333, abs=1e-4)
    assert beyond["default_spread_points"] == pytest.approx(0.6)
    assert beyond["welch_t"] == pytest.approx(4.5, abs=0.1) and 0 < beyond["welch_p"] < 0.05  # by hand: 0.833/0.185
    within = figures.compare_to_default(default, [90.5, 90.6, 90.7])  # +0.47: inside the default's spread
    assert not within["adopt"] and within["welch_t"] > 0
    two_seeds = figures.compare_to_default(default, [92.0, 92.1])  # far better, but on two seeds only
    assert not two_seeds["adopt"] and two_seeds["variant_runs"] == 2
    assert figures.compare_to_default([90.0], [91.0])["welch_t"] is None  # one run a side: no variance to test
    assert figures.compare_to_default([], [91.0])["difference_points"] is None


def test_the_variants_part_decides_against_the_default_on_every_seed(tmp_path, monkeypatch):
    accuracy = {("ls", 0): 91.0, ("ls", 1): 91.2, ("ls", 2): 91.1, ("wd", 0): 90.3, ("wd", 1): 90.1, ("wd", 2): 90.0}
    install_fit(monkeypatch, FakeFit(lambda cfg: accuracy[(variant_of(cfg), cfg.seed)]))
    monkeypatch.setattr(context.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 1.0)
    ctx, _ = make_ctx(tmp_path, parts=["main_job", "variants"])
    ctx.device, ctx.seeds, ctx.variant_top_k, ctx.data = torch.device("cpu"), [0, 1, 2], 2, tiny_data()
    ctx.variants = variants.parse_variants([["default"], ["ls", "label_smoothing=0.1"], ["wd", "weight_decay=1e-4"]])
    for seed, acc in ((0, 90.0), (1, 90.4), (2, 89.8)):
        ctx.report["parts"]["main_job"]["runs"].append({**figures.run_template(f"seed{seed}"), "seed": seed,
                                                        "status": "completed", "epochs_run": 2,
                                                        "test_accuracy_percent": acc})
    part = ctx.report["parts"]["variants"]
    variants.run(ctx, part)
    assert part["reference"] == "default" and set(part["decisions"]) == {"ls", "wd"}
    assert part["adopted"] == ["ls"], "ls beats the default by 1.03 points, beyond its 0.6-point spread; wd does not"
    assert part["decisions"]["wd"]["difference_points"] == pytest.approx(0.0667, abs=1e-4)
    assert part["decisions"]["ls"]["welch_t"] > 3


# -- the LR sweep part: a cifarhelpers.sweep sweep over max_lr ----------------------------------

def lr_sweep_ctx(tmp_path, monkeypatch, outcome, *, budget_seconds=100.0, seconds=0.0):
    """A context whose main job ran seed 0 at the default LRMAX (90.5%), the range test skipped (no estimate
    fits), each run estimated at 30 s, and fit() replaced by a :class:`FakeFit` taking ``seconds`` of the clock."""
    clock = FakeClock()
    fit = FakeFit(outcome, clock=clock, seconds=seconds)
    install_fit(monkeypatch, fit)
    monkeypatch.setattr(context.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 30.0)
    monkeypatch.setattr(context.Context, "estimate_lr_test", lambda self, iterations: 1e9)
    ctx, _ = make_ctx(tmp_path, budget_seconds=budget_seconds, parts=["main_job", "lr_sweep"], clock=clock)
    ctx.device, ctx.data, ctx.lr_grid = torch.device("cpu"), tiny_data(), [1e-3, 2e-3, settings.DEFAULT_LR, 1e-2]
    ctx.report["parts"]["main_job"]["runs"].append({**figures.run_template("seed0"), "seed": 0, "status": "completed",
                                                    "max_lr": settings.DEFAULT_LR, "epochs_run": 2,
                                                    "test_accuracy_percent": 90.5})
    return ctx, fit


def test_the_lr_sweep_trains_each_lrmax_as_a_sweep_trial_most_informative_first(tmp_path, monkeypatch):
    accuracy = {1e-3: 88.0, 2e-3: 91.0, 1e-2: 89.0}
    ctx, fit = lr_sweep_ctx(tmp_path, monkeypatch, lambda cfg: accuracy[cfg.max_lr])
    part = ctx.report["parts"]["lr_sweep"]
    lr_sweep.run(ctx, part)
    assert [cfg.max_lr for cfg in fit.calls] == [2e-3, 1e-2, 1e-3], "the default's neighbours first, then the rest"
    assert [r["label"] for r in part["runs"]] == ["lr0.005", "lr0.002", "lr0.01", "lr0.001"]
    assert part["runs"][0]["reused_from"] == "main_job seed0" and part["runs"][0]["source"] == "default"
    assert [r["test_accuracy_percent"] for r in part["runs"][1:]] == pytest.approx([91.0, 89.0, 88.0])
    assert all(r["status"] == "completed" and r["seed"] == 0 and r["epochs_run"] == 2 for r in part["runs"])
    assert part["best"] == {"max_lr": 2e-3, "test_accuracy_percent": pytest.approx(91.0), "of_runs": 4}
    on_disk = sweep_json(tmp_path / "work" / "lr_sweep")
    assert on_disk["spec"]["grid"] == {"max_lr": [2e-3, 1e-2, 1e-3]} and on_disk["status"] == "completed"
    assert [t["final_test_accuracy"] for t in on_disk["trials"]] == pytest.approx([0.91, 0.89, 0.88])
    assert part["items_run"] == 4 and [s["item"] for s in ctx.report["skipped"]] == [
        "LR range test (17 iterations, batch 16)"]


def test_the_lr_sweep_admits_only_what_fits_and_leaves_the_rest_pending(tmp_path, monkeypatch):
    ctx, fit = lr_sweep_ctx(tmp_path, monkeypatch, lambda cfg: 90.0, budget_seconds=100.0, seconds=40.0)
    part = ctx.report["parts"]["lr_sweep"]
    lr_sweep.run(ctx, part)  # 30 s estimated a run: 100 s, 60 s left hold one each, 20 s does not
    assert [cfg.max_lr for cfg in fit.calls] == [2e-3, 1e-2]
    skipped = ctx.report["skipped"][-1]
    assert (skipped["item"], skipped["estimate_seconds"], skipped["available_seconds"]) == ("lr0.001", 30.0, 20.0)
    assert [r["label"] for r in part["runs"]] == ["lr0.005", "lr0.002", "lr0.01"]
    on_disk = sweep_json(tmp_path / "work" / "lr_sweep")
    assert [t["status"] for t in on_disk["trials"]] == ["completed", "completed", "pending"]
    assert on_disk["status"] == "interrupted" and on_disk["sessions"][-1]["trials_run"] == 2


def test_a_diverged_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    outcomes = {1e-3: 88.0, 2e-3: DivergenceError("the loss is nan at epoch 2"), 1e-2: 89.0}
    ctx, _ = lr_sweep_ctx(tmp_path, monkeypatch, lambda cfg: outcomes[cfg.max_lr])
    part = ctx.report["parts"]["lr_sweep"]
    lr_sweep.run(ctx, part)
    diverged = part["runs"][1]
    assert (diverged["label"], diverged["status"], diverged["test_accuracy_percent"]) == ("lr0.002", "diverged", None)
    assert "loss is nan" in diverged["error"] and diverged["epochs_run"] == 2, "the cut-short run's figures"
    assert ctx.report["errors"][-1]["where"] == "lr_sweep lr0.002"
    assert [r["status"] for r in part["runs"][2:]] == ["completed", "completed"]
    assert runner._has_failed_runs(part)


def test_an_interrupted_trial_keeps_what_it_ran_and_stops_the_part(tmp_path, monkeypatch):
    outcomes = {2e-3: 91.0, 1e-2: KeyboardInterrupt()}
    ctx, _ = lr_sweep_ctx(tmp_path, monkeypatch, lambda cfg: outcomes[cfg.max_lr])
    part = ctx.report["parts"]["lr_sweep"]
    with pytest.raises(KeyboardInterrupt):
        lr_sweep.run(ctx, part)
    cut = part["runs"][-1]
    assert (cut["label"], cut["status"], cut["epochs_run"]) == ("lr0.01", "interrupted", 2)
    assert cut["error"] == "interrupted (budget watchdog or signal)"
    assert [r["label"] for r in part["runs"]] == ["lr0.005", "lr0.002", "lr0.01"]
    assert sweep_json(tmp_path / "work" / "lr_sweep")["status"] == "interrupted"


def test_the_summary_table_lists_runs_and_skips(tmp_path):
    ctx, _ = make_ctx(tmp_path)
    metrics = {**fake_metrics(), "final_test_accuracy_flip_tta": 0.9351}
    rec = {**figures.run_template("seed0"), **figures.run_figures(metrics, 30.0, 512), "epochs_target": 4}
    ctx.report["parts"]["main_job"]["runs"].append(rec)
    ctx.skip("zoo", "dilated_net", "estimated 900 s > 10 s left", 900.0, 10.0)
    rows = report.summary_rows(ctx.report)
    assert [r["item"] for r in rows] == ["seed0", "dilated_net"]
    assert rows[0]["test_accuracy_flip_tta_percent"] == pytest.approx(93.51)
    table = report.format_table(rows)
    assert "93.00" in table and "93.51" in table and "skipped" in table and "900 s > 10 s left" in table


def test_the_notebooks_part_runs_01_to_06_and_leaves_the_full_sweep_of_07_to_the_lr_sweep_part():
    from cifarhelpers.notebook import NOTEBOOKS

    assert [n[:2] for n in settings.REPORT_NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    assert set(NOTEBOOKS) - set(settings.REPORT_NOTEBOOKS) == {"07_lr_sweep.ipynb"}


# -- files ------------------------------------------------------------------------------------

def test_pack_notebooks_leaves_out_weights_and_notes_a_missing_run(tmp_path):
    run = tmp_path / "20261126-000000-notebooks"
    (run / "20261126-000001-custom_resnet").mkdir(parents=True)
    (run / "04_train_onecycle.ipynb").write_text("{}")
    (run / "train_run.json").write_text("{}")
    (run / "curves.png").write_bytes(b"\x89PNG")
    (run / "20261126-000001-custom_resnet" / "model.pt").write_bytes(b"weights")
    (run / "20261126-000001-custom_resnet" / "checkpoint.pt").write_bytes(b"weights")
    (run / "20261126-000001-custom_resnet" / "metrics.json").write_text("{}")
    part = report.part_template("notebooks")
    dest = tmp_path / "out.tar.gz"
    notebooks.pack_notebooks(run, dest, part)
    with tarfile.open(dest) as t:
        names = t.getnames()
    assert "notebooks/04_train_onecycle.ipynb" in names and "notebooks/20261126-000001-custom_resnet/metrics.json" in names
    assert not any(n.endswith(".pt") for n in names)
    assert part["tar"]["files"] == 4 and len(part["tar"]["excluded"]) == 2 and part["tar"]["size_bytes"] > 0
    notebooks.pack_notebooks(None, dest, part, reason="skipped: estimated 400 s > 20 s left")
    with tarfile.open(dest) as t:
        assert t.extractfile("notebooks/NOT_RUN.txt").read().decode().endswith("20 s left\n")


def test_flags_and_their_defaults(monkeypatch):
    monkeypatch.setenv("OUT", "/tmp/node-out")
    monkeypatch.setenv("CIFAR10_ROOT", "/data/cifar")
    args = cli.parse_args([])
    assert args.out == "/tmp/node-out" and args.data_root == "/data/cifar" and args.budget_minutes == 9.0
    assert args.parts == list(settings.PARTS) and args.seeds is None and args.device is None and not args.smoke
    assert Path(args.notebooks_dir) == ROOT / "notebooks"
    monkeypatch.delenv("OUT")
    args = cli.parse_args(["--smoke", "--parts", "profile", "main_job", "--seeds", "3", "--lr-grid", "1e-3",
                          "--budget-minutes", "0.5", "--commit", "abc", "--work-dir", "/tmp/w", "--device", "cpu",
                          "--no-compile-run"])
    assert args.out.endswith("benchmarks/out/gpu-report") and args.parts == ["profile", "main_job"]
    assert args.seeds == [3] and args.lr_grid == [1e-3] and args.commit == "abc" and args.no_compile_run
    for bad in (["--parts", "everything"], ["--budget-minutes", "0"], ["--lr-grid", "-1"]):
        with pytest.raises(SystemExit):
            cli.parse_args(bad)
    assert session.git_commit("abc")[:2] == ("abc", "--commit")


def test_the_folder_runs_as_a_command_from_the_checkout_and_from_a_copy(tmp_path):
    """``python benchmarks/gpu_report ...`` from the repository root, and ``python <copy>/gpu_report ...`` from a
    folder holding a copy of the package and peer_airbench.py (the offline bundle's layout)."""
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(ROOT / "benchmarks" / "gpu_report", copy / "gpu_report",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "benchmarks" / "peer_airbench.py", copy)
    for command, cwd in (([sys.executable, "benchmarks/gpu_report", "--plan", "round2", "--show-plan"], ROOT),
                         ([sys.executable, str(copy / "gpu_report"), "--plan", "round2", "--show-plan"], tmp_path)):
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "python benchmarks/gpu_report --plan round2 --step 1" in proc.stdout


# -- a short real run: smoke mode with a budget too small for most parts --------------------------

@pytest.mark.data
@pytest.mark.slow
def test_smoke_with_a_tight_budget_skips_and_still_writes_every_file(cifar_root, tmp_path):
    """About 90 s: the main job's seed 0 and the profile fit, torch.compile and the notebooks do not.

    The notebooks' estimate is the smoke settings' fixed 60 s (``notebooks_fixed_seconds``) plus their LR
    test and training (about 90 s in all), more than a 90 s budget holds once the main job has run, however
    fast this machine runs the other parts (with 2 minutes they once fitted, by one second)."""
    out, work = tmp_path / "out", tmp_path / "work"
    status = cli.main(["--smoke", "--budget-minutes", "1.5", "--parts", "main_job", "lr_sweep", "notebooks", "profile",
                      "--out", str(out), "--work-dir", str(work), "--data-root", str(cifar_root)])
    assert sorted(p.name for p in out.iterdir()) == sorted(settings.OUTPUT_FILES)
    written = json.loads((out / settings.REPORT_JSON).read_text())
    assert (status, written["status"]) in ((0, "completed"), (3, "interrupted"))
    layout = report.new_report(settings.SMOKE, ["main_job"], budget.Budget(60), [])
    assert set(written) == set(layout) and set(written["parts"]) == set(settings.PARTS)
    for name in ("main_job", "lr_sweep", "notebooks", "profile"):
        assert set(written["parts"][name]) == set(layout["parts"][name])
    assert written["parts"]["zoo"]["status"] == "not_requested"
    skipped = {(s["part"], s["item"]): s for s in written["skipped"]}
    assert ("zoo", "whole part") in skipped and ("albumentations_path", "whole part") in skipped
    assert ("notebooks", "notebooks 01-06") in skipped, "the notebooks never fit in 90 s"
    assert skipped[("notebooks", "notebooks 01-06")]["estimate_seconds"] > 0
    assert written["parts"]["notebooks"]["status"] == "skipped"
    with tarfile.open(out / settings.NOTEBOOKS_TAR) as t:
        assert t.getnames() == ["notebooks/NOT_RUN.txt"]
    assert written["data"]["sha256"] and written["environment"]["git_commit_source"]
    assert written["budget"]["elapsed_seconds"] <= 90 + 30, "the watchdog keeps the run near its budget"
    assert not list(out.glob("**/*.pt")), "run folders live in the work dir, never in the output folder"
