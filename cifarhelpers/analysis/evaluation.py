"""Evaluate a finished run folder on the test images it used: ``evaluate_run(run_dir)``.

It reloads the run's model (``model.pt``, ``weights_only=True``), draws the same class-balanced test
subset the run tested on (the run's ``test_subset`` and ``seed`` through
:func:`cifarhelpers.data.subsets.balanced_subset`), normalizes with the run's own mean and std (from its
``metrics.json``), and reports test accuracy, per-class accuracy, the confusion matrix and, with
test-time augmentation (TTA), the accuracy when each image's softmax is averaged with its horizontal
flip's (:data:`cifarhelpers.training.engine.FLIP_TTA_METHOD`, the same computation every training run records as
``final_test_accuracy_flip_tta``). Everything goes into ``eval.json`` in the run folder, written
atomically, with units.

The command is ``cifar-eval`` (:mod:`cifarhelpers.cli.eval`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cifarhelpers.data import CIFAR10Data, balanced_subset, load_cifar10, test_transform
from cifarhelpers.errors import CheckpointError, ConfigError
from cifarhelpers.files import write_json
from cifarhelpers.training import (
    FLIP_TTA_METHOD,
    METRICS_FILE,
    AlbumentationsLoader,
    Precision,
    device_name,
    load_run_model,
    predict_flip_tta,
    resolve_device,
    select_precision,
)

from .predictions import Predictions, confusion_matrix, per_class_metrics, predict_images

EVAL_FILE = "eval.json"
TTA_METHOD = FLIP_TTA_METHOD  # eval.json's "tta"/"method": the one definition, in cifarhelpers.training.engine


def predict_with_flip_tta(model: nn.Module, images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                          std: Sequence[float], *, device: torch.device | str, batch_size: int = 500,
                          precision: Precision | None = None, channels_last: bool = False,
                          progress: bool = True) -> Predictions:
    """Horizontal-flip test-time augmentation: the mean of the softmax probabilities of each image
    and of its mirror image (left-right flip), then arg-max (:func:`cifarhelpers.training.engine.predict_flip_tta`,
    batched on ``device``; common practice in David Page's cifar10-fast and Keller Jordan's airbench).

    Args:
        model: the trained model, on ``device``.
        images: (N, 32, 32, 3) uint8 (HWC); labels: (N,) int.
        mean, std: the training statistics on the [0, 1] scale.
        device: where the model is.
        batch_size: images per forward pass (each batch is passed twice: as is and mirrored).
        precision: autocast of the forward passes (None: fp32), e.g. the run's.
        channels_last: channels-last inputs, as the run evaluated them.
        progress: a tqdm bar over the batches.

    Returns:
        :class:`~cifarhelpers.analysis.predictions.Predictions` of the averaged probabilities (``images`` the
        unflipped ones; losses ``-log`` of the averaged probability of the true class, nats).

    Raises:
        ValueError: images not (N, H, W, 3) uint8, or len(labels) != N.
    """
    images = np.asarray(images)
    loader = AlbumentationsLoader(images, labels, test_transform(mean, std), batch_size=batch_size, train=False)
    probabilities, _ = predict_flip_tta(model, loader, device=torch.device(device), precision=precision,
                                        channels_last=channels_last, progress=progress)
    return Predictions.from_probabilities(images, labels, probabilities.cpu().numpy())


def _check_run_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Raise unless ``metrics`` (the run's ``metrics.json``) holds the config and normalization to evaluate with."""
    try:
        metrics["config"]["model"], metrics["data"]["mean"], metrics["data"]["std"]  # noqa: B018 - presence check
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{run_dir / METRICS_FILE} lacks the run's config or normalization ({err}): it was not "
                              "written by this version of cifarhelpers") from err


def evaluate_model(model: nn.Module, metrics: dict[str, Any], data: CIFAR10Data, *, device: torch.device | str,
                   batch_size: int = 500, tta: bool = True, progress: bool = True) -> tuple[dict[str, Any], Predictions]:
    """Evaluate a run's trained ``model`` on the test images the run used (what :func:`evaluate_run`
    does once the model is loaded; notebook 05 calls it with the model it already holds).

    The test images are the run's class-balanced draw (its ``test_subset`` and ``seed``), normalized
    with the run's mean and std; the forward pass uses the run's precision policy on ``device`` (fp32
    on a CPU; bf16/fp16 autocast on a GPU when the run had ``amp``) and its channels-last setting, so
    on the device type it trained on the plain accuracy equals the run's ``final_test_accuracy`` and
    the TTA accuracy its ``final_test_accuracy_flip_tta`` (same computation, :mod:`cifarhelpers.training.engine`).

    Args:
        model: the trained model, on ``device``.
        metrics: the run's ``metrics.json`` content.
        data: the CIFAR-10 copy (a warning when it is not the run's: same draw, other pixels).
        device, batch_size, tta, progress: as :func:`evaluate_run`.

    Returns:
        ``(result, predictions)``: the content of ``eval.json`` (see :func:`evaluate_run`) and the
        plain (no TTA) :class:`~cifarhelpers.analysis.predictions.Predictions`, in the order of the test subset.
    """
    cfg = metrics["config"]
    device = torch.device(device)
    same_copy = data.source.sha256 == metrics["data"].get("sha256")
    if not same_copy:
        warnings.warn(f"the data copy differs from the run's (sha256 {data.source.sha256[:12]}... vs "
                      f"{str(metrics['data'].get('sha256'))[:12]}...): the test images are drawn the same way, but "
                      "their pixels differ, so the accuracy will not match the run's", stacklevel=2)
    images, labels = balanced_subset(data.x_test, data.y_test, cfg.get("test_subset"), cfg["seed"], name="test_subset")
    precision = select_precision(device, cfg.get("amp", True))
    common = dict(device=device, batch_size=batch_size, precision=precision,
                  channels_last=bool(cfg.get("channels_last", False)), progress=progress)
    mean, std = metrics["data"]["mean"], metrics["data"]["std"]
    plain = predict_images(model, images, labels, mean, std, **common)
    classes = list(data.classes)
    result: dict[str, Any] = {
        "model": cfg["model"], "test_images": int(len(labels)), "test_subset": cfg.get("test_subset"),
        "seed": cfg["seed"], "accuracy": plain.accuracy, "mean_loss": plain.mean_loss,
        "run_final_test_accuracy": metrics.get("final_test_accuracy"),
        "classes": classes, "per_class": per_class_metrics(plain.labels, plain.predicted, classes),
        "confusion_matrix": confusion_matrix(plain.labels, plain.predicted, len(classes)).tolist(),
        "tta": None,
        "data": {**data.source.to_dict(), "same_copy_as_run": same_copy},
        "device": device_name(device), "precision": precision.name,
        "units": {"accuracy": "fraction of test images correct, in [0, 1]", "mean_loss": "cross-entropy, nats per image",
                  "confusion_matrix": "images; row = true class, column = predicted class"},
    }
    if tta:
        flipped = predict_with_flip_tta(model, images, labels, mean, std, **common)
        result["tta"] = {"method": TTA_METHOD, "accuracy": flipped.accuracy, "mean_loss": flipped.mean_loss,
                         "accuracy_change": flipped.accuracy - plain.accuracy,
                         "run_final_test_accuracy_flip_tta": metrics.get("final_test_accuracy_flip_tta"),
                         "confusion_matrix": confusion_matrix(flipped.labels, flipped.predicted, len(classes)).tolist()}
    return result, plain


def evaluate_run(run_dir: str | os.PathLike, *, device: str = "auto", data_root: str | None = None,
                 data: CIFAR10Data | None = None, batch_size: int = 500, tta: bool = True,
                 progress: bool = True, write: bool = True) -> dict[str, Any]:
    """Evaluate the final weights of a run on the test images it used, and write ``eval.json``.

    Loads ``model.pt`` (``weights_only=True``) into the model named in ``metrics.json``, then
    :func:`evaluate_model`: on the device type the run trained on, the plain accuracy equals the
    run's ``final_test_accuracy``.

    Args:
        run_dir: a finished run folder (``metrics.json`` and ``model.pt``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        data_root: the CIFAR-10 copy; None: the run's ``data_root``, else ``$CIFAR10_ROOT``, else ``./data``.
        data: an already loaded copy (overrides ``data_root``).
        batch_size: images per forward pass, >= 1.
        tta: also evaluate with horizontal-flip test-time augmentation (:func:`predict_with_flip_tta`).
        progress: tqdm bars.
        write: write ``eval.json`` into ``run_dir`` (atomically).

    Returns:
        The content of ``eval.json``: ``accuracy`` (fraction in [0, 1]), ``mean_loss`` (nats),
        ``run_final_test_accuracy``, ``per_class`` (class, accuracy, precision, recall, f1, support),
        ``confusion_matrix`` (row = true class, counts), ``tta`` (method, accuracy, accuracy_change,
        mean_loss, the run's own ``run_final_test_accuracy_flip_tta``, confusion matrix; None without
        TTA), test subset and seed, the data source and whether it is the run's copy, device, precision,
        ``run_dir`` (the folder's name) and ``units``.

    Raises:
        ConfigError: ``run_dir`` is not a folder, ``batch_size`` < 1, or the device is unavailable.
        CheckpointError: the folder has no ``metrics.json`` or no ``model.pt`` (the message says
            to finish or resume the run), or the weights do not load.
        DataError / DataNotFoundError: the data cannot be read.
        RunWriteError: ``eval.json`` could not be written.
    """
    run_dir = Path(run_dir)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} is invalid: it must be an integer >= 1")
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {str(run_dir)!r} does not exist or is not a folder: pass a folder written "
                          "by cifar-train or notebook 04 (it holds metrics.json and model.pt)")
    torch_device = resolve_device(device)
    model, metrics = load_run_model(run_dir, torch_device)
    _check_run_metrics(run_dir, metrics)
    if data is None:
        data = load_cifar10(data_root or metrics["config"].get("data_root"), progress=progress)
    result, _ = evaluate_model(model, metrics, data, device=torch_device, batch_size=batch_size, tta=tta,
                               progress=progress)
    result = {"run_dir": run_dir.name, **result}
    if write:
        write_json(run_dir / EVAL_FILE, result)
    return result


def format_evaluation(result: dict[str, Any], per_class: bool = True) -> str:
    """``evaluate_run``'s result as a few lines of text: accuracy beside the TTA accuracy, then
    (with ``per_class``) the accuracy of each class, in percent."""
    lines = [f"{result['model']} on {result['test_images']:,} test images: accuracy {100 * result['accuracy']:.2f}%"
             + (f" (the run measured {100 * result['run_final_test_accuracy']:.2f}%)"
                if result.get("run_final_test_accuracy") is not None else "")]
    if result.get("tta"):
        tta = result["tta"]
        lines.append(f"with horizontal-flip TTA: {100 * tta['accuracy']:.2f}% ({100 * tta['accuracy_change']:+.2f} "
                     "points)")
    if per_class:
        lines.append(f"{'class':<12}{'accuracy':>9}")
        lines += [f"{row['class']:<12}{100 * row['accuracy']:>8.1f}%" for row in result["per_class"]]
    return "\n".join(lines)
