"""Sweeps: the spec and its validation (before any trial starts), a 2x2 sweep on a tiny real copy
through Ray Tune and without it (the same table, the same runs), a diverging trial, resuming a
half-finished sweep, the table, the plot and the command line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _reliability import comparable
from matplotlib.figure import Figure

from cifarhelpers.cli.sweep import main, parse_grid, parse_random
from cifarhelpers.errors import ConfigError, MissingDependencyError
from cifarhelpers.sweep import (
    RESULTS_CSV,
    RESULTS_PNG,
    SWEEP_FILE,
    SweepConfig,
    choose_backend,
    format_table,
    plot_sweep,
    results_table,
    resume_sweep,
    run_sweep,
)
from cifarhelpers.sweep import trials as trials_module
from cifarhelpers.training import METRICS_FILE, TrainConfig, fit

#: Two steps of 32 real images per epoch, 50 test images: about a second per trial on one core.
TINY = dict(model="dilated_net", device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=1)
GRID = {"max_lr": [1e-3, 1e-2]}


def tiny_spec(tmp_path: Path, root: Path | None = None, **changes) -> SweepConfig:
    base = TrainConfig(**{**TINY, **changes.pop("base", {})}, data_root=str(root) if root else None)
    return SweepConfig(**{"base": base, "grid": GRID, "seeds": (0, 1), "backend": "sequential",
                          "output_dir": str(tmp_path / "runs"), **changes})


def histories(result) -> dict[str, list[dict]]:
    return {t["name"]: comparable(json.loads((Path(t["run_dir"]) / METRICS_FILE).read_text())["history"])
            for t in result.trials}


# -- the spec: every trial built and validated before anything runs ------------------------------

def test_a_grid_times_seeds_gives_every_trial_a_validated_config():
    spec = SweepConfig(base=TrainConfig(**TINY), grid={"max_lr": [1e-3, 1e-2], "weight_decay": [0.0, 5e-4]},
                       seeds=(0, 1))
    trials = spec.trials("/sweeps/s/trials")
    assert len(trials) == 8 and [t.index for t in trials] == list(range(8))
    assert trials[0].params == {"max_lr": 1e-3, "weight_decay": 0.0, "seed": 0}
    assert trials[3].params == {"max_lr": 1e-3, "weight_decay": 5e-4, "seed": 1}
    assert trials[7].params == {"max_lr": 1e-2, "weight_decay": 5e-4, "seed": 1}
    assert trials[7].name == "t07_max_lr=0.01_weight_decay=0.0005_seed=1"
    assert trials[7].config == TrainConfig(**TINY).replace(max_lr=1e-2, weight_decay=5e-4, seed=1,
                                                           output_dir=f"/sweeps/s/trials/{trials[7].name}")
    assert len({t.config_key for t in trials}) == 4, "seeds of one config share its key"
    assert SweepConfig.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec, "sweep.json round trip"


def test_random_search_is_seeded_and_stays_inside_its_bounds():
    spec = SweepConfig(base=TrainConfig(**TINY), grid={"model": ["dilated_net", "custom_resnet"]},
                       random={"max_lr": ("loguniform", 1e-4, 1e-1), "weight_decay": ("choice", [0.0, 5e-4]),
                               "epochs": ("randint", 1, 3)}, num_samples=5, seeds=(0, 1, 2), search_seed=7)
    configs = spec.configs()
    assert len(configs) == 10 and len(spec.trials()) == 30
    assert [c["model"] for c in configs] == ["dilated_net"] * 5 + ["custom_resnet"] * 5
    assert all(1e-4 <= c["max_lr"] <= 1e-1 and c["weight_decay"] in (0.0, 5e-4) and c["epochs"] in (1, 2, 3)
               for c in configs)
    assert len({c["max_lr"] for c in configs}) == 10, "a fresh draw for every sample"
    assert spec.replace(search_seed=7).configs() == configs, "the same seed draws the same configs"
    assert spec.replace(search_seed=8).configs() != configs


@pytest.mark.parametrize("changes,message", [
    ({"grid": {"max_lrr": [0.01]}}, r"unknown field 'max_lrr' in the sweep's grid \(did you mean 'max_lr'\?\)"),
    ({"grid": {"epochs": [1, "2"]}}, r"sweep trial t01_epochs=2_seed=0 is invalid: epochs='2' \(str\) is invalid: "
                                     r"it must be an integer >= 1"),
    ({"grid": {"max_lr": [0.01, -1.0]}}, r"t01_max_lr=-1_seed=0 is invalid: max_lr=-1.0 .*finite number > 0"),
    ({"grid": {}}, r"the sweep is empty: give grid=\{field: \[values\]\}"),
    ({"grid": {"max_lr": []}}, r"grid\['max_lr'\] is an empty list"),
    ({"grid": {"max_lr": 0.01}}, r"grid\['max_lr'\]=0.01 must be a list of values"),
    ({"grid": {"seed": [0, 1]}}, r"cannot vary 'seed': list the seeds in seeds="),
    ({"grid": {"output_dir": ["a", "b"]}}, r"cannot vary 'output_dir'"),
    ({"grid": {"transform_set": ["affine_cutout16"]}, "base": {"loader": "device"}},
     r"loader='device' implements transform_set in \['cutout8', 'cutout8_p05'\] only"),
    ({"random": {"max_lr": ("normal", 0, 1)}}, r"is not a distribution"),
    ({"random": {"max_lr": ("loguniform", 0.0, 1.0)}}, r"random\['max_lr'\] low=0.0 .* > 0.0"),
    ({"seeds": ()}, r"seeds=\(\) must be a non-empty list"),
    ({"seeds": (0, 0)}, r"repeats a seed"),
    ({"backend": "dask"}, r"backend='dask' \(str\) is invalid: choose one of \['auto', 'ray', 'sequential'\]"),
    ({"backend": "sequential", "address": "auto"}, r"address='auto' names a Ray cluster"),
    ({"resources_per_trial": {"gpu": 1.5}}, r"above 1 GPU a trial takes whole GPUs"),
    ({"resources_per_trial": {"tpu": 1}}, r"keys 'cpu' and/or 'gpu'"),
])
def test_bad_sweeps_are_refused_before_any_trial_starts(changes, message, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(trials_module, "fit", lambda *a, **k: started.append(a))
    base = TrainConfig(**{**TINY, **changes.pop("base", {})})
    with pytest.raises(ConfigError, match=message):
        run_sweep(SweepConfig(**{"base": base, "grid": GRID, "output_dir": str(tmp_path / "runs"), **changes}))
    assert started == [] and not (tmp_path / "runs").exists(), "nothing ran, no folder was made"


def test_the_command_line_refuses_a_bad_grid_with_exit_2_and_makes_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["--grid", "max_lr=0.01,abc", "--model", "dilated_net", "--output-dir", str(runs)]) == 2
    assert "cifar-sweep: error: max_lr='abc': expected a number, find or none, got 'abc'" in capsys.readouterr().err
    assert main(["--grid", "weight_decay=-1", "--output-dir", str(runs)]) == 2
    assert "weight_decay=-1.0 (float) is invalid" in capsys.readouterr().err
    assert main(["--model", "dilated_net", "--output-dir", str(runs)]) == 2
    assert "the sweep is empty" in capsys.readouterr().err
    assert not runs.exists()


def test_grid_and_random_flags_take_each_fields_type():
    assert parse_grid(["max_lr=0.001,0.01", "model=dilated_net,resnet18", "train-subset=64,none", "amp=true,false"]) \
        == {"max_lr": [0.001, 0.01], "model": ["dilated_net", "resnet18"], "train_subset": [64, None],
            "amp": [True, False]}
    assert parse_random(["max_lr=loguniform:1e-4:1e-1", "epochs=randint:1:3", "weight_decay=choice:0,5e-4"]) == {
        "max_lr": ("loguniform", 1e-4, 1e-1), "epochs": ("randint", 1, 3), "weight_decay": ("choice", [0.0, 5e-4])}
    with pytest.raises(ConfigError, match=r"--grid 'max_lr' is not FIELD=VALUES"):
        parse_grid(["max_lr"])


def test_auto_runs_without_ray_and_an_explicit_ray_backend_names_the_extra(monkeypatch):
    spec = SweepConfig(base=TrainConfig(**TINY), grid=GRID)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "ray" else object())
    backend, why = choose_backend(spec)
    assert backend == "sequential" and "Ray is not installed" in why and "cifarhelpers[sweep]" in why
    assert choose_backend(spec.replace(backend="sequential"))[0] == "sequential"
    with pytest.raises(MissingDependencyError, match=r"pip install 'cifarhelpers\[sweep\]'"):
        choose_backend(spec.replace(backend="ray"))


# -- the table and the plot -----------------------------------------------------------------------

RECORDS = [
    {"params": {"model": "dilated_net", "seed": 0}, "status": "completed", "final_test_accuracy": 0.30,
     "wall_seconds": 2.0},
    {"params": {"model": "dilated_net", "seed": 1}, "status": "completed", "final_test_accuracy": 0.40,
     "wall_seconds": 3.0},
    {"params": {"model": "resnet18", "seed": 0}, "status": "diverged", "final_test_accuracy": None,
     "wall_seconds": 1.0},
    {"params": {"model": "resnet18", "seed": 1}, "status": "interrupted", "final_test_accuracy": None,
     "wall_seconds": None},
]


def test_the_table_has_one_row_per_config_with_mean_min_max_over_seeds():
    rows = results_table(RECORDS, ["model"])
    assert [r["model"] for r in rows] == ["dilated_net", "resnet18"]
    assert rows[0]["test_accuracy_mean"] == pytest.approx(0.35)
    assert (rows[0]["test_accuracy_min"], rows[0]["test_accuracy_max"], rows[0]["wall_seconds"]) == (0.30, 0.40, 5.0)
    assert (rows[1]["completed"], rows[1]["diverged"], rows[1]["pending"], rows[1]["test_accuracy_mean"]) == \
        (0, 1, 1, None)
    text = format_table(rows, ["model"]).splitlines()
    assert text[0].split() == ["model", "runs", "test", "acc", "mean", "min", "max", "wall", "s"]
    assert text[1].split() == ["dilated_net", "2/2", "completed", "35.00%", "30.00%", "40.00%", "5.0"]
    assert "0/2 completed, 1 diverged, 1 pending" in text[2] and text[2].split()[-4:] == ["-", "-", "-", "1.0"]


def test_the_plot_puts_categories_on_the_x_axis_and_failures_at_zero():
    fig = plot_sweep(RECORDS, "model", markers=None)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dilated_net", "resnet18"]
    points = [np.round(c.get_offsets(), 6).tolist() for c in ax.collections]
    assert points == [[[0, 30.0], [0, 40.0]], [[1, 0.0]]], "two seeds, then the diverged trial at 0%"
    numeric = plot_sweep([{**r, "params": {"max_lr": lr, "seed": 0}} for r, lr in zip(RECORDS, [1e-3, 1e-2, 1e-1, 1])],
                         "max_lr", markers={"LR range test": 2e-3})
    assert numeric.axes[0].get_xscale() == "log"
    assert any("LR range test: 0.002" in t.get_text() for t in numeric.axes[0].get_legend().get_texts())


# -- real sweeps on a tiny real copy --------------------------------------------------------------

@pytest.fixture(scope="module")
def sequential(small_root, small_data, one_thread, tmp_path_factory):
    """The 2x2 sweep (2 max LRs x 2 seeds), run one trial after another in this process."""
    return run_sweep(tiny_spec(tmp_path_factory.mktemp("seq"), small_root), data=small_data, progress=False)


@pytest.mark.data
def test_a_sequential_sweep_writes_runs_table_plot_and_sweep_json(sequential):
    result = sequential
    assert result.backend == "sequential" and result.status == "completed"
    assert result.sweep_dir.name.startswith("sweep-")
    assert [t["status"] for t in result.trials] == ["completed"] * 4
    for trial in result.trials:
        run_dir = Path(trial["run_dir"])
        assert run_dir.parent.name == trial["name"] and run_dir.parent.parent == result.sweep_dir / "trials"
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        assert metrics["status"] == "completed" and metrics["config"]["seed"] == trial["params"]["seed"]
        assert metrics["recipe"]["max_lr"] == trial["params"]["max_lr"]
        assert trial["final_test_accuracy"] == metrics["final_test_accuracy"] and trial["wall_seconds"] > 0
        assert (run_dir / "model.pt").is_file() and (run_dir / "checkpoint.pt").is_file()
    saved = json.loads((result.sweep_dir / SWEEP_FILE).read_text())
    assert saved["status"] == "completed" and saved["trials"] == json.loads(json.dumps(result.trials))
    assert saved["spec"]["grid"] == GRID and saved["spec"]["base"]["data_root"].startswith("/")
    with open(result.sweep_dir / RESULTS_CSV) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["max_lr"]) for r in rows] == [1e-3, 1e-2] and all(r["completed"] == "2" for r in rows)
    for row, trials in zip(rows, (result.trials[:2], result.trials[2:])):
        accuracies = [t["final_test_accuracy"] for t in trials]
        assert float(row["test_accuracy_mean"]) == pytest.approx(sum(accuracies) / 2)
        assert (float(row["test_accuracy_min"]), float(row["test_accuracy_max"])) == (min(accuracies), max(accuracies))
    assert (result.sweep_dir / RESULTS_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.data
def test_ray_runs_the_same_sweep_locally_two_trials_at_a_time(sequential, small_root, tmp_path, one_ray_at_a_time):
    pytest.importorskip("ray")
    spec = tiny_spec(tmp_path, small_root, backend="ray", resources_per_trial={"cpu": 1}, max_concurrent_trials=2)
    result = run_sweep(spec, progress=False)
    assert result.backend == "ray" and result.status == "completed"
    assert [t["name"] for t in result.trials] == [t["name"] for t in sequential.trials]
    assert [list(r) for r in result.table] == [list(r) for r in sequential.table], "the same table shape"
    assert histories(result) == histories(sequential), "each trial trains exactly as it does in-process"
    workers = set()
    for trial in result.trials:  # every epoch was reported to Tune, then the trial's outcome
        lines = (result.sweep_dir / "ray" / "tune-1" / trial["name"] / "result.json").read_text().splitlines()
        reports = [json.loads(line) for line in lines]
        assert [r["trial_status"] for r in reports] == ["running"] * TINY["epochs"] + ["completed"]
        assert reports[-1]["final_test_accuracy"] == trial["final_test_accuracy"]
        workers.add(reports[-1]["pid"])
    assert len(workers) == 2, "two worker processes, each reused for a second trial"
    import ray

    assert not ray.is_initialized(), "the sweep shut down the Ray it started"


@pytest.mark.data
def test_a_diverging_trial_is_recorded_and_the_others_go_on(small_root, small_data, one_thread, tmp_path):
    # max_lr 1e30: OneCycle's first step at 1e29 turns the second batch's loss into NaN
    spec = tiny_spec(tmp_path, small_root, grid={"max_lr": [1e30, 1e-3]}, seeds=(0,))
    result = run_sweep(spec, data=small_data, progress=False)
    diverged, completed = result.trials
    assert (diverged["status"], completed["status"]) == ("diverged", "completed")
    assert diverged["reason"].startswith("training diverged: loss is nan at epoch 1/1")
    assert json.loads((Path(diverged["run_dir"]) / METRICS_FILE).read_text())["status"] == "diverged"
    assert result.status == "completed", "a diverged trial has ended"
    assert [(r["completed"], r["diverged"]) for r in result.table] == [(0, 1), (1, 0)]
    assert result.table[0]["test_accuracy_mean"] is None and result.table[1]["test_accuracy_mean"] is not None


@pytest.mark.data
def test_an_interrupted_sweep_resumes_skipping_finished_trials(small_root, small_data, one_thread, tmp_path,
                                                               monkeypatch):
    real_fit, calls = trials_module.fit, []

    def fit_stopping_the_third_trial_after_one_epoch(cfg, **kwargs):
        calls.append(cfg)
        if len(calls) == 3:
            report = kwargs["on_epoch"]

            def stop(entry):
                report(entry)
                raise KeyboardInterrupt  # Ctrl-C once epoch 1 of 2 is checkpointed

            kwargs["on_epoch"] = stop
        return real_fit(cfg, **kwargs)

    monkeypatch.setattr(trials_module, "fit", fit_stopping_the_third_trial_after_one_epoch)
    spec = tiny_spec(tmp_path, small_root, base={"epochs": 2})
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, data=small_data, progress=True)
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    saved = json.loads((sweep_dir / SWEEP_FILE).read_text())
    assert saved["status"] == "interrupted"
    assert [t["status"] for t in saved["trials"]] == ["completed", "completed", "interrupted", "pending"]
    finished = {t["name"]: (Path(t["run_dir"]) / METRICS_FILE).read_bytes() for t in saved["trials"][:2]}
    interrupted_run = Path(saved["trials"][2]["run_dir"])

    calls.clear()
    result = resume_sweep(sweep_dir, data=small_data, progress=False)
    assert result.status == "completed" and [t["status"] for t in result.trials] == ["completed"] * 4
    assert [(c.seed, c.max_lr, c.resume) for c in calls] == [(0, 1e-2, str(interrupted_run)), (1, 1e-2, None)]
    for trial in result.trials[:2]:  # skipped: untouched, and no second run folder
        assert (Path(trial["run_dir"]) / METRICS_FILE).read_bytes() == finished[trial["name"]]
        assert len([p for p in Path(trial["run_dir"]).parent.iterdir() if p.is_dir()]) == 1
    resumed = json.loads((interrupted_run / METRICS_FILE).read_text())
    assert result.trials[2]["run_dir"] == str(interrupted_run), "continued in its own run folder"
    assert resumed["resumed_at_epochs"] == [1] and len(resumed["history"]) == 2
    sessions = json.loads((sweep_dir / SWEEP_FILE).read_text())["sessions"]
    assert [(s["status"], s["trials_run"]) for s in sessions] == [("interrupted", 4), ("completed", 2)]
    with pytest.raises(ConfigError, match=r"may change only .* not \['seeds'\]"):
        resume_sweep(sweep_dir, seeds=(5,))


@pytest.mark.data
def test_fit_reports_each_checkpointed_epoch_to_its_callback(small_data, one_thread, tmp_path):
    seen = []
    result = fit(TrainConfig(**{**TINY, "epochs": 2}, output_dir=str(tmp_path)), data=small_data, progress=False,
                 on_epoch=seen.append)
    assert [e["epoch"] for e in seen] == [1, 2] and all(e["run_dir"] == str(result.run_dir) for e in seen)
    assert [{k: v for k, v in e.items() if k != "run_dir"} for e in seen] == result.history


@pytest.mark.data
def test_the_command_line_runs_a_sweep_and_resume_finds_nothing_left(small_root, one_thread, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["--grid", "max_lr=0.001,0.01", "--seeds", "0", "--backend", "sequential", "--output-dir", str(runs),
            "--data-root", str(small_root), "--model", "dilated_net", "--device", "cpu", "--epochs", "1",
            "--train-subset", "64", "--test-subset", "50", "--batch-size", "32"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "backend: sequential (asked for)" in out and "2 trials (2 config(s) x 1 seed(s))" in out
    assert "max_lr  runs           test acc mean" in out
    (sweep_dir,) = runs.iterdir()
    assert main(["--resume", str(sweep_dir), "--backend", "sequential"]) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out
    assert main(["--resume", str(sweep_dir), "--epochs", "3"]) == 2
    assert "--resume continues a sweep as it was defined; drop ['epochs']" in capsys.readouterr().err


def test_a_swept_model_or_recipe_brings_its_own_settings_and_keeps_what_the_base_sets():
    from cifarhelpers.sweep import trial_config

    base = TrainConfig.preset(epochs=2, train_subset=256, batch_size=64)  # the main job at a small size
    dilated = trial_config(base, {"model": "dilated_net", "seed": 1})
    own = TrainConfig.preset(model="dilated_net")
    assert (dilated.recipe, dilated.transform_set, dilated.seed) == (own.recipe, own.transform_set, 1)
    assert (dilated.epochs, dilated.train_subset, dilated.batch_size) == (2, 256, 64), "the base's sizes stay"
    sgd = trial_config(base, {"recipe": "onecycle_sgd"})
    assert (sgd.logit_scale, sgd.weight_decay, sgd.resolved_max_lr, sgd.epochs) == (0.125, 5e-4, 0.4, 2)
    chosen = TrainConfig.preset(recipe="onecycle_sgd", epochs=2, label_smoothing=0.0)  # not the model's own recipe
    pinned = trial_config(chosen, {"model": "dilated_net"})
    assert (pinned.recipe, pinned.label_smoothing, pinned.logit_scale) == ("onecycle_sgd", 0.0, 0.125), \
        "a recipe the base chose, and what it set, win over the new model's own"
    assert trial_config(base, {"max_lr": 0.01}) == base.replace(max_lr=0.01)


def test_trial_hooks_run_in_this_process_so_ray_refuses_them(tmp_path):
    """before_trial / after_trial (a budget admitting trials, one record per trial: the GPU report) are called
    between trials in this process: the Ray backend refuses them before making a sweep folder."""
    pytest.importorskip("ray")
    spec = SweepConfig(grid={"max_lr": [1e-3]}, backend="ray", output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="backend='sequential'"):
        run_sweep(spec, before_trial=lambda trial: True)
    assert not list(tmp_path.iterdir()), "refused before any folder was made"
