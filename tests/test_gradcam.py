"""cifarhelpers.analysis.gradcam and the GradCAM figures: maps for the true and the predicted class, the model
left untouched, the overlays, and the faithfulness metrics on a model whose evidence is known. No data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cifarhelpers.analysis import (
    DEFAULT_GRADCAM_LAYERS,
    GRADCAM_LAYER_CHOICES,
    cam_faithfulness,
    compare_gradcam_layers,
    default_gradcam_layer,
    gradcam,
    gradcam_true_and_predicted,
    overlay_cams,
)
from cifarhelpers.data import normalize_batch
from cifarhelpers.models import MODEL_NAMES, build_model

MEAN, STD = (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model("dilated_net").eval()


@pytest.fixture(scope="module")
def inputs():
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    return normalize_batch(images, MEAN, STD)


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


def test_gradcam_true_and_predicted_gives_the_map_of_each_class(small_model, inputs):
    labels, predicted = [3, 5, 8], [3, 1, 0]
    cams_true, cams_pred = gradcam_true_and_predicted(small_model, inputs, labels, predicted, "block3", device="cpu")
    for cams in (cams_true, cams_pred):
        assert cams.shape == (3, 32, 32) and cams.dtype == np.float32 and cams.min() >= 0 and cams.max() <= 1
    assert np.allclose(cams_true, gradcam(small_model, inputs, labels, "block3", device="cpu"), atol=1e-5)
    assert np.allclose(cams_pred, gradcam(small_model, inputs, predicted, "block3", device="cpu"), atol=1e-5)
    assert np.allclose(cams_true[0], cams_pred[0], atol=1e-6), "a correct image: one class, one map"
    assert not np.allclose(cams_true[1], cams_pred[1], atol=1e-3), "a mistake: two classes, two maps"
    with pytest.raises(ValueError, match="3 images but 2 targets"):
        gradcam_true_and_predicted(small_model, inputs, labels, predicted[:2], "block3", device="cpu")


def test_the_offered_custom_resnet_layers_give_8x8_and_4x4_maps(inputs):
    torch.manual_seed(1)
    model = build_model("custom_resnet").eval()
    sides = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda module, args, out, name=name: sides.__setitem__(name, tuple(out.shape[-2:])))
        for name in GRADCAM_LAYER_CHOICES["custom_resnet"]]
    try:
        fine, coarse = (gradcam(model, inputs[:1], [0], name, device="cpu")[0] for name in ("layer2", "layer3"))
    finally:
        for hook in hooks:
            hook.remove()
    assert sides == {"layer2": (8, 8), "layer3": (4, 4)}
    assert fine.shape == coarse.shape == (32, 32), "both upsampled to the image"


def test_gradcam_leaves_weights_statistics_grads_and_mode_unchanged(inputs):
    torch.manual_seed(1)
    model = build_model("custom_resnet")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradcam_true_and_predicted(model, inputs, [0, 1, 2], [2, 1, 0], "layer2", device="cpu")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "weights and BatchNorm statistics unchanged"
    assert model.training, "the model's train/eval mode is restored"
    assert all(p.grad is None for p in model.parameters()), "no gradients left behind"


def test_gradcam_refuses_bad_targets_layers_and_batches(small_model, inputs):
    with pytest.raises(ValueError, match="3 images but 2 targets: give one target class per image"):
        gradcam(small_model, inputs, [0, 1], "block3", device="cpu")
    with pytest.raises(ValueError, match=r"has no layer 'layer3'.*\['stem', 'block1', 'block2', 'block3', 'block4', "
                                         r"'pool', 'head'\]"):
        gradcam(small_model, inputs, [0, 1, 2], "layer3", device="cpu")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        gradcam(small_model, inputs[0], [0, 1, 2], "block3", device="cpu")


def test_default_and_offered_layers_exist_in_every_registry_model():
    assert set(DEFAULT_GRADCAM_LAYERS) == set(MODEL_NAMES) == set(GRADCAM_LAYER_CHOICES)
    assert GRADCAM_LAYER_CHOICES["custom_resnet"] == ("layer2", "layer3"), "8x8 and 4x4 both offered"
    for name in MODEL_NAMES:
        model = build_model(name)
        layer = default_gradcam_layer(name)
        assert default_gradcam_layer(model) == layer and layer in GRADCAM_LAYER_CHOICES[name]
        for offered in GRADCAM_LAYER_CHOICES[name]:
            assert any(isinstance(m, nn.Conv2d) for m in model.get_submodule(offered).modules())
    with pytest.raises(ValueError, match="no default GradCAM layer for model 'Linear'"):
        default_gradcam_layer(nn.Linear(2, 2))


# -- faithfulness -----------------------------------------------------------------------------

class LeftHalfEvidence(nn.Module):
    """Class 0's logit is 3x the mean of channel 0 over the left half of the image; class 1 is a
    constant 0. The evidence for class 0 lies in the left half only."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0, 0] = 1.0

    def forward(self, x):
        left = self.features(x)[..., :16].mean(dim=(1, 2, 3))
        return torch.stack([3 * left, torch.zeros_like(left)], dim=1)


def test_a_map_on_the_evidence_is_more_faithful_than_its_reverse():
    rng = np.random.default_rng(0)
    inputs = torch.zeros(4, 3, 32, 32)
    inputs[..., :16] = 1.0  # evidence for class 0 on the left
    inputs[..., 16:] = torch.from_numpy(rng.normal(0, 0.3, (4, 3, 32, 16)).astype(np.float32))
    right_map = np.zeros((4, 32, 32), np.float32)
    right_map[..., :16] = 0.6 + 0.4 * rng.random((4, 32, 16))  # the left half ranks above the right
    right_map[..., 16:] = 0.4 * rng.random((4, 32, 16))
    model = LeftHalfEvidence()
    good = cam_faithfulness(model, inputs, [0] * 4, right_map, device="cpu")
    bad = cam_faithfulness(model, inputs, [0] * 4, 1.0 - right_map, device="cpu")
    assert set(good) == {"road_morf", "road_lerf", "road_combined", "keep_cam_change"}
    assert all(v.shape == (4,) and np.all(np.abs(v) <= 1) for v in good.values())
    assert (good["road_morf"] < bad["road_morf"]).all(), "removing the evidence first drops p(class 0) more"
    assert (good["road_combined"] > bad["road_combined"]).all()
    assert (good["keep_cam_change"] > bad["keep_cam_change"]).all(), "keeping the evidence keeps p(class 0)"
    assert np.allclose(good["road_combined"], (good["road_lerf"] - good["road_morf"]) / 2)
    again = cam_faithfulness(model, inputs, [0] * 4, right_map, device="cpu")
    assert all(np.array_equal(good[k], again[k]) for k in good), "seeded: the same numbers twice"


def test_compare_gradcam_layers_averages_the_faithfulness_of_each_layer(small_model, inputs):
    results = compare_gradcam_layers(small_model, inputs, [1, 2, 3], ["block2", "block4"], device="cpu",
                                     batch_size=2)
    assert list(results) == ["block2", "block4", "random maps"]
    cams = gradcam(small_model, inputs, [1, 2, 3], "block4", device="cpu")
    direct = {k: float(v.mean()) for k, v in cam_faithfulness(small_model, inputs, [1, 2, 3], cams,
                                                                device="cpu").items()}
    assert results["block4"]["images"] == 3
    # batches of 2 + 1 reseed the imputation noise per batch, so compare loosely; keep_cam_change has no noise
    assert results["block4"]["keep_cam_change"] == pytest.approx(direct["keep_cam_change"], abs=1e-6)


# -- overlays and figures ---------------------------------------------------------------------

def test_overlay_cams_blends_a_colour_map_into_uint8_rgb():
    images = np.full((2, 8, 8, 3), 0.5, np.float32)
    cams = np.zeros((2, 8, 8), np.float32)
    cams[1] = 1.0
    out = overlay_cams(images, cams)
    assert out.shape == (2, 8, 8, 3) and out.dtype == np.uint8
    assert out[1, ..., 0].mean() > out[1, ..., 2].mean(), "a hot map is red"
    assert out[0, ..., 2].mean() > out[0, ..., 0].mean(), "a cold map is blue"
    as_uint8 = overlay_cams((images * 255).astype(np.uint8), cams)
    assert np.abs(as_uint8.astype(int) - out.astype(int)).max() <= 1, "uint8 images are scaled to [0, 1]"


def test_overlay_cams_refuses_mismatched_shapes_and_normalized_images():
    with pytest.raises(ValueError, match="same N, H, W"):
        overlay_cams(np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*denormalize"):
        overlay_cams(np.full((1, 8, 8, 3), -1.5, np.float32), np.zeros((1, 8, 8), np.float32))


def test_gradcam_figures_show_each_image_beside_its_maps(tmp_path):
    from cifarhelpers.analysis import plot_gradcam_grid, plot_gradcam_true_vs_predicted
    from cifarhelpers.files import show_figure

    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    overlays = (images * 255).astype(np.uint8)
    fig = plot_gradcam_grid(images, overlays, ["a", "b", "c"], pairs_per_row=2)
    assert len([ax for ax in fig.axes if ax.images]) == 6, "each image beside its overlay"
    assert [ax.get_title() for ax in fig.axes[:4]] == ["a", "GradCAM", "b", "GradCAM"]
    fig = plot_gradcam_true_vs_predicted(images, overlays, overlays[::-1], ["cat", "dog", "car"],
                                         ["dog", "dog", "ship"], per_row=2, title="t")
    assert len([ax for ax in fig.axes if ax.images]) == 9, "image, true-class map, predicted-class map"
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "true: cat", "pred: dog"]
    path = tmp_path / "grid.png"
    assert show_figure(fig, path) is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    with pytest.raises(ValueError, match="3 images but 2 overlays"):
        plot_gradcam_grid(images, overlays[:2])
    with pytest.raises(ValueError, match="one of each per image"):
        plot_gradcam_true_vs_predicted(images, overlays, overlays, ["a"], ["b"])


# -- GradCAM on a model whose evidence is known ---------------------------------------------------------------

class ColourPatchDetector(nn.Module):
    """Hand-set weights: ``features`` (1x1 conv + ReLU, then 4x4 average pooling: 8x8 maps) has a red-patch
    channel, ReLU(R - (G + B) / 2 - 1), and a blue-patch one, ReLU(B - (R + G) / 2 - 1); the class 0 logit is
    10x the blue channel's mean, class 1's 10x the red channel's. Dim noise (std 0.2) fires neither channel,
    so all the evidence for class 1 is where a red patch is, and all of class 0's where a blue patch is."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[1.0, -0.5, -0.5], [-0.5, -0.5, 1.0]])[..., None, None])
            conv.bias.fill_(-1.0)
        self.features = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(4))

    def forward(self, x):
        red, blue = self.features(x).mean(dim=(2, 3)).unbind(dim=1)  # channel 0 red, 1 blue
        return 10 * torch.stack([blue, red], dim=1)


def _patches(red_at: tuple[int, int], blue_at: tuple[int, int] | None = None) -> torch.Tensor:
    """One (1, 3, 32, 32) normalized image: dim noise, an 8x8 red patch with its top-left corner at ``red_at``
    (row, column), and optionally a blue one at ``blue_at``."""
    image = torch.from_numpy(np.random.default_rng(0).normal(0, 0.2, (1, 3, 32, 32)).astype(np.float32))
    for at, colour in ((red_at, (2.0, -1.0, -1.0)), (blue_at, (-1.0, -1.0, 2.0))):
        if at is not None:
            image[0, :, at[0]:at[0] + 8, at[1]:at[1] + 8] = torch.tensor(colour)[:, None, None]
    return image


def _quadrant_share(cam: np.ndarray, rows: slice, cols: slice) -> float:
    return float(cam[rows, cols].sum() / cam.sum())


TOP, BOTTOM, LEFT, RIGHT = slice(0, 16), slice(16, 32), slice(0, 16), slice(16, 32)


def test_gradcam_puts_a_class_s_map_on_its_evidence_and_follows_it_when_it_moves():
    model = ColourPatchDetector().eval()
    top_left, bottom_right = _patches(red_at=(4, 4)), _patches(red_at=(20, 20))
    assert model(top_left).argmax().item() == 1 and model(bottom_right).argmax().item() == 1, "the premise"
    cams = gradcam(model, torch.cat([top_left, bottom_right]), [1, 1], "features", device="cpu")
    for cam, rows, cols in ((cams[0], TOP, LEFT), (cams[1], BOTTOM, RIGHT)):
        assert _quadrant_share(cam, rows, cols) > 0.9, "the map lies in the patch's quadrant"
        peak_row, peak_col = np.unravel_index(cam.argmax(), cam.shape)
        assert rows.start + 4 <= peak_row < rows.start + 12 and cols.start + 4 <= peak_col < cols.start + 12, \
            "its peak is on the patch"


def test_gradcam_of_each_class_lies_on_that_class_s_own_evidence():
    """A red patch (class 1) top left and a blue one (class 0) bottom right in the same image: each class's
    map lies on its own patch, not on the other class's."""
    model = ColourPatchDetector().eval()
    both = _patches(red_at=(4, 4), blue_at=(20, 20))
    cam_red, cam_blue = gradcam(model, torch.cat([both, both]), [1, 0], "features", device="cpu")
    assert _quadrant_share(cam_red, TOP, LEFT) > 0.9 and _quadrant_share(cam_red, BOTTOM, RIGHT) < 0.05
    assert _quadrant_share(cam_blue, BOTTOM, RIGHT) > 0.9 and _quadrant_share(cam_blue, TOP, LEFT) < 0.05
