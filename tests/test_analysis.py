"""cifarhelpers.analysis (and the figures built from it): confusion matrix and per-class metrics
against hand-computed values, mistake ordering, predictions, GradCAM and its overlays on a small
real model. No data needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cifarhelpers.analysis import (
    DEFAULT_GRADCAM_LAYERS,
    Predictions,
    confusion_matrix,
    default_gradcam_layer,
    gradcam,
    mistake_titles,
    most_confident_mistakes,
    overlay_cams,
    per_class_metrics,
    per_class_table,
    predict_images,
    summarize,
)
from cifarhelpers.models import MODEL_NAMES, build_model

# Six images of three classes, worked by hand:
#   image      0  1  2  3  4  5
#   true       0  0  1  2  2  2
#   predicted  0  1  1  2  0  2
LABELS = np.array([0, 0, 1, 2, 2, 2])
PREDICTED = np.array([0, 1, 1, 2, 0, 2])
MEAN, STD = (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)


def predictions(labels, predicted, confidence) -> Predictions:
    n = len(labels)
    probabilities = np.zeros((n, 10), np.float32)
    probabilities[np.arange(n), predicted] = confidence
    return Predictions(images=np.zeros((n, 32, 32, 3), np.uint8), labels=np.asarray(labels),
                       probabilities=probabilities, predicted=np.asarray(predicted),
                       confidence=np.asarray(confidence, np.float32))


# -- confusion matrix and per-class metrics --------------------------------------------------

def test_confusion_matrix_rows_are_true_classes_and_columns_predictions():
    matrix = confusion_matrix(LABELS, PREDICTED, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0],
                               [0, 1, 0],
                               [1, 0, 2]]
    assert matrix.dtype == np.int64 and matrix.sum() == len(LABELS)


def test_confusion_matrix_has_a_row_and_column_for_absent_classes():
    matrix = confusion_matrix(np.array([1, 1]), np.array([1, 3]), num_classes=5)
    assert matrix.shape == (5, 5) and matrix[1, 1] == 1 and matrix[1, 3] == 1 and matrix.sum() == 2


def test_confusion_matrix_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        confusion_matrix(np.array([0, 1, 2]), np.array([0, 1]))


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
    # a class with no images and no predictions gets zeros, not NaN
    assert by_class["never"] == {"class": "never", "accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                 "support": 0}
    assert [r["support"] for r in rows] == [2, 1, 3, 0]
    for r in rows:
        assert r["accuracy"] == r["recall"], "per-class accuracy is the class's recall"
        assert all(0.0 <= r[k] <= 1.0 for k in ("accuracy", "precision", "recall", "f1"))


def test_summarize_and_per_class_table():
    preds = predictions(LABELS, PREDICTED, [0.9] * 6)
    summary = summarize(preds, ["a", "b", "c"])
    assert summary["test_images"] == 6 and summary["accuracy"] == pytest.approx(4 / 6)
    assert np.asarray(summary["confusion_matrix"]).sum() == 6
    assert [r["class"] for r in summary["per_class"]] == ["a", "b", "c"]
    table = per_class_table(summary["per_class"]).splitlines()
    assert table[0].split() == ["class", "accuracy", "precision", "recall", "f1", "images"]
    assert table[3].split() == ["c", "66.7%", "100.0%", "66.7%", "80.0%", "3"]


# -- mistakes ---------------------------------------------------------------------------------

def test_most_confident_mistakes_orders_by_confidence_and_skips_correct_images():
    #            0     1     2     3     4     5
    confidence = [0.99, 0.60, 0.95, 0.70, 0.80, 0.70]
    preds = predictions([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 0], confidence)  # wrong: 1, 3, 4, 5
    assert most_confident_mistakes(preds).tolist() == [4, 3, 5, 1]  # 3 and 5 tie: image order kept
    assert most_confident_mistakes(preds, limit=2).tolist() == [4, 3]
    assert preds.accuracy == pytest.approx(2 / 6)
    none_wrong = predictions([1, 2], [1, 2], [0.5, 0.9])
    assert most_confident_mistakes(none_wrong).tolist() == []


def test_mistake_titles_name_true_and_predicted_class_and_confidence():
    preds = predictions([3], [5], [0.873])
    assert mistake_titles(preds, [0], ["c0", "c1", "c2", "cat", "c4", "dog"]) == ["true cat\npred dog 87%"]


# -- predictions on a real model --------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model("dilated_net").eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


def test_predict_images_returns_softmax_argmax_and_confidence_in_order(small_model, images):
    from cifarhelpers.transforms import normalize_batch

    labels = np.arange(6) % 10
    preds = predict_images(small_model, images, labels, MEAN, STD, device="cpu", batch_size=4, progress=False)
    assert preds.probabilities.shape == (6, 10) and preds.probabilities.dtype == np.float32
    assert np.allclose(preds.probabilities.sum(1), 1.0, atol=1e-5)
    assert (preds.predicted == preds.probabilities.argmax(1)).all()
    assert np.allclose(preds.confidence, preds.probabilities.max(1))
    with torch.no_grad():
        expected = torch.softmax(small_model(normalize_batch(images, MEAN, STD)), 1).numpy()
    assert np.allclose(preds.probabilities, expected, atol=1e-5), "same order, same normalization"
    assert (preds.labels == labels).all() and preds.images is not None and len(preds.images) == 6


# -- GradCAM ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(images):
    from cifarhelpers.transforms import normalize_batch

    return normalize_batch(images[:3], MEAN, STD)


def test_gradcam_gives_one_map_per_image_in_0_1(small_model, inputs):
    cams = gradcam(small_model, inputs, [1, 4, 7], "block3", device="cpu")
    assert cams.shape == (3, 32, 32) and cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    assert cams.max() > 0.0, "a map that is not all zeros"


def test_gradcam_uses_each_image_s_own_target(small_model, inputs):
    targets = [2, 6, 9]
    batch = gradcam(small_model, inputs, targets, "block3", device="cpu")
    for i, target in enumerate(targets):
        alone = gradcam(small_model, inputs[i : i + 1], [target], "block3", device="cpu")
        assert np.allclose(batch[i], alone[0], atol=1e-5), f"image {i} is explained for its own target {target}"


def test_gradcam_leaves_weights_statistics_grads_and_mode_unchanged(inputs):
    torch.manual_seed(1)
    model = build_model("custom_resnet")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradcam(model, inputs, [0, 1, 2], "layer3", device="cpu")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "weights and BatchNorm statistics unchanged"
    assert model.training, "the model's train/eval mode is restored"
    assert all(p.grad is None for p in model.parameters()), "no gradients left behind"


def test_gradcam_refuses_a_target_count_that_does_not_match(small_model, inputs):
    with pytest.raises(ValueError, match="3 images but 2 targets: give one target class per image"):
        gradcam(small_model, inputs, [0, 1], "block3", device="cpu")


def test_gradcam_refuses_an_unknown_layer_and_lists_the_layers(small_model, inputs):
    with pytest.raises(ValueError, match=r"has no layer 'layer3'.*\['stem', 'block1', 'block2', 'block3', 'block4', "
                                         r"'pool', 'head'\]"):
        gradcam(small_model, inputs, [0, 1, 2], "layer3", device="cpu")


def test_gradcam_refuses_images_that_are_not_a_batch(small_model, inputs):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        gradcam(small_model, inputs[0], [0, 1, 2], "block3", device="cpu")


def test_default_gradcam_layer_exists_in_every_registry_model():
    assert set(DEFAULT_GRADCAM_LAYERS) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        model = build_model(name)
        layer = default_gradcam_layer(name)
        assert default_gradcam_layer(model) == layer
        assert any(isinstance(m, torch.nn.Conv2d) for m in model.get_submodule(layer).modules())
    with pytest.raises(ValueError, match="no default GradCAM layer for model 'Linear'"):
        default_gradcam_layer(torch.nn.Linear(2, 2))


# -- overlays and figures ---------------------------------------------------------------------

def test_overlay_cams_blends_a_colour_map_into_uint8_rgb():
    images = np.full((2, 8, 8, 3), 0.5, np.float32)
    cams = np.zeros((2, 8, 8), np.float32)
    cams[1] = 1.0
    out = overlay_cams(images, cams)
    assert out.shape == (2, 8, 8, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0], out[1]), "hot and cold maps colour the image differently"
    assert out[1, ..., 0].mean() > out[1, ..., 2].mean(), "a hot map is red"
    assert out[0, ..., 2].mean() > out[0, ..., 0].mean(), "a cold map is blue"
    as_uint8 = overlay_cams((images * 255).astype(np.uint8), cams)
    assert np.abs(as_uint8.astype(int) - out.astype(int)).max() <= 1, "uint8 images are scaled to [0, 1]"


def test_overlay_cams_refuses_mismatched_shapes_and_normalized_images():
    with pytest.raises(ValueError, match="same N, H, W"):
        overlay_cams(np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*denormalize"):
        overlay_cams(np.full((1, 8, 8, 3), -1.5, np.float32), np.zeros((1, 8, 8), np.float32))


def test_gradcam_grid_and_show_figure_write_a_png(tmp_path):
    from cifarhelpers.plots import plot_gradcam_grid, show_figure

    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    overlays = (images * 255).astype(np.uint8)
    fig = plot_gradcam_grid(images, overlays, ["a", "b", "c"], pairs_per_row=2)
    assert len([ax for ax in fig.axes if ax.images]) == 6, "each image beside its overlay"
    assert [ax.get_title() for ax in fig.axes[:4]] == ["a", "GradCAM", "b", "GradCAM"]
    path = tmp_path / "grid.png"
    assert show_figure(fig, path) is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    with pytest.raises(ValueError, match="3 images but 2 overlays"):
        plot_gradcam_grid(images, overlays[:2])
