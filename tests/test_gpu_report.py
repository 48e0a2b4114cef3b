"""benchmarks/gpu_report.py: the budget and skip decisions, the estimates, the LR grid order, the
figures taken from a run's metrics, the kernel shares, the JSON layout and the part runner, all with
pure functions and fake parts (no training). One short real run of the smoke mode with a tight
budget is marked ``data`` and ``slow``; the whole smoke run is the bundle test's (tests/test_bundle.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_report", ROOT / "benchmarks" / "gpu_report.py")
gr = importlib.util.module_from_spec(_spec)
sys.modules["gpu_report"] = gr
_spec.loader.exec_module(gr)


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


# -- budget and decisions ------------------------------------------------------------------

def test_budget_counts_from_the_start_and_keeps_the_final_margin():
    clock = FakeClock(100.0)
    budget = gr.Budget(540, margin_seconds=15, start=90.0, clock=clock)
    assert budget.elapsed() == 10.0 and budget.left() == 515.0
    clock.now = 700.0
    assert budget.left() < 0
    assert set(budget.to_dict()) == {"budget_seconds", "final_margin_seconds", "elapsed_seconds", "left_seconds"}


def test_decide_runs_what_fits_and_says_why_not():
    assert gr.decide(100.0, 120.0, 20.0).run
    no = gr.decide(130.0, 120.0, 20.0)
    assert not no.run and "130" in no.reason and "120" in no.reason and no.estimate_seconds == 130.0
    assert gr.decide(None, 25.0, 20.0).run, "no estimate yet: runs when enough time is left to start"
    assert not gr.decide(None, 10.0, 20.0).run
    assert "0 s available" in gr.decide(5.0, -3.0, 1.0).reason, "negative time left reads as 0"


def test_fit_epochs_runs_fewer_epochs_or_none():
    assert gr.fit_epochs(24, 10.0, 20.0, 500.0) == 24
    assert gr.fit_epochs(24, 10.0, 20.0, 100.0) == 8
    assert gr.fit_epochs(24, 10.0, 20.0, 25.0) == 0
    assert gr.fit_epochs(100, 2.0, 0.0, 1e9) == 100


def test_order_lr_grid_puts_the_informative_values_first():
    grid = [5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]
    order = gr.order_lr_grid(grid, 0.01, suggestion=2.59e-4)
    assert [e["max_lr"] for e in order] == [0.01, 5e-3, 2e-2, 2.59e-4, 2e-3, 1e-3, 5e-4]
    assert [e["source"] for e in order[:4]] == ["default", "grid", "grid", "suggestion"]
    near = gr.order_lr_grid(grid, 0.01, suggestion=1.02e-3)  # within 5% of a grid value: that value moves up
    assert [e["max_lr"] for e in near] == [0.01, 5e-3, 2e-2, 1e-3, 2e-3, 5e-4]
    assert near[3]["source"] == "grid+suggestion" and len(near) == len(grid)
    assert [e["max_lr"] for e in gr.order_lr_grid(grid, 0.01, float("nan"))][:3] == [0.01, 5e-3, 2e-2]
    assert [e["max_lr"] for e in gr.order_lr_grid([1e-3, 1e-2], 0.01)] == [0.01, 1e-3]


# -- figures ----------------------------------------------------------------------------------

def test_run_figures_split_the_wall_time():
    rec = gr.run_figures(fake_metrics(), wall_seconds=30.0, batch_size=512)
    assert rec["warmup_seconds"] == pytest.approx(5.0 - 2.0)  # first epoch minus the median of the others
    parts = (rec["data_seconds"], rec["warmup_seconds"], rec["training_seconds"], rec["evaluation_seconds"],
             rec["other_seconds"])
    assert sum(parts) == pytest.approx(rec["wall_seconds"]) and rec["other_seconds"] > 0
    assert rec["steps_per_epoch"] == 97 and rec["epochs_run"] == 4
    assert rec["test_accuracy_fraction"] == 0.93 and rec["test_accuracy_percent"] == pytest.approx(93.0)
    metrics = fake_metrics()
    metrics["history"][-1]["flip_tta_seconds"] = 0.7  # the last epoch's flip-TTA pass counts as evaluation
    tta = gr.run_figures(metrics, wall_seconds=30.0, batch_size=512)
    assert tta["evaluation_seconds"] == pytest.approx(rec["evaluation_seconds"] + 0.7)
    assert tta["other_seconds"] == pytest.approx(rec["other_seconds"] - 0.7) and tta["flip_tta_seconds"] == 0.7
    assert rec["steady_seconds_per_epoch"] == pytest.approx(2.5)
    assert rec["steady_train_images_per_second"] == pytest.approx(97 * 512 / 2.0)
    assert set(rec) <= set(gr.run_template("x")), "every figure has its place in the run template"


def test_run_figures_of_a_run_cut_short_have_no_final_accuracy():
    rec = gr.run_figures(fake_metrics(train=(5.0,), test=(0.6,), status="interrupted"), None, 512)
    assert rec["test_accuracy_fraction"] is None and rec["last_epoch_test_accuracy_fraction"] == 0.93
    assert rec["warmup_seconds"] is None and rec["epochs_run"] == 1
    assert gr.warmup_seconds([1.0, 3.0, 3.0]) == 0.0, "never negative"


def test_calibration_from_a_run_predicts_a_run_of_the_same_shape():
    rec = gr.run_figures(fake_metrics(), wall_seconds=30.0, batch_size=512)
    cal = gr.Calibration.from_run({**rec, "label": "seed0"})
    assert cal.steps_per_epoch == 97 and cal.step_seconds == pytest.approx(2.0 / 97)
    assert cal.run_seconds(4) == pytest.approx(rec["wall_seconds"], rel=0.1)
    assert cal.train_epoch_seconds(data_seconds=10.0) == 10.0, "a slower loader bounds the epoch"
    assert cal.run_seconds(24) > cal.run_seconds(4)
    assert gr.Calibration.from_run({"history": []}) is None


def test_accuracy_summary_over_seeds():
    runs = [{"seed": s, "test_accuracy_percent": a, "wall_seconds": 60.0, "seconds_per_epoch": 2.5,
             "steady_seconds_per_epoch": 2.4} for s, a in enumerate((93.0, 94.0, 95.0))]
    runs.append({"seed": 3, "test_accuracy_percent": None})
    s = gr.accuracy_summary(runs)
    assert s["runs_completed"] == 3 and s["seeds"] == [0, 1, 2]
    assert (s["test_accuracy_percent_mean"], s["test_accuracy_percent_min"], s["test_accuracy_percent_max"]) == (
        94.0, 93.0, 95.0)
    assert set(s) == set(gr.accuracy_summary([]))


def test_kernel_shares_sum_to_100_and_cudnn_batch_norm_is_not_a_convolution():
    assert gr.classify_kernel("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc") == "conv_matmul"
    assert gr.classify_kernel("cutlass3x_sm90_tensorop_gemm_bf16") == "conv_matmul"
    assert gr.classify_kernel("cudnn::bn_fw_tr_1C11_kernel_NCHW") == "other"
    assert gr.classify_kernel("void at::native::vectorized_elementwise_kernel<4>") == "other"
    assert gr.classify_kernel("aten::convolution_backward") == "conv_matmul"
    assert gr.classify_kernel("aten::native_batch_norm") == "other"
    records = [("sm90_xmma_fprop_implicit_gemm", 0.6, 100), ("cudnn::bn_fw_tr", 0.2, 50), ("Memset (Device)", 0.05, 3)]
    s = gr.summarize_kernels(records, wall_seconds=1.0)
    assert s["conv_matmul_percent"] == pytest.approx(60.0) and s["idle_percent"] == pytest.approx(15.0)
    assert s["conv_matmul_percent"] + s["other_kernel_percent"] + s["idle_percent"] == pytest.approx(100.0)
    assert [k["rank"] for k in s["top_kernels"]] == [1, 2, 3] and s["top_kernels"][0]["seconds"] == 0.6
    overlapped = gr.summarize_kernels(records, wall_seconds=0.5)
    assert overlapped["idle_seconds"] == 0.0
    assert overlapped["conv_matmul_percent"] + overlapped["other_kernel_percent"] == pytest.approx(100.0)
    text = gr.top_kernels_text(s, "header")
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
    records, what = gr.kernel_records(SimpleNamespace(events=lambda: events), gr.torch.device("cuda"))
    assert what.startswith("CUDA kernels")
    assert sorted(records) == [("multi_tensor_apply_kernel<Adam>", pytest.approx(400e-6), 2),
                               ("sm90_xmma_fprop_implicit_gemm", pytest.approx(600e-6), 1)]


# -- the JSON layout --------------------------------------------------------------------------

def test_the_layout_has_the_same_keys_in_smoke_and_full_mode():
    budget = gr.Budget(60, clock=FakeClock())
    smoke = gr.new_report(gr.SMOKE, list(gr.PARTS), budget, ["gpu_report.py", "--smoke"])
    full = gr.new_report(gr.FULL, list(gr.PARTS), budget, ["gpu_report.py"])
    assert key_tree(smoke, frozenset({"notebook_parameters"})) == key_tree(full, frozenset({"notebook_parameters"}))
    assert list(smoke["parts"]) == list(gr.PARTS)
    for key in ("environment", "data", "budget", "settings", "parts", "skipped", "errors", "summary", "files", "units"):
        assert key in smoke
    assert set(smoke["files"]) >= {"report", "notebooks_tar", "profile_top_kernels", "log"}
    assert len(gr.OUTPUT_FILES) <= 8
    json.dumps(smoke, allow_nan=False)


# -- the part runner with fake parts and a fake clock -------------------------------------------

def make_ctx(tmp_path, budget_seconds=100.0, parts=None, clock=None):
    clock = clock or FakeClock()
    budget = gr.Budget(budget_seconds, margin_seconds=0.0, start=0.0, clock=clock)
    report = gr.new_report(gr.SMOKE, list(parts or gr.PARTS), budget, ["test"])
    ctx = gr.Context(settings=gr.SMOKE, report=report, budget=budget, out_dir=tmp_path, work_dir=tmp_path / "work",
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
    assert gr.run_parts(ctx, runners) is True
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
    on_disk = json.loads((tmp_path / gr.REPORT_JSON).read_text())
    assert on_disk["parts"]["profile"]["status"] == "completed" and len(on_disk["skipped"]) == 2
    assert on_disk["budget"]["left_seconds"] == 6


def test_a_failing_part_is_recorded_and_the_next_one_runs(tmp_path):
    ctx, _ = make_ctx(tmp_path)

    def broken(ctx, part):
        raise RuntimeError("no cuDNN here")

    runners = {**{p: costing(1) for p in gr.PARTS}, "lr_sweep": broken}
    assert gr.run_parts(ctx, runners) is True
    parts = ctx.report["parts"]
    assert parts["lr_sweep"]["status"] == "failed" and "no cuDNN here" in parts["lr_sweep"]["error"]
    assert parts["albumentations_path"]["status"] == "completed"
    assert ctx.report["errors"][0]["where"] == "lr_sweep"


def test_an_interruption_stops_the_parts_and_keeps_what_was_measured(tmp_path):
    ctx, _ = make_ctx(tmp_path)

    def interrupted(ctx, part):
        part["notes"].append("half done")
        raise KeyboardInterrupt

    runners = {**{p: costing(1) for p in gr.PARTS}, "albumentations_path": interrupted}
    assert gr.run_parts(ctx, runners) is False
    on_disk = json.loads((tmp_path / gr.REPORT_JSON).read_text())
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
    ctx.budget = gr.Budget(0.5)  # the real clock

    def endless(ctx, part):
        deadline = time.monotonic() + 30  # a watchdog that never fires fails the test instead of hanging it
        while time.monotonic() < deadline:
            time.sleep(0.01)

    timer = gr.start_watchdog(ctx.budget, ctx.report)
    try:
        assert gr.run_parts(ctx, {**{p: costing(0) for p in gr.PARTS}, "main_job": endless}) is False
    finally:
        timer.cancel()
    assert ctx.report["budget"]["watchdog_fired"] and ctx.report["parts"]["main_job"]["status"] == "interrupted"
    assert ctx.report["parts"]["profile"]["status"] == "pending"


def test_parts_not_requested_are_recorded_as_skipped(tmp_path):
    ctx, _ = make_ctx(tmp_path, parts=["main_job", "profile"])
    assert gr.run_parts(ctx, {p: costing(1) for p in gr.PARTS})
    parts = ctx.report["parts"]
    assert parts["zoo"]["status"] == "not_requested" and parts["profile"]["status"] == "completed"
    assert {s["part"] for s in ctx.report["skipped"]} == {"peer", "lr_sweep", "variants", "albumentations_path",
                                                          "notebooks", "zoo"}
    assert all(s["reason"] == "not in --parts" for s in ctx.report["skipped"])


# -- the variants part ------------------------------------------------------------------------

def test_variants_parse_each_value_as_cifar_train_does():
    assert gr.parse_variants([["default"], ["sgd", "recipe=onecycle_sgd", "weight-decay=5e-4", "label_smoothing=0.2"],
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
    with pytest.raises(gr.ConfigError, match=message):
        gr.parse_variants(items)
    with pytest.raises(SystemExit):
        gr.parse_args([arg for item in items for arg in ["--variant", *item]])


def test_a_variant_needs_the_variants_part():
    with pytest.raises(SystemExit):
        gr.parse_args(["--parts", "main_job", "--variant", "ls0", "label_smoothing=0"])
    assert gr.parse_args(["--parts", "variants", "--variant", "ls0", "label_smoothing=0"]).variants == [
        ("ls0", {"label_smoothing": 0.0})]


def test_only_runs_that_cost_as_the_main_job_calibrate_its_estimates():
    base = gr.main_config(gr.FULL)
    assert gr.costs_as_main_job(base.replace(recipe="onecycle_sgd", max_lr=0.4, weight_decay=5e-4, seed=2), base)
    for change in ({"compile": True}, {"batch_size": 256}, {"model": "resnet18"}, {"loader": "albumentations"}):
        assert not gr.costs_as_main_job(base.replace(**change), base), change


def test_no_compile_run_leaves_the_main_job_complete(tmp_path, monkeypatch):
    def fake_train(self, rec, cfg, part):
        rec.update(status="completed", seed=cfg.seed, compile=cfg.compile, test_accuracy_percent=90.0)
        return rec

    monkeypatch.setattr(gr.Context, "train", fake_train)
    monkeypatch.setattr(gr.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 1.0)
    ctx, _ = make_ctx(tmp_path, parts=["main_job"])
    ctx.device, ctx.seeds, ctx.compile_run = gr.torch.device("cpu"), [0, 1], False
    assert gr.run_parts(ctx, {**{p: costing(0) for p in gr.PARTS}, "main_job": gr.part_main_job})
    main = ctx.report["parts"]["main_job"]
    assert main["status"] == "completed" and main["items_skipped"] == 0 and main["compile_run"] is None
    assert [r["seed"] for r in main["runs"]] == [0, 1]
    assert {"part": "main_job", "item": "seed0-compile", "reason": "--no-compile-run"}.items() <= next(
        s for s in ctx.report["skipped"] if s["part"] == "main_job").items()


def test_variants_run_on_the_first_seed_then_the_best_on_the_others(tmp_path, monkeypatch):
    accuracy = {("default", 0): 90.0, ("ls", 0): 91.0, ("sgd", 0): 92.0, ("wd", 0): 89.0,
                ("ls", 1): 91.4, ("sgd", 1): 90.0, ("ls", 2): 91.2, ("sgd", 2): 90.2}
    trained = []

    def fake_train(self, rec, cfg, part):
        trained.append((rec["variant"], cfg.seed, cfg.recipe, cfg.label_smoothing))
        rec.update(status="completed", seed=cfg.seed, test_accuracy_percent=accuracy[(rec["variant"], cfg.seed)])
        return rec

    monkeypatch.setattr(gr.Context, "train", fake_train)
    monkeypatch.setattr(gr.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 1.0)
    ctx, _ = make_ctx(tmp_path, parts=["main_job", "variants"])
    ctx.device, ctx.seeds = gr.torch.device("cpu"), [0, 1, 2]
    ctx.variants = gr.parse_variants([["default"], ["ls", "label_smoothing=0.1"],
                                      ["sgd", "recipe=onecycle_sgd", "label_smoothing=0.3"], ["wd", "weight_decay=1e-4"]])
    ctx.variant_top_k = 2
    for seed, acc in ((0, 90.0), (1, 89.5)):  # the main job ran seeds 0 and 1
        ctx.report["parts"]["main_job"]["runs"].append({**gr.run_template(f"seed{seed}"), "seed": seed,
                                                        "status": "completed", "epochs_run": 2,
                                                        "test_accuracy_percent": acc})
    part = ctx.report["parts"]["variants"]
    gr.part_variants(ctx, part)
    smoothing = gr.TrainConfig().label_smoothing  # the wd variant keeps the default
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
    assert [r["item"] for r in gr.summary_rows(ctx.report) if r["part"] == "variants"][:2] == ["default-seed0", "ls-seed0"]


def test_a_change_is_adopted_only_beyond_the_defaults_spread_on_three_seeds():
    default = [90.0, 90.4, 89.8]  # spread 0.6 points
    beyond = gr.compare_to_default(default, [90.9, 90.8, 91.0])
    assert beyond["adopt"] and beyond["difference_points"] == pytest.approx(0.8333, abs=1e-4)
    assert beyond["default_spread_points"] == pytest.approx(0.6)
    assert beyond["welch_t"] == pytest.approx(4.5, abs=0.1) and 0 < beyond["welch_p"] < 0.05  # by hand: 0.833/0.185
    within = gr.compare_to_default(default, [90.5, 90.6, 90.7])  # +0.47: inside the default's spread
    assert not within["adopt"] and within["welch_t"] > 0
    two_seeds = gr.compare_to_default(default, [92.0, 92.1])  # far better, but on two seeds only
    assert not two_seeds["adopt"] and two_seeds["variant_runs"] == 2
    assert gr.compare_to_default([90.0], [91.0])["welch_t"] is None  # one run a side: no variance to test
    assert gr.compare_to_default([], [91.0])["difference_points"] is None


def test_the_variants_part_decides_against_the_default_on_every_seed(tmp_path, monkeypatch):
    accuracy = {("ls", 0): 91.0, ("ls", 1): 91.2, ("ls", 2): 91.1, ("wd", 0): 90.3, ("wd", 1): 90.1, ("wd", 2): 90.0}

    def fake_train(self, rec, cfg, part):
        rec.update(status="completed", seed=cfg.seed, epochs_run=cfg.epochs,
                   test_accuracy_percent=accuracy[(rec["variant"], cfg.seed)])
        return rec

    monkeypatch.setattr(gr.Context, "train", fake_train)
    monkeypatch.setattr(gr.Context, "estimate_main", lambda self, epochs, extra_fixed=0.0: 1.0)
    ctx, _ = make_ctx(tmp_path, parts=["main_job", "variants"])
    ctx.device, ctx.seeds, ctx.variant_top_k = gr.torch.device("cpu"), [0, 1, 2], 2
    ctx.variants = gr.parse_variants([["default"], ["ls", "label_smoothing=0.1"], ["wd", "weight_decay=1e-4"]])
    for seed, acc in ((0, 90.0), (1, 90.4), (2, 89.8)):
        ctx.report["parts"]["main_job"]["runs"].append({**gr.run_template(f"seed{seed}"), "seed": seed,
                                                        "status": "completed", "epochs_run": 2,
                                                        "test_accuracy_percent": acc})
    part = ctx.report["parts"]["variants"]
    gr.part_variants(ctx, part)
    assert part["reference"] == "default" and set(part["decisions"]) == {"ls", "wd"}
    assert part["adopted"] == ["ls"], "ls beats the default by 1.03 points, beyond its 0.6-point spread; wd does not"
    assert part["decisions"]["wd"]["difference_points"] == pytest.approx(0.0667, abs=1e-4)
    assert part["decisions"]["ls"]["welch_t"] > 3


def test_the_summary_table_lists_runs_and_skips(tmp_path):
    ctx, _ = make_ctx(tmp_path)
    metrics = {**fake_metrics(), "final_test_accuracy_flip_tta": 0.9351}
    rec = {**gr.run_template("seed0"), **gr.run_figures(metrics, 30.0, 512), "epochs_target": 4}
    ctx.report["parts"]["main_job"]["runs"].append(rec)
    ctx.skip("zoo", "dilated_net", "estimated 900 s > 10 s left", 900.0, 10.0)
    rows = gr.summary_rows(ctx.report)
    assert [r["item"] for r in rows] == ["seed0", "dilated_net"]
    assert rows[0]["test_accuracy_flip_tta_percent"] == pytest.approx(93.51)
    table = gr.format_table(rows)
    assert "93.00" in table and "93.51" in table and "skipped" in table and "900 s > 10 s left" in table


def test_the_notebooks_part_runs_01_to_06_and_leaves_the_full_sweep_of_07_to_the_lr_sweep_part():
    from cifarhelpers.notebook_runner import NOTEBOOKS

    assert [n[:2] for n in gr.REPORT_NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    assert set(NOTEBOOKS) - set(gr.REPORT_NOTEBOOKS) == {"07_lr_sweep.ipynb"}


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
    part = gr.part_template("notebooks")
    dest = tmp_path / "out.tar.gz"
    gr.pack_notebooks(run, dest, part)
    with tarfile.open(dest) as t:
        names = t.getnames()
    assert "notebooks/04_train_onecycle.ipynb" in names and "notebooks/20261126-000001-custom_resnet/metrics.json" in names
    assert not any(n.endswith(".pt") for n in names)
    assert part["tar"]["files"] == 4 and len(part["tar"]["excluded"]) == 2 and part["tar"]["size_bytes"] > 0
    gr.pack_notebooks(None, dest, part, reason="skipped: estimated 400 s > 20 s left")
    with tarfile.open(dest) as t:
        assert t.extractfile("notebooks/NOT_RUN.txt").read().decode().endswith("20 s left\n")


def test_flags_and_their_defaults(monkeypatch):
    monkeypatch.setenv("OUT", "/tmp/node-out")
    monkeypatch.setenv("CIFAR10_ROOT", "/data/cifar")
    args = gr.parse_args([])
    assert args.out == "/tmp/node-out" and args.data_root == "/data/cifar" and args.budget_minutes == 9.0
    assert args.parts == list(gr.PARTS) and args.seeds is None and args.device is None and not args.smoke
    assert Path(args.notebooks_dir) == ROOT / "notebooks"
    monkeypatch.delenv("OUT")
    args = gr.parse_args(["--smoke", "--parts", "profile", "main_job", "--seeds", "3", "--lr-grid", "1e-3",
                          "--budget-minutes", "0.5", "--commit", "abc", "--work-dir", "/tmp/w", "--device", "cpu",
                          "--no-compile-run"])
    assert args.out.endswith("benchmarks/out/gpu-report") and args.parts == ["profile", "main_job"]
    assert args.seeds == [3] and args.lr_grid == [1e-3] and args.commit == "abc" and args.no_compile_run
    for bad in (["--parts", "everything"], ["--budget-minutes", "0"], ["--lr-grid", "-1"]):
        with pytest.raises(SystemExit):
            gr.parse_args(bad)
    assert gr.git_commit("abc")[:2] == ("abc", "--commit")


# -- a short real run: smoke mode with a budget too small for most parts --------------------------

@pytest.mark.data
@pytest.mark.slow
def test_smoke_with_a_tight_budget_skips_and_still_writes_every_file(cifar_root, tmp_path):
    """About 90 s: the main job's seed 0 and the profile fit, torch.compile and the notebooks do not.

    The notebooks' estimate is the smoke settings' fixed 60 s (``notebooks_fixed_seconds``) plus their LR
    test and training (about 90 s in all), more than a 90 s budget holds once the main job has run, however
    fast this machine runs the other parts (with 2 minutes they once fitted, by one second)."""
    out, work = tmp_path / "out", tmp_path / "work"
    status = gr.main(["--smoke", "--budget-minutes", "1.5", "--parts", "main_job", "lr_sweep", "notebooks", "profile",
                      "--out", str(out), "--work-dir", str(work), "--data-root", str(cifar_root)])
    assert sorted(p.name for p in out.iterdir()) == sorted(gr.OUTPUT_FILES)
    report = json.loads((out / gr.REPORT_JSON).read_text())
    assert (status, report["status"]) in ((0, "completed"), (3, "interrupted"))
    layout = gr.new_report(gr.SMOKE, ["main_job"], gr.Budget(60), [])
    assert set(report) == set(layout) and set(report["parts"]) == set(gr.PARTS)
    for name in ("main_job", "lr_sweep", "notebooks", "profile"):
        assert set(report["parts"][name]) == set(layout["parts"][name])
    assert report["parts"]["zoo"]["status"] == "not_requested"
    skipped = {(s["part"], s["item"]): s for s in report["skipped"]}
    assert ("zoo", "whole part") in skipped and ("albumentations_path", "whole part") in skipped
    assert ("notebooks", "notebooks 01-06") in skipped, "the notebooks never fit in 90 s"
    assert skipped[("notebooks", "notebooks 01-06")]["estimate_seconds"] > 0
    assert report["parts"]["notebooks"]["status"] == "skipped"
    with tarfile.open(out / gr.NOTEBOOKS_TAR) as t:
        assert t.getnames() == ["notebooks/NOT_RUN.txt"]
    assert report["data"]["sha256"] and report["environment"]["git_commit_source"]
    assert report["budget"]["elapsed_seconds"] <= 90 + 30, "the watchdog keeps the run near its budget"
    assert not list(out.glob("**/*.pt")), "run folders live in the work dir, never in the output folder"
