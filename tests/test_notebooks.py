"""The notebooks: the whole chain executed headless with papermill on the real copy (tiny
parameters) as Google Colab runs it, each notebook in its own VM handing its files on through a
stand-in Google Drive, once per test session (every test of the chain reads that one execution);
the executed notebooks against the committed ones (the same cells, the same profile-independent
outputs: tests/_notebook_checks.py); nothing written into the checkout; notebooks 05 and 07 alone in
a fresh folder; the artifacts each notebook promises; the runner's order, parameters, refusals and
failure reports; and the structure of the committed notebooks (parameters cell, Colab cell, outputs
present, provenance, prose without measured figures)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch
from _colab_stand_in import apply_env, colab_env, write_stand_in
from _notebook_checks import changes, checked_text, checkout_state, is_checked, sanitizers

from cifarhelpers.analysis import DEFAULT_GRADCAM_LAYERS
from cifarhelpers.cli.notebooks import main
from cifarhelpers.errors import ConfigError
from cifarhelpers.notebook import (
    ANALYSIS_JSON,
    NOTEBOOKS,
    NOTEBOOKS_DIR,
    STATS_JSON,
    SWEEP_JSON,
    TRAIN_JSON,
    ZOO_JSON,
    NotebookSetup,
    badge_markdown,
    load_lr_range_test,
    load_parameters_file,
    load_statistics,
    notebook_config,
    notebook_parameters,
    parse_setup_line,
    resolve_loader,
    run_notebooks,
    save_statistics,
    training_config,
)
from cifarhelpers.training import LR_JSON, PROFILES, run_lr_range_test, save_lr_range_test

# Small enough for about two minutes on 2 CPU cores, big enough for every notebook to have
# something to show (mistakes, a confusion matrix over all classes, a curve). 02's num_images stays the
# notebook's own: its checked cells print the preview's shapes, compared with the committed outputs.
TINY = {
    "device": "cpu", "profile": "short", "train_subset": 512, "test_subset": 200, "epochs": 1, "batch_size": 64,
    "lr_test_iterations": 20, "images_per_class": 2, "draws": 3, "num_mistakes": 8,
    "num_gradcam": 4, "layer_images": 4,
    # 07's sweep: one trial after another in the kernel (Ray's start-up would double its time; Ray
    # itself is tested in test_sweep.py)
    "backend": "sequential", "num_seeds": 2,
}
# Per notebook, on top of TINY: 03's range test costs iterations x batch (its 20 iterations took 46 s on one idle
# core with 64 images each, 32 s with 32; 70 s with 64 in the suite).
TINY_BY_NOTEBOOK = {"03_lr_range_test.ipynb": {"batch_size": 32}}
TEST_IMAGES, PER_CLASS = TINY["test_subset"], TINY["test_subset"] // 10  # a class-balanced draw
PARAMETERS = {"custom_resnet": 6_573_130, "resnet18": 11_173_962, "dilated_net": 193_535}
PNG_MIN_BYTES = 5_000
NOTEBOOK_PATHS = [NOTEBOOKS_DIR / name for name in NOTEBOOKS]


def assert_pngs(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        assert path.is_file(), f"{name} missing from {folder}"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > PNG_MIN_BYTES, f"{name}: {len(data)} bytes"


# -- the chain, run once, as on Colab ----------------------------------------------------------

@pytest.fixture(scope="session")
def colab_chain(cifar_root, tmp_path_factory) -> SimpleNamespace:
    """Notebooks 01-07 in order as Google Colab runs them: each in its own VM (its own kernel, working
    folder and /content, tests/_colab_stand_in.py), whose first cell mounts the one Google Drive they
    share; with the default output_dir, so every hand-off goes through Drive. Tiny parameters. The one
    execution of the notebooks in a test session: every test of the chain reads it. ``checkout`` holds
    the checkout's state before and after (:func:`_notebook_checks.checkout_state`)."""
    import papermill

    before = checkout_state()
    base = tmp_path_factory.mktemp("colab")
    ipython, drive, executed = write_stand_in(base / "stand-in"), base / "drive", base / "executed"
    executed.mkdir()
    given = {**TINY, "data_root": str(cifar_root)}
    with pytest.MonkeyPatch.context() as env:
        for name in NOTEBOOKS:
            content = base / f"vm-{name[:2]}" / "content"
            apply_env(env, colab_env(ipython, content, drive))
            declared = notebook_parameters(NOTEBOOKS_DIR / name)
            parameters = {k: v for k, v in {**given, **TINY_BY_NOTEBOOK.get(name, {})}.items() if k in declared}
            try:
                papermill.execute_notebook(str(NOTEBOOKS_DIR / name), str(executed / name), cwd=str(content),
                                           parameters=parameters,
                                           kernel_name="python3", progress_bar=False)
            except papermill.PapermillExecutionError as err:
                err.add_note(f"{name} failed on the stand-in Colab; executed copy: {executed / name}")
                raise
    folder = drive / "MyDrive" / "cifarhelpers" / "runs" / "notebooks"
    return SimpleNamespace(base=base, executed=executed, folder=folder, checkout=(before, checkout_state()))


@pytest.fixture(scope="session")
def chain(colab_chain) -> Path:
    """The notebooks' shared output folder: ``MyDrive/cifarhelpers/runs/notebooks`` on the stand-in Drive."""
    return colab_chain.folder


def executed_text(nb: nbformat.NotebookNode, start: int = 0, stop: int | None = None) -> str:
    """The text outputs of the code cells ``start:stop`` of an executed notebook."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return "".join("".join(o.get("text", "")) for c in code[start:stop] for o in c.outputs)


@pytest.mark.data
def test_every_notebook_ran_in_its_own_colab_vm_and_handed_its_files_on_through_drive(colab_chain):
    texts = {}
    for name in NOTEBOOKS:
        nb = nbformat.read(colab_chain.executed / name, as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "output_dir" not in injected[0].source, f"{name}: the default output_dir"
        assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", [])), name
        content = colab_chain.base / f"vm-{name[:2]}" / "content"
        first = executed_text(nb, 0, 1)
        assert f"Mounted at {content / 'drive'}" in first and "Google Drive mounted" in first, name
        setup = executed_text(nb, 3, 4)  # Colab cell, parameters, injected parameters, set-up
        assert "Colab: outputs go to Google Drive" in setup and parse_setup_line(setup)[1] == "short", name
        assert [p.name for p in content.iterdir()] == ["drive"], f"{name} wrote nothing on its VM's own disk"
        texts[name[:2]] = executed_text(nb)
    assert re.search(r"\): read from \S*dataset_statistics\.json", texts["02"]), "02 read 01's statistics from Drive"
    assert "from notebook 03's LR range test" in texts["04"], "04 trained at 03's suggestion, read from Drive"
    assert "custom_resnet from " in texts["05"] and "no model from notebook 04" not in texts["05"], "04's model"
    assert "notebook 03 (custom_resnet) suggested LRMAX" in texts["07"], "07 shows 03's suggestion, read from Drive"
    executed_03 = nbformat.read(colab_chain.executed / "03_lr_range_test.ipynb", as_version=4)
    assert "lr_test_iterations = 20" in "\n".join(c.source for c in executed_03.cells)


@pytest.mark.data
@pytest.mark.parametrize("name", NOTEBOOKS, ids=[name[:2] for name in NOTEBOOKS])
def test_the_chain_ran_the_committed_cells_and_reproduced_their_profile_independent_outputs(colab_chain, name):
    """The executed notebook is the committed one plus papermill's parameters cell, and every cell marked
    ``# NBVAL_CHECK_OUTPUT`` printed what the committed notebook shows (sanitized as
    notebooks/nbval_sanitize.cfg says), though the committed outputs come from another device and profile."""
    committed = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    executed = nbformat.read(colab_chain.executed / name, as_version=4)
    ran = [c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    assert [(c.cell_type, c.get("id"), c.source) for c in ran] == \
        [(c.cell_type, c.get("id"), c.source) for c in committed.cells], f"{name}: the committed cells, in order"
    rules = sanitizers()
    checked = [i for i, cell in enumerate(committed.cells) if is_checked(cell)]
    assert checked, f"{name} has no profile-independent cell"
    for i in checked:
        assert ran[i].execution_count is not None and checked_text(committed.cells[i], rules), f"{name} cell {i}"
        assert checked_text(ran[i], rules) == checked_text(committed.cells[i], rules), \
            f"{name} cell {i} ({committed.cells[i].get('id')}) printed other than the committed notebook shows"


@pytest.mark.data
def test_the_chain_writes_nothing_into_the_checkout(colab_chain):
    before, after = colab_chain.checkout
    if before is None:
        pytest.skip("not a git checkout")
    found = changes(before, after)
    assert not found, f"the notebooks wrote into the checkout (everything goes to tmp_path): {found}"


def test_the_checkout_state_sees_an_output_folder_written_or_a_notebook_changed(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/runs/\n/data/\n")
    for folder, name in (("runs", "old.json"), ("src", "a.py"), ("notebooks", "01.ipynb")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text("{}")
        os.utime(tmp_path / folder / name, (1e9, 1e9))
        os.utime(tmp_path / folder, (1e9, 1e9))
    before = checkout_state(tmp_path)
    assert set(before) == {".gitignore", "notebooks/", "runs/", "src/", "notebooks/01.ipynb"}
    (tmp_path / "runs" / "new.json").write_text("{}")  # into an ignored folder that was there
    (tmp_path / "data").mkdir()  # a new ignored folder
    (tmp_path / "data" / "x.npz").write_text("")
    (tmp_path / "notebooks" / "01.ipynb").write_text("{ }")
    (tmp_path / "src" / "b.py").write_text("")  # source being written in an untracked folder: not an output
    assert changes(before, checkout_state(tmp_path)) == ["data/ (new)", "notebooks/01.ipynb (changed)",
                                                         "runs/ (changed)"]


def _execute_alone(path: Path, folder: Path, root: Path) -> None:
    """Execute the notebook at ``path`` from ``folder/notebooks`` (a fresh copy's place) with its default
    output_dir (``../runs/notebooks``: ``folder/runs/notebooks``), on the CPU, the short profile."""
    import papermill

    work = folder / "notebooks"
    work.mkdir()
    papermill.execute_notebook(str(path), str(work / path.name), cwd=str(work), kernel_name="python3",
                               parameters={"data_root": str(root), "device": "cpu", "profile": "short"},
                               progress_bar=False)


@pytest.mark.data
def test_notebook_05_alone_in_a_fresh_folder_stops_asking_for_notebook_04s_model(small_root, tmp_path):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError) as info:
        _execute_alone(NOTEBOOKS_DIR / "05_misclassification_gradcam.ipynb", tmp_path, small_root)
    err = info.value
    assert err.ename == "ConfigError", err.evalue
    assert "no trained model yet: ../runs/notebooks/train_run.json does not exist. Run notebook 04 first" in err.evalue
    assert [p.name for p in (tmp_path / "runs" / "notebooks").iterdir()] == [], "05 wrote nothing"


@pytest.mark.data
def test_notebook_07_alone_in_a_fresh_folder_says_notebook_03_has_not_run(small_root, tmp_path):
    """07 without notebook 03's file sweeps all the same (by design) and says it has no suggestion to show:
    executed up to that note, since the sweep itself is the chain's."""
    nb = nbformat.read(NOTEBOOKS_DIR / "07_lr_sweep.ipynb", as_version=4)
    note = next(i for i, cell in enumerate(nb.cells) if "print(lr_range_test_note(" in cell.source)
    nb.cells = nb.cells[:note + 1]
    nbformat.write(nb, tmp_path / "07_lr_sweep.ipynb")
    _execute_alone(tmp_path / "07_lr_sweep.ipynb", tmp_path, small_root)
    executed = nbformat.read(tmp_path / "notebooks" / "07_lr_sweep.ipynb", as_version=4)
    text = "".join("".join(o.get("text", "")) for o in executed.cells[-1].outputs)
    assert text.startswith(f"no LR range test here: {LR_JSON} is not in the output folder. Run notebook 03 first")
    assert "suggested LRMAX" not in text


@pytest.mark.data
def test_01_writes_the_statistics_the_transforms_use(chain, cifar, cifar_stats):
    stats = json.loads((chain / STATS_JSON).read_text())
    for split in ("train", "test"):
        s = stats[split]
        assert all(0.4 < m < 0.55 for m in s["mean"]) and all(0.2 < v < 0.3 for v in s["std"])
        assert s["min"] == [0.0, 0.0, 0.0] and s["max"] == [1.0, 1.0, 1.0]
        assert np.allclose(np.square(s["std"]), s["var"])
    assert stats["train"]["mean"] == pytest.approx(list(cifar_stats.mean), abs=1e-12)
    assert stats["train"]["std"] == pytest.approx(list(cifar_stats.std), abs=1e-12)
    assert stats["train"]["num_images"] == 50_000 and stats["test"]["num_images"] == 10_000
    assert stats["class_counts"] == {"train": [5000] * 10, "test": [1000] * 10}
    assert stats["data"]["sha256"] == cifar.source.sha256
    assert_pngs(chain, ["class_balance.png", "channel_histograms.png", "samples.png"])


@pytest.mark.data
def test_02_writes_the_augmentation_previews(chain):
    assert_pngs(chain, ["augmentation_steps.png", "augmentation_draws.png", "augmentation_steps_affine_cutout16.png",
                        "augmentation_draws_affine_cutout16.png"])


@pytest.mark.data
def test_03_suggests_a_finite_positive_lr_and_leaves_the_model_unchanged(chain):
    lr = json.loads((chain / LR_JSON).read_text())
    assert math.isfinite(lr["max_lr"]) and lr["max_lr"] > 0
    assert lr["suggestions"][lr["rule"]] == lr["max_lr"] and lr["min_lr"] == pytest.approx(lr["max_lr"] / 10)
    assert lr["settings"]["num_iter"] == 20 and lr["settings"]["batch_size"] == 32
    assert lr["settings"]["end_lr"] == 10.0 and lr["settings"]["step_mode"] == "exp"
    assert 17 <= len(lr["lrs"]) == len(lr["losses"]) <= 20
    assert lr["lrs"] == sorted(lr["lrs"]) and min(lr["lrs"]) <= lr["max_lr"] <= max(lr["lrs"])
    assert lr["restored"] is True
    settings = lr["settings"]
    assert (settings["train_images"], settings["model"], settings["loader"]) == (512, "custom_resnet", "albumentations")
    assert_pngs(chain, ["lr_range_test.png"])


@pytest.mark.data
def test_04_trains_with_notebook_03s_lrs_and_saves_weights_and_metrics(chain):
    handoff = json.loads((chain / TRAIN_JSON).read_text())
    assert not Path(handoff["run_dir"]).is_absolute(), "relative to the output folder: Drive may sit elsewhere"
    run_dir = chain / handoff["run_dir"]
    assert run_dir.parent == chain
    metrics = json.loads((run_dir / "metrics.json").read_text())
    lr = json.loads((chain / LR_JSON).read_text())
    assert metrics["status"] == "completed" and len(metrics["history"]) == 1
    assert metrics["recipe"]["max_lr"] == pytest.approx(lr["max_lr"])
    assert metrics["recipe"]["min_lr"] == pytest.approx(lr["min_lr"])
    assert metrics["data"]["train_images"] == 512 and metrics["data"]["test_images"] == TEST_IMAGES
    accuracy = metrics["final_test_accuracy"]
    assert accuracy == metrics["history"][-1]["test_accuracy"], "the last epoch's test accuracy"
    assert accuracy * TEST_IMAGES == pytest.approx(round(accuracy * TEST_IMAGES), abs=1e-6), "a whole number of images"
    assert handoff["final_test_accuracy"] == accuracy and handoff["test_images"] == TEST_IMAGES
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) \
        == PARAMETERS["custom_resnet"]
    assert_pngs(chain, ["lr_schedule.png", "curves.png"])


@pytest.mark.data
def test_05_analyses_the_test_images_notebook_04_used(chain):
    analysis = json.loads((chain / ANALYSIS_JSON).read_text())
    handoff = json.loads((chain / TRAIN_JSON).read_text())
    run = json.loads((chain / handoff["run_dir"] / "metrics.json").read_text())
    matrix = np.asarray(analysis["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == analysis["test_images"] == handoff["test_images"] == TEST_IMAGES
    assert matrix.sum(axis=1).tolist() == [PER_CLASS] * 10, "the class-balanced test subset"
    assert analysis["accuracy"] == pytest.approx(np.trace(matrix) / TEST_IMAGES)
    assert abs(analysis["accuracy"] - handoff["final_test_accuracy"]) <= 0.01, "the same model on the same images"
    assert [r["class"] for r in analysis["per_class"]][:2] == ["airplane", "automobile"]
    for row in analysis["per_class"]:
        assert all(0.0 <= row[k] <= 1.0 for k in ("accuracy", "precision", "recall", "f1"))
        assert row["support"] == PER_CLASS
    assert analysis["evaluation"]["accuracy"] == handoff["final_test_accuracy"], "evaluate_model reproduces the run"
    assert analysis["evaluation"]["tta"]["accuracy"] == run["final_test_accuracy_flip_tta"], "and its flip TTA"
    assert np.allclose(analysis["confusion_matrix_normalized"], matrix / PER_CLASS), "each row over its class's images"
    assert [row["recall"] for row in analysis["per_class"]] == pytest.approx(np.diag(matrix) / PER_CLASS), "diagonal"
    assert all(count >= 5 for _, _, count in analysis["most_confused"]), "min_confused = 5"
    assert analysis["gradcam_layer"] == DEFAULT_GRADCAM_LAYERS["custom_resnet"]
    assert set(analysis["gradcam_layer_comparison"]) == {"layer2", "layer3", "random maps"}
    assert analysis["gradcam_layer_comparison"]["layer2"]["images"] == TINY["layer_images"]
    assert 1 <= len(analysis["mistakes_shown"]) <= 8 and not Path(analysis["run_dir"]).is_absolute()
    assert_pngs(chain, ["top_losses.png", "gradcam.png", "gradcam_correct.png", "confusion_matrix.png",
                        "per_class_metrics.png", "gradcam_layers.png"])


@pytest.mark.data
def test_05s_mistakes_are_mistakes_of_notebook_04s_model_and_its_gradcam_maps_vary(chain, cifar):
    """The images 05 shows as mistakes are misclassified by 04's model, and GradCAM at 05's layer gives each a
    map of its predicted class in [0, 1] that varies over the image (a flat map explains nothing)."""
    from cifarhelpers.analysis import gradcam
    from cifarhelpers.data import balanced_subset, normalize_batch
    from cifarhelpers.notebook import load_train_run

    analysis = json.loads((chain / ANALYSIS_JSON).read_text())
    model, metrics, _ = load_train_run(chain, "cpu")
    cfg = metrics["config"]
    images, labels = balanced_subset(cifar.x_test, cifar.y_test, cfg["test_subset"], cfg["seed"], name="test_subset")
    shown = analysis["mistakes_shown"][:4]
    inputs = normalize_batch(images[shown], metrics["data"]["mean"], metrics["data"]["std"])
    with torch.no_grad():
        predicted = model(inputs).argmax(dim=1).tolist()
    assert all(p != t for p, t in zip(predicted, labels[shown].tolist())), "05's mistakes are mistakes"
    maps = gradcam(model, inputs, predicted, analysis["gradcam_layer"], device="cpu")
    assert maps.shape == (len(shown), 32, 32) and maps.min() >= 0.0 and maps.max() <= 1.0
    # each map is scaled to [0, 1] before its bilinear upsampling, which may round its peak and trough off a little
    assert all(np.ptp(m) > 0.5 for m in maps), [(m.min(), m.max()) for m in maps]


@pytest.mark.data
def test_06_describes_every_model(chain):
    zoo = json.loads((chain / ZOO_JSON).read_text())
    assert {name: entry["parameters"] for name, entry in zoo.items()} == PARAMETERS
    assert zoo["dilated_net"]["receptive_field"] == 67
    assert all(entry["layers"] and entry["receptive_field"] > 32 for entry in zoo.values())
    assert_pngs(chain, ["receptive_fields.png"])


@pytest.mark.data
def test_07_sweeps_lrmax_beside_notebook_03s_suggestion(chain):
    sweep = json.loads((chain / SWEEP_JSON).read_text())
    lr = json.loads((chain / LR_JSON).read_text())
    assert sweep["lr_range_test_max_lr"] == lr["max_lr"], "notebook 03's suggestion, shown beside the sweep"
    assert sweep["backend"] == "sequential" and sweep["status"] == "completed"
    assert [row["max_lr"] for row in sweep["table"]] == list(PROFILES["short"].sweep["max_lrs"])
    assert all(row["seeds"] == row["completed"] == 2 for row in sweep["table"])
    sweep_dir = Path(sweep["sweep_dir"]).resolve()  # through 07's VM's mount point
    assert sweep_dir.parent == chain.resolve() and sweep_dir.name.startswith("sweep-")
    trials = json.loads((sweep_dir / "sweep.json").read_text())["trials"]
    assert len(trials) == 4 and {t["params"]["seed"] for t in trials} == {0, 1}
    for row in sweep["table"]:
        accuracies = [t["final_test_accuracy"] for t in trials if t["params"]["max_lr"] == row["max_lr"]]
        assert row["test_accuracy_mean"] == pytest.approx(np.mean(accuracies)), "the table is its trials' mean"
    best = max(sweep["table"], key=lambda row: row["test_accuracy_mean"])
    assert (sweep["best_max_lr"], sweep["best_test_accuracy_mean"]) == (best["max_lr"], best["test_accuracy_mean"])
    for trial in trials:
        metrics = json.loads((Path(trial["run_dir"]) / "metrics.json").read_text())
        assert trial["status"] == metrics["status"] == "completed", trial
        assert trial["final_test_accuracy"] == metrics["final_test_accuracy"] == metrics["history"][-1]["test_accuracy"]
        assert metrics["config"]["model"] == "dilated_net", "the short profile's sweep model"
        assert (metrics["data"]["train_images"], metrics["data"]["test_images"], len(metrics["history"])) == \
            (512, TEST_IMAGES, 1), "the chain's parameters reach every trial"
    assert_pngs(chain, ["lr_sweep.png"])
    assert_pngs(sweep_dir, ["results.png"])


# -- the runner's refusals and failures -------------------------------------------------------

@pytest.mark.parametrize("parameters,message", [
    ({"epoch": 3}, r"unknown notebook parameter\(s\) \['epoch'\]; the notebooks take \[.*'epochs'"),
    ({"epochs": 0}, r"epochs=0 \(int\) is invalid: it must be an integer >= 1"),
    ({"profile": "medium"}, r"profile='medium' \(str\) is invalid: choose one of \['auto', 'short', 'full'\]"),
    ({"loader": "gpu"}, r"loader='gpu' \(str\) is invalid: choose one of \['auto', 'albumentations', 'device'\]"),
    ({"model": "vgg"}, r"model='vgg' \(str\) is invalid"),
    ({"lr_test_iterations": 5}, r"lr_test_iterations=5 \(int\) is invalid: it must be an integer >= 17"),
    ({"lr_rule": "median"}, r"lr_rule='median' \(str\) is invalid: choose one of \['valley', 'steepest', 'min_loss'\]"),
    ({"start_lr": 1.0, "end_lr": 0.5}, r"start_lr=1.0 must be below end_lr=0.5"),
    ({"num_mistakes": 0}, r"num_mistakes=0 \(int\) is invalid"),
    ({"tta": "yes"}, r"tta='yes' \(str\) is invalid: it must be True or False"),
    ({"min_confused": 0}, r"min_confused=0 \(int\) is invalid: it must be an integer >= 1"),
    ({"max_lrs": "0.01,abc"}, r"max_lrs='abc' \(str\) is invalid: it must be a finite number > 0.0"),
    ({"backend": "dask"}, r"backend='dask' \(str\) is invalid: choose one of \['auto', 'ray', 'sequential'\]"),
    ({"num_seeds": 0}, r"num_seeds=0 \(int\) is invalid"),
    ({"output_dir": "elsewhere"}, r"output_dir is set by the runner"),
    pytest.param({"device": "cuda"}, r"asked for CUDA but no CUDA GPU is available here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")),
])
def test_runner_refuses_bad_parameters_before_running_anything(parameters, message, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError, match=message):
        run_notebooks(parameters, output_dir=runs, progress=False)
    assert not runs.exists(), "no run folder for a refused run"


def test_the_runner_runs_notebooks_in_order_into_one_folder_with_the_parameters_and_a_relative_data_root(
        tmp_path, monkeypatch):
    """Two stand-in notebooks: the second reads what the first wrote into the injected output_dir; a
    relative data root means the same folder as seen from where the runner was called."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name, body in [("a.ipynb", "import json, os, pathlib\npathlib.Path(output_dir, 'seen.json').write_text("
                                   "json.dumps({'data_root': data_root, 'env': os.environ['CIFAR10_ROOT']}))"),
                       ("b.ipynb", "import pathlib\npathlib.Path(output_dir, 'b.txt').write_text("
                                   "pathlib.Path(output_dir, 'seen.json').read_text())")]:
        params = nbformat.v4.new_code_cell('data_root = None\noutput_dir = "runs"')
        params.metadata["tags"] = ["parameters"]
        notebook = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, str(notebooks / name))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIFAR10_ROOT", "copies/from-env")
    run_dir = run_notebooks({"data_root": "copies/given"}, output_dir="runs", notebooks_dir=notebooks,
                            notebooks=("a.ipynb", "b.ipynb"), progress=False)
    seen = json.loads((run_dir / "seen.json").read_text())
    assert seen == {"data_root": str(tmp_path / "copies/given"), "env": str(tmp_path / "copies/from-env")}
    assert (run_dir / "b.txt").read_text() == (run_dir / "seen.json").read_text(), "b ran after a, in its folder"
    assert json.loads((run_dir / "parameters.json").read_text())["notebooks"] == ["a.ipynb", "b.ipynb"]
    for name in ("a.ipynb", "b.ipynb"):
        (injected,) = [c for c in nbformat.read(run_dir / name, as_version=4).cells
                       if "injected-parameters" in c.metadata.get("tags", [])]
        assert f'output_dir = "{run_dir}"' in injected.source, "the run folder, for every notebook"
    assert os.environ["CIFAR10_ROOT"] == "copies/from-env", "the caller's environment is left as it was"


def test_cli_reports_a_refused_parameter_and_exits_2(tmp_path, capsys):
    assert main(["run", "-p", "epochs", "0", "--output-dir", str(tmp_path / "runs")]) == 2
    assert "cifar-notebooks: error: epochs=0 (int) is invalid" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_parameters_file_is_read_and_p_overrides_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("epochs: 3\nmax_lr: 0.02\nprofile: short\nresume: null\n")
    assert load_parameters_file(path) == {"epochs": 3, "max_lr": 0.02, "profile": "short", "resume": None}
    path.write_text("")
    assert load_parameters_file(path) == {}


@pytest.mark.parametrize("text,message", [
    ("- epochs\n- 3\n", r"holds a list, not a mapping"),
    ("epochs: [3, 4]\n", r"'epochs': \[3, 4\] is not a parameter name with a plain value"),
    ("epochs: 3\n  bad indent: x\n", r"is not valid YAML"),
])
def test_a_malformed_parameters_file_is_refused_naming_it(text, message, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_parameters_file(path)


@pytest.mark.parametrize("text,message", [
    ("epoch: 3\n", r"unknown notebook parameter\(s\) \['epoch'\]"),
    ("epochs: five\n", r"epochs='five' \(str\) is invalid: it must be an integer >= 1"),
    ("lr_rule: 3\n", r"lr_rule=3 \(int\) is invalid: choose one of"),
])
def test_cli_refuses_an_unknown_or_ill_typed_parameter_in_the_file_before_running(text, message, tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert main(["run", "-f", str(path), "--output-dir", str(tmp_path / "runs")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists(), "nothing ran"
    assert main(["run", "-f", str(tmp_path / "missing.yaml"), "--output-dir", str(tmp_path / "runs")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_a_failing_cell_stops_the_chain_with_papermills_error_naming_the_notebook(tmp_path):
    import papermill

    missing = tmp_path / "no-such-copy"
    with pytest.raises(papermill.PapermillExecutionError) as info:
        run_notebooks({"data_root": str(missing), "device": "cpu"}, output_dir=tmp_path / "runs", progress=False)
    err = info.value
    text = str(err)
    assert err.notebook == NOTEBOOKS[0] and f"notebook {NOTEBOOKS[0]} failed at cell" in text
    assert err.ename == "DataNotFoundError" and str(missing) in err.evalue
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / NOTEBOOKS[0]).is_file(), "the failed notebook is saved with its outputs"
    assert not (run_dir / NOTEBOOKS[1]).exists(), "the chain stopped at the failing notebook"


# -- the helpers the notebooks call -----------------------------------------------------------

def test_loader_auto_is_the_device_loader_on_a_gpu_only():
    for auto in ("auto", None):
        assert resolve_loader(auto, torch.device("cuda")) == "device"
        assert resolve_loader(auto, torch.device("cpu")) == "albumentations"
    assert resolve_loader("device", torch.device("cpu")) == "device"
    assert resolve_loader("auto", torch.device("cuda"), "affine_cutout16") == "albumentations", \
        "the device loader implements cutout8 only"


def test_notebook_config_takes_the_profile_then_the_parameters_given(tmp_path):
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=None,
                          seed=3)
    cfg = notebook_config(setup, epochs=None, batch_size=64, model="dilated_net")
    assert (cfg.epochs, cfg.train_subset, cfg.test_subset) == (2, 4096, 2000), "the short profile"
    assert cfg.batch_size == 64 and cfg.model == "dilated_net" and cfg.seed == 3
    assert cfg.loader == "albumentations" and cfg.device == "cpu" and cfg.output_dir == str(tmp_path)
    full = notebook_config(NotebookSetup(device=torch.device("cpu"), profile=PROFILES["full"], output_dir=tmp_path,
                                         data=None))
    assert (full.epochs, full.train_subset, full.batch_size) == (24, None, 512), "the recipe itself"
    with pytest.raises(ConfigError, match="epochs=0"):
        notebook_config(setup, epochs=0)


def test_training_config_resumes_a_run_with_its_saved_settings(tmp_path):
    from cifarhelpers.training import TrainConfig, save_checkpoint

    saved = TrainConfig(model="dilated_net", epochs=3, batch_size=32, max_lr=0.003, train_subset=256, device="cpu")
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run, {"epoch": 1, "config": saved.to_dict(), "model": {}, "optimizer": {}, "scheduler": {},
                          "history": [], "data_sha256": "0" * 64})
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=None,
                          data_root="/copies/cifar10")
    cfg, source = training_config(setup, resume=str(run), model="custom_resnet", epochs=None, max_lr=None)
    assert cfg == saved.replace(resume=str(run), data_root="/copies/cifar10"), "the saved settings, not the profile's"
    assert source.startswith(f"the checkpoint in {run} (resumed")
    fresh, source = training_config(setup, model="dilated_net", max_lr=0.02)
    assert fresh.resume is None and fresh.max_lr == 0.02 and fresh.epochs == 2 and source == "the max_lr parameter"


def test_runner_refuses_a_resume_folder_without_a_checkpoint_before_running_anything(tmp_path):
    from cifarhelpers.errors import CheckpointError

    runs = tmp_path / "runs"
    with pytest.raises(CheckpointError, match=r"does not exist"):
        run_notebooks({"resume": str(tmp_path / "no-such-run")}, output_dir=runs, progress=False)
    assert not runs.exists(), "no run folder for a refused run"


def test_the_set_up_line_gives_device_and_profile_back(tmp_path):
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=None)
    line = setup.describe()
    assert parse_setup_line("warming up\n" + line + "\n") == (line.split(" | ")[0][len("device: "):], "short")
    assert parse_setup_line("profile: short | device: cpu") is None


def test_training_config_reads_notebook_03s_suggestion_for_onecycle_adam_only(tmp_path):
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=None)
    with pytest.warns(UserWarning, match=r"no LR range test found: .*Run notebook 03 first"):
        cfg, source = training_config(setup)  # opened on its own: the recipe's default, with a warning
    assert cfg.max_lr is None and cfg.resolved_max_lr == 0.005 and "notebook 03's lr_range_test.json is not in" in source
    with pytest.raises(ConfigError, match=r"lr_range_test.json \(written by the save_lr_range_test cell .* in "
                                          r"notebook 03 .*\).*does not exist"):
        training_config(setup, lr_path=tmp_path / "elsewhere.json")  # a file asked for by name must exist
    curve = {"lrs": [1e-4, 1e-3, 1e-2], "losses": [2.3, 2.0, 2.5], "rule": "steepest",
             "suggestions": {"valley": 0.002, "steepest": 0.004, "min_loss": 0.001}}
    (tmp_path / LR_JSON).write_text(json.dumps(curve))
    cfg, source = training_config(setup)
    assert (cfg.max_lr, cfg.min_lr) == (0.004, 0.0004) and source.startswith("notebook 03's LR range test (steepest")
    cfg, source = training_config(setup, max_lr=0.02)
    assert (cfg.max_lr, cfg.min_lr, source) == (0.02, None, "the max_lr parameter")
    cfg, source = training_config(setup, recipe="step_sgd")
    assert cfg.max_lr is None and source == "the step_sgd recipe's default", "SGD: the recipe's default"
    (tmp_path / LR_JSON).write_text(json.dumps({**curve, "suggestions": {"valley": None}}))
    with pytest.raises(ConfigError, match="run notebook 03 again"):
        training_config(setup)


def test_load_statistics_measures_afresh_only_when_notebook_01s_file_is_absent(tmp_path):
    from cifarhelpers.data import CIFAR10Data, DataSource, dataset_statistics

    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20) % 10
    data = CIFAR10Data(x, y, x[:10], y[:10], tuple("abcdefghij"), DataSource("image-folder", "/x", "0" * 64))
    stats, source = load_statistics(tmp_path, data)
    assert stats == dataset_statistics(x) and source.startswith("measured")
    with pytest.raises(ConfigError, match=r"written by the save_statistics cell .* in notebook 01"):
        load_statistics(tmp_path)
    save_statistics(tmp_path, data, dataset_statistics(x[:5]), dataset_statistics(x[:10]))
    stats, source = load_statistics(tmp_path, data)
    assert stats == dataset_statistics(x[:5]) and source == f"read from {tmp_path / STATS_JSON}"


@pytest.mark.data
@pytest.mark.parametrize("loader", ["albumentations", "device"])
def test_range_test_runs_with_either_loader_and_leaves_the_model_unchanged(loader, cifar, tmp_path):
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=cifar)
    cfg = notebook_config(setup, model="dilated_net", loader=loader, transform_set="cutout8", train_subset=64,
                          batch_size=16)  # cutout8: the device loader's set (DilatedNet's own is affine_cutout16)
    result = run_lr_range_test(cfg.replace(lr_test_iterations=17), data=cifar, progress=False)
    assert result.restored and result.settings["train_images"] == 64
    assert len(result.lrs) <= 17 and result.settings["batch_size"] == 16
    content = json.loads(save_lr_range_test(tmp_path, result).read_text())
    assert content["max_lr"] == result.max_lr > 0 and content["settings"]["loader"] == loader
    loaded, _ = load_lr_range_test(tmp_path)
    assert loaded.max_lr == result.max_lr and loaded.suggestions == result.suggestions


# -- the committed notebooks ------------------------------------------------------------------

def test_the_runner_runs_every_committed_notebook_in_order():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == list(NOTEBOOKS)
    assert [name[:2] for name in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_committed_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} ")
    assert badge_markdown(path.name) in first.source

    code = [c for c in nb.cells if c.cell_type == "code"]
    colab, params = code[0], code[1]
    assert "nbval-skip" in colab.metadata.get("tags", []) and colab.source.startswith("# NBVAL_SKIP")
    assert 'if "google.colab" in sys.modules:' in colab.source and "%pip install" in colab.source
    assert "mount_drive()" in colab.source, "Drive is mounted by the cell, not left to a comment"
    assert colab.outputs == []
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [params], "one parameters cell, right after the Colab cell"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)

    for cell in code:
        assert not re.search(r"^\s*(def|class) ", cell.source, re.MULTILINE), f"a definition in {cell.source[:60]!r}"
        assert cell.execution_count is not None, f"not executed: {cell.source[:60]!r}"
        assert not any(o.output_type == "error" for o in cell.outputs)
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts), "executed top to bottom"
    for cell in code[2:]:
        assert cell.outputs, f"a cell without output: {cell.source[:60]!r}"
    # the first output line names device and profile, and the first cell says the same of the committed outputs
    ran = parse_setup_line("".join(o.get("text", "") for o in code[2].outputs))
    assert ran, "the set-up cell's first output line names device, profile and data copy"
    device, profile = ran
    provenance = first.source.split("\n\n")[-1]
    assert provenance.startswith("*The outputs committed with this notebook come from a real run on ")
    assert (f"a CPU ({device.split(', ')[-1].split()[0]} cores)" if device.startswith("CPU") else f"**{device}**") \
        in provenance, f"the first cell says the committed outputs come from {device}"
    assert f"**{profile} profile**" in provenance, f"the first cell says the committed outputs are {profile}-profile"
    line = next(t for t in "".join(o.get("text", "") for o in code[2].outputs).splitlines() if parse_setup_line(t))
    commit = re.search(r"\| code: [^|]*\bgit ([0-9a-f]{12})", line)
    assert commit is None or f"commit `{commit.group(1)[:7]}`" in provenance, "the first cell names the run's commit"
    assert "/tmp/" not in line and "bundle" not in json.dumps(nb.metadata), "no temporary work folders shown"
    assert "widgets" not in nb.metadata, "no widget state committed"
    assert any("# NBVAL_CHECK_OUTPUT" in c.source for c in code), "at least one deterministic output is checked"
    assert path.stat().st_size < 2_000_000
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").replace(provenance, "")
    assert not re.findall(r"\d{2}\.\d{2}%|\d\.\d+e-\d", prose), "measured figures belong in outputs, not in prose"
    for word in ("budget", "bundle"):
        assert word not in (prose + provenance).lower(), f"{word!r}: how a report ran is not the student's business"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_notebooks_declare_every_knob(path):
    declared = notebook_parameters(path)
    common = {"device", "output_dir"} if path.name.startswith("06") else {
        "data_root", "download", "device", "profile", "seed", "output_dir"}
    assert common <= set(declared), sorted(common - set(declared))
    assert declared["output_dir"] == "'../runs/notebooks'" or declared["output_dir"] == '"../runs/notebooks"'
    extra = {"03": {"model", "loader", "batch_size", "train_subset", "lr_test_iterations", "lr_rule", "end_lr"},
             "04": {"model", "recipe", "loader", "epochs", "batch_size", "train_subset", "test_subset", "max_lr",
                    "pct_start", "resume", "lr_path"},
             "05": {"gradcam_layer", "num_mistakes", "num_gradcam", "num_correct", "min_confused", "tta",
                    "layer_images", "train_path", "train_if_missing"},
             "07": {"max_lrs", "num_seeds", "model", "recipe", "loader", "epochs", "batch_size", "train_subset",
                    "test_subset", "backend", "address", "gpus_per_trial", "lr_path"}}.get(path.name[:2], set())
    assert extra <= set(declared), sorted(extra - set(declared))
    if "loader" in declared:
        assert declared["loader"] in ("'auto'", '"auto"'), "the device loader on CUDA, albumentations elsewhere"
    if "train_if_missing" in declared:
        assert declared["train_if_missing"] == "False", "without notebook 04's model, 05 stops and says how"
