"""Interpreting a trained classifier's predictions, after fastai's ``ClassificationInterpretation``:
predictions with per-image losses, the mistakes with the highest loss (``top_losses``), the most
confused class pairs (``most_confused``), the confusion matrix in counts and normalized by true class,
and scikit-learn's per-class classification report.

Counts and reports come from scikit-learn (``confusion_matrix``, ``classification_report``,
``precision_recall_fscore_support``); ``top_losses`` and ``most_confused`` follow fastai
(https://docs.fast.ai/interpret.html). GradCAM is in :mod:`cifarhelpers.analysis.gradcam`; a run's
evaluation with test-time augmentation in :mod:`cifarhelpers.analysis.evaluation`.

Example::

    preds = predict_images(model, data.x_test, data.y_test, mean, std, device=device)
    most_confused(confusion_matrix(preds.labels, preds.predicted), data.classes, min_count=5)
    worst = top_losses(preds, k=16)                    # mistakes, highest loss first
    print(classification_report(preds.labels, preds.predicted, data.classes))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cifarhelpers.data import test_transform
from cifarhelpers.training import AlbumentationsLoader, Precision, predict


@dataclass
class Predictions:
    """A model's outputs on a set of images.

    Attributes:
        images: (N, 32, 32, 3) uint8, the images evaluated (for display).
        labels: (N,) int64 true classes.
        probabilities: (N, C) float32 class probabilities (softmax outputs, or their mean under
            test-time augmentation).
        predicted: (N,) int64 arg-max classes.
        confidence: (N,) float32 probability of the predicted class, in [0, 1].
        losses: (N,) float32 cross-entropy of each image, ``-log p(true class)``, in nats (>= 0).
    """

    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    losses: np.ndarray

    @classmethod
    def from_probabilities(cls, images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                           log_probabilities: np.ndarray | None = None) -> Predictions:
        """Predictions from (N, C) probabilities; ``log_probabilities`` (e.g. ``log_softmax`` of the
        logits) give exact losses where a probability underflows to 0 (else ``log`` of ``probabilities``,
        clipped at the smallest float32).

        Raises:
            ValueError: ``probabilities`` is not (N, C) with N = len(labels).
        """
        labels = np.asarray(labels, dtype=np.int64)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.ndim != 2 or len(probabilities) != len(labels):
            raise ValueError(f"probabilities must be (N, C) with N = {len(labels)} labels, got {probabilities.shape}")
        if log_probabilities is None:
            log_probabilities = np.log(np.maximum(probabilities, np.finfo(np.float32).tiny))
        losses = -np.asarray(log_probabilities, np.float64)[np.arange(len(labels)), labels]
        return cls(images=np.asarray(images), labels=labels, probabilities=probabilities,
                   predicted=probabilities.argmax(1).astype(np.int64),
                   confidence=probabilities.max(1).astype(np.float32), losses=losses.astype(np.float32))

    @property
    def accuracy(self) -> float:
        """Fraction of images classified correctly, in [0, 1]."""
        return float((self.predicted == self.labels).mean())

    @property
    def mean_loss(self) -> float:
        """Mean cross-entropy per image, in nats."""
        return float(self.losses.mean())


def predict_images(model: nn.Module, images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                   std: Sequence[float], *, device: torch.device | str, batch_size: int = 500,
                   precision: Precision | None = None, channels_last: bool = False,
                   progress: bool = True) -> Predictions:
    """Run ``model`` (eval mode, no augmentation) on uint8 images normalized with ``mean``/``std``.

    Args:
        images: (N, 32, 32, 3) uint8; labels: (N,) int.
        mean, std: the training statistics on the [0, 1] scale.
        device: where the model is.
        batch_size: images per forward pass.
        precision: autocast of the forward pass (None: fp32), e.g. the run's, to reproduce its figures.
        channels_last: channels-last inputs, as the run evaluated them.
        progress: a tqdm bar over the batches.

    Returns:
        :class:`Predictions`, in the order of ``images``, with softmax probabilities and losses
        from ``log_softmax`` of the logits.

    Raises:
        ValueError: images not (N, H, W, 3) uint8, or len(labels) != N.
    """
    loader = AlbumentationsLoader(images, labels, test_transform(mean, std), batch_size=batch_size, train=False)
    logits, _ = predict(model, loader, device=torch.device(device), precision=precision,
                        channels_last=channels_last, progress=progress)
    log_probabilities = torch.log_softmax(logits.double(), dim=1)
    return Predictions.from_probabilities(images, labels, log_probabilities.exp().float().numpy(),
                                          log_probabilities.numpy())


def top_losses(preds: Predictions, k: int | None = None, *, mistakes_only: bool = True) -> np.ndarray:
    """Indices of the images with the highest loss, highest first (fastai's ``top_losses``).

    Args:
        preds: the predictions.
        k: at most this many (None: all).
        mistakes_only: only misclassified images (the default: the mistakes the model is most wrong
            about); False ranks every image.

    Returns:
        (K,) int64 indices into ``preds``; ties keep the images' order.
    """
    pool = np.flatnonzero(preds.predicted != preds.labels) if mistakes_only else np.arange(len(preds.labels))
    order = pool[np.argsort(-preds.losses[pool], kind="stable")]
    return order if k is None else order[:k]


def most_confident_mistakes(preds: Predictions, limit: int | None = None) -> np.ndarray:
    """Indices of misclassified images, the most confident (in the wrong class) first.

    Returns:
        (K,) int64 indices into ``preds`` (K = number of mistakes, at most ``limit``); ties keep
        the images' order.
    """
    wrong = np.flatnonzero(preds.predicted != preds.labels)
    order = wrong[np.argsort(-preds.confidence[wrong], kind="stable")]
    return order if limit is None else order[:limit]


def correct_examples(preds: Predictions, k: int, *, one_per_class: bool = True) -> np.ndarray:
    """Indices of ``k`` correctly classified images, the most confident first; with
    ``one_per_class`` at most one per class (so a few of them cover several classes)."""
    right = np.flatnonzero(preds.predicted == preds.labels)
    order = right[np.argsort(-preds.confidence[right], kind="stable")]
    if one_per_class:
        _, first = np.unique(preds.labels[order], return_index=True)
        order = order[np.sort(first)]
    return order[:k]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = 10,
                     normalize: bool = False) -> np.ndarray:
    """The (C, C) confusion matrix: row = true class, column = predicted class (scikit-learn's).

    Args:
        labels, predicted: (N,) class indices in [0, num_classes).
        num_classes: C; classes absent from both still get a row and a column.
        normalize: False: int64 counts summing to N. True: float64 fractions of each true class
            (scikit-learn's ``normalize="true"``): every row with images sums to 1 and its diagonal is
            the class's recall; a class without images gets a row of zeros.

    Raises:
        ValueError: ``labels`` and ``predicted`` differ in length.
    """
    if len(labels) != len(predicted):
        raise ValueError(f"{len(labels)} labels but {len(predicted)} predictions: they must match one to one")
    from sklearn.metrics import confusion_matrix as sk_confusion

    matrix = sk_confusion(labels, predicted, labels=list(range(num_classes)), normalize="true" if normalize else None)
    return matrix.astype(np.float64) if normalize else matrix.astype(np.int64)


def most_confused(matrix: np.ndarray, classes: Sequence[str], min_count: int = 1) -> list[tuple[str, str, int]]:
    """The class pairs the model confuses most (fastai's ``most_confused``).

    Args:
        matrix: (C, C) counts from :func:`confusion_matrix` (row = true class).
        classes: C class names.
        min_count: leave out pairs confused fewer times than this (>= 1).

    Returns:
        ``(true class, predicted class, count)`` for every off-diagonal cell with ``count >= min_count``,
        the largest count first (ties in row-major order).

    Raises:
        ValueError: ``matrix`` is not (C, C) for C = len(classes), or ``min_count`` < 1.
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(classes), len(classes)):
        raise ValueError(f"matrix must be ({len(classes)}, {len(classes)}) for {len(classes)} classes, "
                         f"got {matrix.shape}")
    if min_count < 1:
        raise ValueError(f"min_count={min_count} must be >= 1")
    off = [(int(matrix[t, p]), t, p) for t in range(len(classes)) for p in range(len(classes))
           if t != p and matrix[t, p] >= min_count]
    off.sort(key=lambda cell: -cell[0])  # stable: ties stay in row-major order
    return [(classes[t], classes[p], count) for count, t, p in off]


def classification_report(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str], *,
                          as_dict: bool = False, digits: int = 3) -> str | dict:
    """scikit-learn's ``classification_report``: precision, recall (= per-class accuracy), F1 and
    support (images) per class, then accuracy and the macro and weighted averages; rates are fractions
    in [0, 1]. A class never predicted gets precision 0 (no warning).

    Returns:
        The text table, or with ``as_dict`` scikit-learn's dict (class name -> {"precision", "recall",
        "f1-score", "support"}, plus "accuracy", "macro avg", "weighted avg").
    """
    from sklearn.metrics import classification_report as sk_report

    return sk_report(labels, predicted, labels=list(range(len(classes))), target_names=list(classes),
                     zero_division=0, digits=digits, output_dict=as_dict)


def per_class_metrics(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """Per class: accuracy (= recall: correct / images of the class), precision, recall, F1 and
    support (images of the class), all rates as fractions in [0, 1]; scikit-learn's
    ``precision_recall_fscore_support`` (a class never predicted gets precision 0)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=list(range(len(classes))), zero_division=0)
    return [{"class": name, "accuracy": float(r), "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)} for name, p, r, f, s in zip(classes, precision, recall, f1, support)]


def mistake_titles(preds: Predictions, indices: Sequence[int], classes: Sequence[str], *,
                   loss: bool = False) -> list[str]:
    """One caption per image: ``"true cat\\npred dog 87%"`` (confidence of the predicted class, in
    percent), with ``loss`` a third line ``"loss 2.31"`` (cross-entropy, nats)."""
    return [f"true {classes[preds.labels[i]]}\npred {classes[preds.predicted[i]]} {100 * preds.confidence[i]:.0f}%"
            + (f"\nloss {preds.losses[i]:.2f}" if loss else "") for i in indices]


def gradcam_captions(preds: Predictions, indices: Sequence[int], classes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Captions of the true-class and the predicted-class GradCAM maps of the images at ``indices``:
    each class with the probability the model gave it, e.g. ``(["cat 4%"], ["dog 87%"])``."""
    true = [f"{classes[preds.labels[i]]} {100 * preds.probabilities[i, preds.labels[i]]:.0f}%" for i in indices]
    predicted = [f"{classes[preds.predicted[i]]} {100 * preds.confidence[i]:.0f}%" for i in indices]
    return true, predicted


def top_losses_table(preds: Predictions, indices: Sequence[int], classes: Sequence[str]) -> str:
    """The images at ``indices`` (e.g. :func:`top_losses`) as aligned text: rank, index, loss (nats),
    true class with its probability, predicted class with its probability (percent)."""
    lines = [f"{'rank':>4} {'image':>6} {'loss':>6}  {'true class':<12}{'p(true)':>8}  {'predicted':<12}{'p(pred)':>8}"]
    for rank, i in enumerate(indices, 1):
        t, p = int(preds.labels[i]), int(preds.predicted[i])
        lines.append(f"{rank:>4} {int(i):>6} {preds.losses[i]:>6.2f}  {classes[t]:<12}"
                     f"{100 * preds.probabilities[i, t]:>7.1f}%  {classes[p]:<12}{100 * preds.confidence[i]:>7.1f}%")
    return "\n".join(lines)


def summarize(preds: Predictions, classes: Sequence[str], min_count: int = 1) -> dict:
    """JSON-ready summary of ``preds``: images, accuracy (fraction), mean loss (nats), the (C, C)
    confusion matrix in counts and normalized by true class (nested lists, row = true class), the
    most confused pairs (count >= ``min_count``) and :func:`per_class_metrics`."""
    matrix = confusion_matrix(preds.labels, preds.predicted, len(classes))
    return {"test_images": int(len(preds.labels)), "accuracy": preds.accuracy, "mean_loss": preds.mean_loss,
            "classes": list(classes), "confusion_matrix": matrix.tolist(),
            "confusion_matrix_normalized": confusion_matrix(preds.labels, preds.predicted, len(classes),
                                                            normalize=True).round(6).tolist(),
            "most_confused": [list(pair) for pair in most_confused(matrix, classes, min_count)],
            "per_class": per_class_metrics(preds.labels, preds.predicted, classes),
            "units": {"accuracy": "fraction in [0, 1]", "mean_loss": "cross-entropy, nats per image",
                      "confusion_matrix_normalized": "fraction of the true class (row)"}}
