"""cifarhelpers.analysis.evaluation: horizontal-flip TTA on models whose flip behaviour is known, evaluate_run on a
tiny real run (its accuracy is the run's), and cifar-eval's refusals and exit codes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from cifarhelpers.analysis import EVAL_FILE, evaluate_run, predict_images, predict_with_flip_tta
from cifarhelpers.cli.eval import main
from cifarhelpers.errors import CheckpointError, ConfigError

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class LeftRight(nn.Module):
    """Class 0's logit is relu(k * d), with d = mean of channel 0 over the left half minus over the right
    half (normalized units); class 1's is a constant 0.5; the others -1e4. Mirroring an image negates d."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k
        self.dummy = nn.Parameter(torch.zeros(1))  # a parameter, so the model has a device

    def forward(self, x):
        d = x[:, 0, :, :16].mean(dim=(1, 2)) - x[:, 0, :, 16:].mean(dim=(1, 2))
        logits = torch.full((len(x), 10), -1e4)
        logits[:, 0] = torch.relu(self.k * d) + self.dummy
        logits[:, 1] = 0.5
        return logits


class FlipInvariant(nn.Module):
    """Global average pooling, then a linear layer: mirroring changes nothing."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(3, 10)

    def forward(self, x):
        return self.head(x.mean(dim=(2, 3)))


def half_images(left, right):
    """uint8 images whose every channel is ``left[i]`` on the left half and ``right[i]`` on the right."""
    images = np.zeros((len(left), 32, 32, 3), np.uint8)
    images[:, :, :16] = np.asarray(left, np.uint8)[:, None, None, None]
    images[:, :, 16:] = np.asarray(right, np.uint8)[:, None, None, None]
    return images


def test_flip_tta_averages_the_softmax_of_each_image_and_its_mirror():
    left, right = [200, 160, 140, 100, 60], [100, 100, 100, 100, 100]
    images, labels = half_images(left, right), np.zeros(5, np.int64)  # class 0 is right where d > 0
    k = 1.0
    d = (np.asarray(left) - np.asarray(right)) / 255 / STD[0]
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731 - p(class 0) with two live logits
    p_plain = sigmoid(np.maximum(k * d, 0) - 0.5)
    p_tta = (p_plain + sigmoid(np.maximum(-k * d, 0) - 0.5)) / 2
    model = LeftRight(k)
    plain = predict_images(model, images, labels, MEAN, STD, device="cpu", progress=False)
    tta = predict_with_flip_tta(model, images, labels, MEAN, STD, device="cpu", progress=False)
    assert plain.probabilities[:, 0] == pytest.approx(p_plain, abs=1e-5)
    assert tta.probabilities[:, 0] == pytest.approx(p_tta, abs=1e-5)
    assert tta.accuracy == pytest.approx(float(np.mean(p_tta > 0.5)))
    assert plain.accuracy == pytest.approx(float(np.mean(p_plain > 0.5)))
    assert tta.accuracy != plain.accuracy, "the mirror outvotes some images: TTA changes the accuracy here"
    assert tta.losses == pytest.approx(-np.log(p_tta), abs=1e-4)
    assert np.array_equal(tta.images, images), "the unflipped images are kept for display"
    blocked = predict_with_flip_tta(model, images, labels, MEAN, STD, device="cpu", batch_size=2, channels_last=True,
                                    progress=False)
    assert np.allclose(blocked.probabilities, tta.probabilities, atol=1e-6), "batching and memory format change nothing"


def test_flip_tta_changes_nothing_for_a_flip_invariant_model():
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(8) % 10
    model = FlipInvariant()
    plain = predict_images(model, images, labels, MEAN, STD, device="cpu", progress=False)
    tta = predict_with_flip_tta(model, images, labels, MEAN, STD, device="cpu", progress=False)
    assert np.allclose(plain.probabilities, tta.probabilities, atol=1e-6)
    assert tta.accuracy == plain.accuracy


# -- evaluate_run on a real run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(small_data, tmp_path_factory, one_thread):
    from cifarhelpers.training import TrainConfig, fit

    cfg = TrainConfig(model="dilated_net", epochs=1, batch_size=32, train_subset=160, test_subset=50, seed=3,
                      device="cpu", output_dir=str(tmp_path_factory.mktemp("runs")))
    return fit(cfg, data=small_data, progress=False)


@pytest.mark.data
def test_evaluate_run_reproduces_the_runs_test_accuracy_and_writes_eval_json(finished_run, small_data):
    result = evaluate_run(finished_run.run_dir, device="cpu", data=small_data, progress=False)
    assert result["accuracy"] == finished_run.final_test_accuracy, "the same model on the same 50 test images"
    assert result["run_final_test_accuracy"] == finished_run.final_test_accuracy
    assert result["test_images"] == 50 and result["test_subset"] == 50 and result["seed"] == 3
    assert result["mean_loss"] == pytest.approx(finished_run.history[-1]["test_loss"], rel=1e-4)
    matrix = np.asarray(result["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 50 and matrix.sum(axis=1).tolist() == [5] * 10
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 50)
    assert [row["accuracy"] for row in result["per_class"]] == pytest.approx((np.diag(matrix) / 5).tolist())
    assert 0.0 <= result["tta"]["accuracy"] <= 1.0 and result["tta"]["accuracy_change"] == pytest.approx(
        result["tta"]["accuracy"] - result["accuracy"])
    # the run measured flip TTA after its last epoch with the same computation: the same figure
    assert result["tta"]["accuracy"] == finished_run.final_test_accuracy_flip_tta
    assert result["tta"]["run_final_test_accuracy_flip_tta"] == finished_run.metrics["final_test_accuracy_flip_tta"]
    assert result["data"]["same_copy_as_run"] is True and result["units"]["accuracy"].startswith("fraction")
    written = json.loads((finished_run.run_dir / EVAL_FILE).read_text())
    assert written == json.loads(json.dumps(result)), "eval.json holds exactly what was returned"
    assert not list(finished_run.run_dir.glob(".*.tmp")), "written atomically: no temp file left"


@pytest.mark.data
def test_a_device_loader_runs_flip_tta_is_the_one_cifar_eval_measures(small_data, tmp_path, one_thread):
    """The device loader's test set lives on the device, already normalized: the run's flip TTA there
    gives the figure that evaluation through the albumentations test pipeline gives."""
    from cifarhelpers.training import TrainConfig, fit

    cfg = TrainConfig(model="dilated_net", epochs=1, batch_size=32, train_subset=160, test_subset=50, seed=4,
                      device="cpu", loader="device", output_dir=str(tmp_path))
    run = fit(cfg, data=small_data, progress=False)
    assert run.metrics["loader"] == "device" and 0.0 <= run.final_test_accuracy_flip_tta <= 1.0
    result = evaluate_run(run.run_dir, device="cpu", data=small_data, progress=False, write=False)
    assert result["accuracy"] == run.final_test_accuracy
    assert result["tta"]["accuracy"] == run.final_test_accuracy_flip_tta == run.history[-1]["test_accuracy_flip_tta"]


@pytest.mark.data
def test_cifar_eval_prints_plain_and_tta_accuracy(finished_run, small_root, capsys):
    (finished_run.run_dir / EVAL_FILE).unlink(missing_ok=True)
    status = main([str(finished_run.run_dir), "--device", "cpu", "--data-root", str(small_root), "--quiet",
                   "--batch-size", "16"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"accuracy {100 * finished_run.final_test_accuracy:.2f}%" in out and "horizontal-flip TTA" in out
    assert json.loads((finished_run.run_dir / EVAL_FILE).read_text())["tta"]["method"].startswith("mean of the softmax")
    assert main([str(finished_run.run_dir), "--device", "cpu", "--data-root", str(small_root), "--quiet",
                 "--no-tta"]) == 0
    assert json.loads((finished_run.run_dir / EVAL_FILE).read_text())["tta"] is None


@pytest.mark.data
def test_cifar_eval_refuses_an_unfinished_run_naming_the_folder_and_the_fix(finished_run, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(finished_run.run_dir / "metrics.json", unfinished / "metrics.json")
    assert main([str(unfinished), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"run folder {str(unfinished)!r} has no model.pt" in err and "cifar-train --resume" in err
    with pytest.raises(CheckpointError, match="has no model.pt"):
        evaluate_run(unfinished, device="cpu")
    assert not (unfinished / EVAL_FILE).exists()


def test_cifar_eval_refuses_a_missing_folder_and_a_folder_without_metrics(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "does not exist or is not a folder" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "has no metrics.json" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="batch_size=0"):
        evaluate_run(tmp_path, batch_size=0)


def test_cifar_eval_refuses_a_folder_with_metrics_but_no_weights_before_reading_data(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text(json.dumps({"config": {"model": "dilated_net"}, "status": "interrupted"}))
    assert main([str(tmp_path), "--data-root", str(tmp_path / "no-data-here")]) == 2
    err = capsys.readouterr().err
    assert "has no model.pt" in err and "Finish the run first" in err and "DataNotFound" not in err
