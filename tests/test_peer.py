"""The GPU report's peer part (benchmarks/peer_airbench.py) and the airbench CPU port
(benchmarks/airbench_cpu_port.py): airbench's files written from our loader, their checks, the package's
printed timer, the summary, the part on a CPU, and a few steps of train94 through the port.

The arrays here are random (format tests only); the port's real result is results/cpu-airbench94/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import airbench  # noqa: E402
import airbench_cpu_port as port  # noqa: E402
import peer_airbench as peer  # noqa: E402
from gpu_report import report, runner, settings  # noqa: E402

from cifarhelpers.data import CLASSES, CIFAR10Data, DataSource  # noqa: E402
from cifarhelpers.errors import DataError  # noqa: E402


def random_data(train: int = 120, test: int = 60, seed: int = 0) -> CIFAR10Data:
    rng = np.random.default_rng(seed)
    return CIFAR10Data(x_train=rng.integers(0, 256, (train, 32, 32, 3), dtype=np.uint8),
                       y_train=np.arange(train, dtype=np.int64) % 10,
                       x_test=rng.integers(0, 256, (test, 32, 32, 3), dtype=np.uint8),
                       y_test=np.arange(test, dtype=np.int64) % 10, classes=CLASSES,
                       source=DataSource("image-folder", "/synthetic", "0" * 64))


def test_files_are_airbenchs_format_and_its_own_loader_reads_them(tmp_path):
    data = random_data()
    files = peer.write_airbench_files(data, tmp_path / peer.DATA_DIR, train_subset=40)
    assert (files["train_images"], files["test_images"]) == (40, 60) and files["bytes"] > 60 * 3072
    blob = torch.load(tmp_path / peer.DATA_DIR / "test.pt", weights_only=True)
    assert blob["images"].dtype == torch.uint8 and tuple(blob["images"].shape) == (60, 32, 32, 3)
    assert blob["labels"].dtype == torch.int64 and blob["classes"] == list(CLASSES)
    assert np.array_equal(blob["images"].numpy(), data.x_test) and np.array_equal(blob["labels"].numpy(), data.y_test)
    check = peer.check_airbench_files(tmp_path / peer.DATA_DIR, {"train": 40, "test": 60}, airbench)
    assert check["train"]["label_counts"] == [4] * 10, "the subset is class-balanced"
    assert check["test"]["shape"] == [60, 32, 32, 3] and check["test"]["read_by_airbench_cifarloader"]
    loader = airbench.CifarLoader(str(tmp_path / peer.DATA_DIR), train=False, gpu="cpu")
    expected = torch.from_numpy(data.x_test).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(loader.images.float(), expected, atol=1e-3), "pixels as HWC RGB, read back as NCHW"


@pytest.mark.parametrize("damage, message", [
    (lambda b: b.update(classes=sorted(CLASSES, reverse=True)), "torchvision's order"),
    (lambda b: b.update(images=b["images"].float()), "expected uint8"),
    (lambda b: b.update(images=b["images"].permute(0, 3, 1, 2).contiguous()), "(N, 32, 32, 3)"),
    (lambda b: b.update(labels=b["labels"].int()), "expected int64"),
    (lambda b: b.update(labels=b["labels"] + 1), "expected [0, 9]"),
])
def test_a_file_airbench_would_misread_is_named_with_the_fix(tmp_path, damage, message):
    dest = tmp_path / peer.DATA_DIR
    peer.write_airbench_files(random_data(), dest)
    blob = torch.load(dest / "train.pt", weights_only=True)
    damage(blob)
    torch.save(blob, dest / "train.pt")
    with pytest.raises(DataError, match="write_airbench_files") as err:
        peer.check_airbench_files(dest)
    assert message in str(err.value) and "train.pt" in str(err.value)


def test_a_missing_file_or_count_is_an_error_not_a_download(tmp_path):
    dest = tmp_path / peer.DATA_DIR
    peer.write_airbench_files(random_data(), dest)
    with pytest.raises(DataError, match="120 images, expected 50000"):
        peer.check_airbench_files(dest, {"train": 50_000, "test": None})
    (dest / "test.pt").unlink()
    with pytest.raises(DataError, match="airbench would download the original CIFAR-10"):
        peer.check_airbench_files(dest)


def test_the_packages_own_timer_is_read_from_its_printed_table(capsys):
    from airbench.utils import logging_columns_list, print_columns, print_training_details

    print_columns(logging_columns_list, is_head=True)
    print_training_details({"run": 0, "epoch": 9, "train_loss": 0.5, "val_acc": 0.93, "total_time_seconds": 3.5},
                           is_final_entry=False)
    print_training_details({"epoch": "eval", "tta_val_acc": 0.94, "total_time_seconds": 3.8312},
                           is_final_entry=True)
    assert peer.parse_airbench_seconds(capsys.readouterr().out) == pytest.approx(3.8312)
    assert peer.parse_airbench_seconds("no table here") is None


def test_summary_gives_mean_spread_and_the_drop_from_the_published_figure():
    runs = [{"label": f"run{i}", "status": "completed", "seed": i, "test_accuracy_percent": 90.0 + i, "test_accuracy_flip_tta_percent": 91.0,
             "test_accuracy_full_tta_percent": 91.0 + i, "airbench_seconds": 3.0, "wall_seconds": 4.0 + i}
            for i in range(3)] + [{"label": "run3", "status": "failed", "seed": 3, "error": "boom"}]
    s = peer.summarize(runs, main_job_wall_seconds=50.0)
    assert s["runs_completed"] == 3 and s["seeds"] == [0, 1, 2]
    assert s["test_accuracy_full_tta_percent_mean"] == pytest.approx(92.0)
    assert s["test_accuracy_full_tta_percent_std"] == pytest.approx(1.0)
    assert s["drop_points"] == pytest.approx(94.01 - 92.0)
    assert s["main_job_vs_airbench_wall_ratio"] == pytest.approx(10.0)
    assert peer.summarize([])["drop_points"] is None
    rows = peer.summary_rows({"runs": runs, "summary": s, "notes": [], "status": "partial"})
    assert [r["item"] for r in rows] == ["airbench94 run0", "airbench94 run1", "airbench94 run2", "airbench94 run3",
                                         "airbench94 mean of 3"]
    assert "d = 94.01 - full TTA = 2.01 points" in rows[-1]["note"]


def test_the_report_runs_the_part_after_the_main_job_and_on_a_cpu_checks_the_files_only(tmp_path):
    import test_gpu_report as tgr

    assert settings.PARTS[:2] == ("main_job", "peer") and runner.RUNNERS["peer"] is peer.run_part
    ctx, _ = tgr.make_ctx(tmp_path, parts=["peer"])
    ctx.data, ctx.device = random_data(), torch.device("cpu")
    assert runner.run_parts(ctx, {p: tgr.costing(0) for p in settings.PARTS} | {"peer": runner.RUNNERS["peer"]})
    part = ctx.report["parts"]["peer"]
    assert part["status"] == "completed" and part["package"]["version"] == "0.1.8", part
    smoke = settings.SMOKE
    assert part["files"]["train_images"] == smoke.train_subset and part["files"]["test_images"] == smoke.test_subset
    assert part["files_check"]["test"]["classes"] == list(CLASSES) and part["runs"] == []
    assert peer.CPU_NOTE in part["notes"]
    assert [r["item"] for r in report.summary_rows(ctx.report) if r["part"] == "peer"] == ["airbench94 files"]


class FakeAirbench:
    """train94/evaluate stand-ins (the CUDA path's bookkeeping without a GPU): run r scores 90 + r/10 + tta_level."""

    def __init__(self):
        self.calls = []
        self.utils = type("utils", (), {"CifarLoader": staticmethod(lambda *a, **k: ("loader", k.get("gpu")))})
        self.__file__ = "fake"

    def warmup94(self):
        self.calls.append("warmup")

    def train94(self, run=0, **kwargs):
        from airbench.utils import print_training_details

        assert Path(peer.DATA_DIR, "test.pt").is_file(), "train94 runs where it finds cifar10/"
        self.calls.append(f"train{run}")
        print_training_details({"epoch": "eval", "tta_val_acc": 0.9, "total_time_seconds": 3.5 + run},
                               is_final_entry=True)
        return run

    def evaluate(self, model, loader, tta_level=0):
        assert loader == ("loader", 0)
        return (90 + model / 10 + tta_level) / 100


@pytest.mark.parametrize("budget, runs", [(100.0, 5), (30.0, 0)])
def test_on_cuda_the_part_warms_up_then_runs_five_seeds_within_the_budget(tmp_path, monkeypatch, budget, runs):
    import test_gpu_report as tgr

    fake = FakeAirbench()
    monkeypatch.setattr(peer, "import_airbench", lambda: fake)
    monkeypatch.setattr(peer, "sync", lambda device: None)
    ctx, _ = tgr.make_ctx(tmp_path, budget_seconds=budget, parts=["main_job", "peer"])
    ctx.data, ctx.device = random_data(), torch.device("cuda")
    ctx.report["parts"]["main_job"]["runs"].append({"status": "completed", "wall_seconds": 40.0})
    cwd = Path.cwd()
    peer.run_part(ctx, ctx.report["parts"]["peer"])
    part = ctx.report["parts"]["peer"]
    assert Path.cwd() == cwd and not part["files_check"]["train"]["read_by_airbench_cifarloader"]
    assert fake.calls == (["warmup"] + [f"train{i}" for i in range(5)] if runs else [])
    assert [r["seed"] for r in part["runs"]] == list(range(runs))
    if not runs:  # 30 s hold the files (17 s estimated) but not the warm-up (35 s)
        assert [s["item"] for s in ctx.report["skipped"]] == ["warm-up"] and part["summary"]["runs_completed"] == 0
        return
    assert part["runs"][4]["airbench_seconds"] == 7.5 and part["runs"][4]["test_accuracy_full_tta_percent"] == 92.4
    s = part["summary"]
    assert s["test_accuracy_percent_mean"] == pytest.approx(90.2) and s["test_accuracy_flip_tta_percent_mean"] == 91.2
    assert s["drop_points"] == pytest.approx(94.01 - 92.2) and s["main_job_wall_seconds_mean"] == 40.0
    assert s["test_accuracy_full_tta_percent_std"] == pytest.approx(0.158, abs=1e-3)


def test_the_port_builds_airbenchs_network_in_fp32_with_logits_in_fp32():
    half, cuda = torch.nn.Module.half, torch.nn.Module.cuda
    net = port.cpu_make_net94(torch.bfloat16)
    assert (torch.nn.Module.half, torch.nn.Module.cuda) == (half, cuda), "the build's patches are undone"
    assert isinstance(net, port.AutocastSequential) and isinstance(net, torch.nn.Sequential)
    assert {p.dtype for p in net.parameters()} == {torch.float32} and {p.device.type for p in net.parameters()} == {"cpu"}
    out = net(torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last))
    assert out.shape == (2, 10) and out.dtype == torch.float32


def test_a_few_steps_of_train94_through_the_port_and_the_patches_are_undone(tmp_path):
    """4 steps of 32 random images, then the three TTA levels: mechanics only."""
    before = (torch.cuda.Event, torch.cuda.synchronize, airbench.utils.CifarLoader, torch.nn.Module.cuda)
    peer.write_airbench_files(random_data(train=128, test=50), tmp_path / peer.DATA_DIR)
    rec = port.run_cpu(tmp_path, seed=0, epochs=1, batch_size=32)
    assert rec["status"] == "completed" and rec["seed"] == 0
    for key in ("test_accuracy_percent", "test_accuracy_flip_tta_percent", "test_accuracy_full_tta_percent"):
        assert 0.0 <= rec[key] <= 100.0 and (rec[key] * 50 / 100) == pytest.approx(round(rec[key] * 50 / 100))
    assert rec["airbench_seconds"] is not None and 0 < rec["airbench_seconds"] <= rec["wall_seconds"] + 1
    assert any("eval" in line for line in rec["printed"])
    assert rec["precision"]["weights"] == "float32"
    assert rec["precision"]["autocast"] == ("bfloat16" if port.cpu_has_bf16() else None)
    assert (torch.cuda.Event, torch.cuda.synchronize, airbench.utils.CifarLoader, torch.nn.Module.cuda) == before
    assert Path.cwd() != tmp_path, "the working directory is restored"


def test_the_results_readme_states_the_copy_the_figures_and_the_ports_differences(tmp_path):
    result = {"seed": 0, "epochs": 9.9, "batch_size": 1024, "started_at": "a", "finished_at": "b",
              "data": {"train_images": 50_000, "test_images": 10_000}, "test_accuracy_percent": 89.7,
              "test_accuracy_flip_tta_percent": 90.42, "test_accuracy_full_tta_percent": 90.77,
              "drop_points_vs_published": 94.01 - 90.77, "airbench_seconds": 4000.0, "wall_seconds": 4300.0,
              "precision": {"autocast": None}, "port_differences": port.PORT_DIFFERENCES, "command": "python x.py",
              "environment": {"cpu": "CPU: AMD EPYC, 2 threads", "torch_version": "2.14.1", "airbench_version": "0.1.8",
                              "niceness": 10}}
    (tmp_path / "result.json").write_text(__import__("json").dumps(result))
    assert port.main(["--readme-from", str(tmp_path / "result.json")]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "| this run | 89.70 | 90.42 | 90.77 |" in text and "3.24 points lower" in text
    assert "JPEG copy" in text and "not on the original CIFAR-10" in text and "at nice 10" in text
    assert "no native bf16" in text and all(d in text for d in port.PORT_DIFFERENCES)


@pytest.mark.data
def test_the_files_from_the_jpeg_copy_hold_every_image_and_label(cifar, tmp_path):
    dest = tmp_path / peer.DATA_DIR
    peer.write_airbench_files(cifar, dest)
    check = peer.check_airbench_files(dest, {"train": 50_000, "test": 10_000})
    assert check["train"]["label_counts"] == [5000] * 10 and check["test"]["label_counts"] == [1000] * 10
    blob = torch.load(dest / "test.pt", weights_only=True)
    assert np.array_equal(blob["images"].numpy(), cifar.x_test) and np.array_equal(blob["labels"].numpy(), cifar.y_test)
