"""cifarhelpers.analysis.predictions: confusion matrices, most confused pairs, top losses, the classification report
and per-class metrics against hand-computed values; predictions and their losses on a small real
model. No data needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cifarhelpers.analysis import (
    Predictions,
    classification_report,
    confusion_matrix,
    correct_examples,
    mistake_titles,
    most_confident_mistakes,
    most_confused,
    per_class_metrics,
    predict_images,
    summarize,
    top_losses,
    top_losses_table,
)
from cifarhelpers.models import build_model

# Six images of three classes, worked by hand:
#   image      0  1  2  3  4  5
#   true       0  0  1  2  2  2
#   predicted  0  1  1  2  0  2
LABELS = np.array([0, 0, 1, 2, 2, 2])
PREDICTED = np.array([0, 1, 1, 2, 0, 2])
MEAN, STD = (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)


def predictions(labels, predicted, confidence, true_probability=None) -> Predictions:
    """Predictions whose predicted class has ``confidence`` and whose true class (when another one)
    has ``true_probability`` (default: what is left, spread evenly), so losses are -log of it."""
    n = len(labels)
    probabilities = np.zeros((n, 10), np.float32)
    for i in range(n):
        rest = 1.0 - confidence[i]
        if labels[i] != predicted[i]:
            p_true = rest if true_probability is None else true_probability[i]
            probabilities[i, labels[i]] = p_true
            rest -= p_true
        others = [c for c in range(10) if c not in (labels[i], predicted[i])]
        probabilities[i, others] = rest / len(others)
        probabilities[i, predicted[i]] = confidence[i]
    return Predictions.from_probabilities(np.zeros((n, 32, 32, 3), np.uint8), labels, probabilities)


# -- confusion matrices ---------------------------------------------------------------------

def test_confusion_matrix_rows_are_true_classes_and_columns_predictions():
    matrix = confusion_matrix(LABELS, PREDICTED, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0],
                               [0, 1, 0],
                               [1, 0, 2]]
    assert matrix.dtype == np.int64 and matrix.sum() == len(LABELS)


def test_normalized_confusion_rows_sum_to_one_and_hold_fractions_of_the_true_class():
    normalized = confusion_matrix(LABELS, PREDICTED, num_classes=4, normalize=True)
    assert normalized.dtype == np.float64 and normalized.shape == (4, 4)
    assert normalized[:3].sum(axis=1) == pytest.approx([1.0, 1.0, 1.0])
    assert normalized[2].tolist() == pytest.approx([1 / 3, 0.0, 2 / 3, 0.0])
    assert normalized[3].tolist() == [0.0, 0.0, 0.0, 0.0], "a class without images: zeros, not NaN"
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    rows = confusion_matrix(labels, predicted, normalize=True).sum(axis=1)
    assert np.allclose(rows, 1.0)


def test_confusion_matrix_has_a_row_and_column_for_absent_classes():
    matrix = confusion_matrix(np.array([1, 1]), np.array([1, 3]), num_classes=5)
    assert matrix.shape == (5, 5) and matrix[1, 1] == 1 and matrix[1, 3] == 1 and matrix.sum() == 2


def test_confusion_matrix_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        confusion_matrix(np.array([0, 1, 2]), np.array([0, 1]))


def test_most_confused_ranks_off_diagonal_pairs_by_count_with_a_minimum():
    classes = ["cat", "dog", "car"]
    matrix = np.array([[50, 7, 1],
                       [9, 40, 0],
                       [1, 7, 60]])
    assert most_confused(matrix, classes) == [("dog", "cat", 9), ("cat", "dog", 7), ("car", "dog", 7),
                                              ("cat", "car", 1), ("car", "cat", 1)]
    assert most_confused(matrix, classes, min_count=7) == [("dog", "cat", 9), ("cat", "dog", 7), ("car", "dog", 7)]
    assert most_confused(matrix, classes, min_count=10) == []
    assert most_confused(np.diag([3, 4, 5]), classes) == [], "no mistakes, no pairs"
    with pytest.raises(ValueError, match=r"must be \(3, 3\)"):
        most_confused(np.zeros((2, 2)), classes)
    with pytest.raises(ValueError, match="min_count=0"):
        most_confused(matrix, classes, min_count=0)


# -- per-class report -----------------------------------------------------------------------

def test_per_class_metrics_match_hand_computed_values():
    rows = per_class_metrics(LABELS, PREDICTED, ["a", "b", "c", "never"])
    by_class = {r["class"]: r for r in rows}
    # class a: 2 images, 1 right -> recall 1/2; predicted a twice (images 0, 4), once right -> precision 1/2
    assert by_class["a"]["recall"] == pytest.approx(0.5) and by_class["a"]["precision"] == pytest.approx(0.5)
    # class b: 1 image, right -> recall 1; predicted b twice (1, 2), once right -> precision 1/2
    assert by_class["b"]["recall"] == pytest.approx(1.0) and by_class["b"]["precision"] == pytest.approx(0.5)
    assert by_class["b"]["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # class c: 3 images, 2 right -> recall 2/3; predicted c twice (3, 5), both right -> precision 1
    assert by_class["c"]["recall"] == pytest.approx(2 / 3) and by_class["c"]["precision"] == pytest.approx(1.0)
    assert by_class["never"] == {"class": "never", "accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                 "support": 0}
    for r in rows:
        assert r["accuracy"] == r["recall"], "per-class accuracy is the class's recall"


def test_classification_report_gives_each_class_its_precision_recall_f1_and_support():
    report = classification_report(LABELS, PREDICTED, ["a", "b", "c", "never"], as_dict=True)
    assert report["c"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1-score": 0.8, "support": 3})
    assert report["b"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1})
    assert report["never"]["support"] == 0 and report["never"]["precision"] == 0.0
    assert report["accuracy"] == pytest.approx(4 / 6)
    text = classification_report(LABELS, PREDICTED, ["a", "b", "c", "never"]).splitlines()
    row_c = next(line.split() for line in text if line.split()[:1] == ["c"])
    assert row_c == ["c", "1.000", "0.667", "0.800", "3"]
    assert any(line.split()[:1] == ["never"] for line in text), "a class without images still has its row"


def test_summarize_gathers_both_matrices_the_pairs_and_the_per_class_rows():
    preds = predictions(LABELS, PREDICTED, [0.9] * 6)
    summary = summarize(preds, ["a", "b", "c"])
    assert summary["test_images"] == 6 and summary["accuracy"] == pytest.approx(4 / 6)
    assert summary["confusion_matrix"] == confusion_matrix(LABELS, PREDICTED, 3).tolist()
    assert np.asarray(summary["confusion_matrix_normalized"]).sum(axis=1) == pytest.approx([1, 1, 1])
    assert summary["most_confused"] == [["a", "b", 1], ["c", "a", 1]]
    assert [r["class"] for r in summary["per_class"]] == ["a", "b", "c"]
    assert summary["mean_loss"] == pytest.approx(float(preds.losses.mean()))


# -- losses and mistakes --------------------------------------------------------------------

def test_losses_are_the_cross_entropy_of_the_true_class():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25], [0.0, 1.0, 0.0]], np.float32)
    preds = Predictions.from_probabilities(np.zeros((3, 32, 32, 3), np.uint8), [0, 2, 0], probabilities)
    assert preds.losses[:2] == pytest.approx([-np.log(0.7), -np.log(0.25)], rel=1e-6)
    assert np.isfinite(preds.losses[2]) and preds.losses[2] > 80, "p = 0: a huge but finite loss"
    assert preds.predicted.tolist() == [0, 1, 1] and preds.confidence.tolist() == pytest.approx([0.7, 0.5, 1.0])


def test_top_losses_are_only_mistakes_highest_loss_first():
    # image      0     1     2     3     4     5
    # true       0     0     1     2     2     2
    # predicted  0     1     1     0     1     0      -> mistakes: 1, 3, 4, 5
    confidence = [0.99, 0.60, 0.95, 0.70, 0.50, 0.70]
    p_true = [None, 0.30, None, 0.05, 0.40, 0.20]   # loss = -log p_true: 3 > 5 > 1 > 4
    preds = predictions([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 0], confidence, p_true)
    assert top_losses(preds).tolist() == [3, 5, 1, 4]
    assert top_losses(preds, k=2).tolist() == [3, 5]
    assert list(preds.losses[top_losses(preds)]) == sorted(preds.losses[top_losses(preds)], reverse=True)
    everything = top_losses(preds, mistakes_only=False)
    assert sorted(everything.tolist()) == list(range(6)) and everything[0] == 3
    assert most_confident_mistakes(preds).tolist() == [3, 5, 1, 4], "ties (3, 5 at 0.70) keep the image order"
    table = top_losses_table(preds, top_losses(preds, k=1), [f"c{i}" for i in range(10)]).splitlines()
    assert table[1].split() == ["1", "3", f"{-np.log(0.05):.2f}", "c2", "5.0%", "c0", "70.0%"]


def test_no_mistakes_gives_no_top_losses():
    preds = predictions([1, 2], [1, 2], [0.5, 0.9])
    assert top_losses(preds).tolist() == [] and most_confident_mistakes(preds).tolist() == []


def test_correct_examples_are_right_confident_first_one_per_class():
    preds = predictions([0, 0, 1, 2, 1, 3], [0, 0, 1, 2, 0, 3], [0.6, 0.9, 0.8, 0.7, 0.99, 0.5])
    assert correct_examples(preds, 10).tolist() == [1, 2, 3, 5], "image 4 is wrong; image 0 is class 0 again"
    assert correct_examples(preds, 2).tolist() == [1, 2]
    assert correct_examples(preds, 10, one_per_class=False).tolist() == [1, 2, 3, 0, 5]


def test_mistake_titles_name_true_and_predicted_class_confidence_and_loss():
    preds = predictions([3], [5], [0.873], [0.1])
    classes = ["c0", "c1", "c2", "cat", "c4", "dog"]
    assert mistake_titles(preds, [0], classes) == ["true cat\npred dog 87%"]
    assert mistake_titles(preds, [0], classes, loss=True) == ["true cat\npred dog 87%\nloss 2.30"]


# -- predictions on a real model --------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model("dilated_net").eval()


def test_predict_images_returns_softmax_argmax_confidence_and_losses_in_order(small_model):
    from cifarhelpers.data import normalize_batch

    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(6) % 10
    preds = predict_images(small_model, images, labels, MEAN, STD, device="cpu", batch_size=4, progress=False)
    assert preds.probabilities.shape == (6, 10) and preds.probabilities.dtype == np.float32
    assert np.allclose(preds.probabilities.sum(1), 1.0, atol=1e-5)
    assert (preds.predicted == preds.probabilities.argmax(1)).all()
    assert np.allclose(preds.confidence, preds.probabilities.max(1))
    with torch.no_grad():
        logits = small_model(normalize_batch(images, MEAN, STD))
    assert np.allclose(preds.probabilities, torch.softmax(logits, 1).numpy(), atol=1e-5), "same order and normalization"
    expected_losses = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels), reduction="none").numpy()
    assert np.allclose(preds.losses, expected_losses, atol=1e-5)
    assert preds.mean_loss == pytest.approx(float(expected_losses.mean()), abs=1e-5)
    assert (preds.labels == labels).all() and len(preds.images) == 6
