"""GradCAM heat maps, for the predicted and the true class, and how faithful they are at each layer.

GradCAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization" (2017, https://arxiv.org/abs/1610.02391): the chosen layer's activation maps, weighted
by the spatial mean of the gradient of one class score, summed, ReLU'd and upsampled to the image.
Computed with the ``grad-cam`` package (https://github.com/jacobgil/pytorch-grad-cam), which also
supplies the overlays (``show_cam_on_image``) and the faithfulness metrics of
:func:`cam_faithfulness`: ROAD (Rong et al., "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022, https://arxiv.org/abs/2202.00449) and the confidence change when
only the map's region is kept (``cam_mult_image``).

Which layer: a late layer has the most class-specific features but the coarsest maps (the custom
ResNet's ``layer3`` is 4x4, so its maps are 4x4 blobs upsampled); an earlier one is finer (``layer2``,
8x8) but less class-specific. :data:`DEFAULT_GRADCAM_LAYERS` holds the default per model, chosen by
measurement with :func:`compare_gradcam_layers` (notebook 05 says on which model).

Example::

    inputs = normalize_batch(images, mean, std)                    # (N, 3, 32, 32)
    cams_true, cams_pred = gradcam_true_and_predicted(model, inputs, labels, predicted, "layer3", device=device)
    overlays = overlay_cams(denormalize(inputs, mean, std), cams_pred)   # (N, 32, 32, 3) uint8
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from cifarhelpers.models import preserved, registry_name

#: The GradCAM layers offered per model (dotted names), first the finer map, then the coarser one.
GRADCAM_LAYER_CHOICES = {"custom_resnet": ("layer2", "layer3"), "resnet18": ("layer3", "layer4"),
                         "dilated_net": ("block2", "block4")}
#: The GradCAM layer used when none is named. custom_resnet: ``layer3`` (4x4 maps), because on a
#: trained model it measured more faithful than the finer ``layer2`` (8x8): higher ROAD and much more
#: confidence kept in the map's region, on correct images and on mistakes alike (the numbers, the
#: model they were measured on and the commands: notebook 05 and results/gradcam-layers-cpu.json;
#: that model is a short CPU run, so a GPU-trained one should confirm it). The others: their last
#: convolutional stage.
DEFAULT_GRADCAM_LAYERS = {"custom_resnet": "layer3", "resnet18": "layer4", "dilated_net": "block4"}
#: Percentiles of ROAD's removal thresholds (pixels ranked by the map; 20 removes the top or bottom 20%).
ROAD_PERCENTILES = (20, 40, 60, 80)


def default_gradcam_layer(model: nn.Module | str) -> str:
    """The default GradCAM layer of a registry model (by name or instance): :data:`DEFAULT_GRADCAM_LAYERS`.

    Raises:
        ValueError: the model is not in :data:`DEFAULT_GRADCAM_LAYERS` (name a layer instead).
    """
    name = model if isinstance(model, str) else (registry_name(model) or type(model).__name__)
    if name not in DEFAULT_GRADCAM_LAYERS:
        raise ValueError(f"no default GradCAM layer for model {name!r}: name one (e.g. gradcam_layer='layer3'); "
                         f"defaults exist for {sorted(DEFAULT_GRADCAM_LAYERS)}")
    return DEFAULT_GRADCAM_LAYERS[name]


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """A sub-module by dotted name (e.g. ``"layer3"`` or ``"layer3.res"``), or the module itself.

    Raises:
        ValueError: no such sub-module (the message lists the model's top-level children).
    """
    if isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError as err:
        names = [name for name, _ in model.named_children()]
        raise ValueError(f"model {type(model).__name__} has no layer {layer!r}; its top-level layers are {names} "
                         "(dotted names reach inside them, e.g. 'layer3.res')") from err


def _check_batch(inputs: torch.Tensor, *targets: Sequence[int]) -> None:
    if inputs.ndim != 4 or inputs.shape[1] != 3 or len(inputs) == 0:
        raise ValueError(f"expected a non-empty (N, 3, H, W) batch of normalized images, got shape "
                         f"{tuple(inputs.shape)}: use transforms.normalize_batch(images, mean, std)")
    for t in targets:
        if len(t) != len(inputs):
            raise ValueError(f"{len(inputs)} images but {len(t)} targets: give one target class per image")


def gradcam(model: nn.Module, inputs: torch.Tensor, targets: Sequence[int], layer: str | nn.Module,
            *, device: torch.device | str) -> np.ndarray:
    """GradCAM heat maps (Selvaraju et al. 2017), one target class per image.

    The model is run in eval mode (BatchNorm uses its running statistics, which are not updated)
    and left in the mode it was in; its weights and any ``.grad`` it held are unchanged.

    Args:
        model: the classifier, on ``device``.
        inputs: (N, 3, H, W) normalized float32 images, N >= 1.
        targets: N class indices, the class whose score (logit) each map explains.
        layer: the convolutional layer (or its dotted name) whose activations are weighted.
        device: where the model is.

    Returns:
        (N, H, W) float32 maps in [0, 1] (each scaled by its own maximum), upsampled to the input size.

    Raises:
        ValueError: unknown layer (the message lists the model's layers), ``inputs`` not (N, 3, H, W)
            with N >= 1, or len(targets) != N.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    _check_batch(inputs, targets)
    target_layer = resolve_layer(model, layer)
    with preserved(model, grads=True):
        model.eval()
        with GradCAM(model=model, target_layers=[target_layer]) as cam:
            maps = cam(input_tensor=inputs.to(device), targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return np.clip(maps, 0.0, 1.0).astype(np.float32)


def gradcam_true_and_predicted(model: nn.Module, inputs: torch.Tensor, labels: Sequence[int],
                               predicted: Sequence[int], layer: str | nn.Module, *,
                               device: torch.device | str) -> tuple[np.ndarray, np.ndarray]:
    """GradCAM of each image for its true class and for its predicted class, side by side: where
    the evidence for the right answer lies, and where the evidence for the answer given lies.

    Args:
        inputs: (N, 3, H, W) normalized float32 images; labels, predicted: N class indices each.
        layer, device: as :func:`gradcam`.

    Returns:
        ``(cams_true, cams_predicted)``, each (N, H, W) float32 in [0, 1]. For a correctly
        classified image the two are the same map.

    Raises:
        ValueError: as :func:`gradcam`, or labels/predicted of another length than N.
    """
    _check_batch(inputs, labels, predicted)
    maps = gradcam(model, torch.cat([inputs, inputs]), [*map(int, labels), *map(int, predicted)], layer,
                   device=device)
    return maps[: len(inputs)], maps[len(inputs):]


def overlay_cams(images: np.ndarray, cams: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """Heat maps over images with grad-cam's ``show_cam_on_image`` (jet colour map: red = high).

    Args:
        images: (N, H, W, 3) RGB, float in [0, 1] (e.g. ``transforms.denormalize``) or uint8.
        cams: (N, H, W) maps in [0, 1].
        image_weight: weight of the image in the blend, in [0, 1] (the map gets 1 - image_weight).

    Returns:
        (N, H, W, 3) uint8 RGB overlays.

    Raises:
        ValueError: shapes that do not match, or float images outside [0, 1].
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    images, cams = np.asarray(images), np.asarray(cams)
    if images.ndim != 4 or images.shape[-1] != 3 or cams.shape != images.shape[:3]:
        raise ValueError(f"overlay_cams expects images (N, H, W, 3) and cams (N, H, W) of the same N, H, W, got "
                         f"{images.shape} and {cams.shape}")
    rgb = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    if rgb.size and (rgb.min() < 0.0 or rgb.max() > 1.0):
        raise ValueError(f"float images must be in [0, 1] (got [{rgb.min():.3f}, {rgb.max():.3f}]): un-normalize "
                         "them with transforms.denormalize(inputs, mean, std)")
    return np.stack([show_cam_on_image(img, cam, use_rgb=True, image_weight=image_weight)
                     for img, cam in zip(rgb, cams)])


def cam_faithfulness(model: nn.Module, inputs: torch.Tensor, targets: Sequence[int], cams: np.ndarray, *,
                     device: torch.device | str, percentiles: Sequence[int] = ROAD_PERCENTILES,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """How faithful maps are to the model, per image, with pytorch-grad-cam's metrics on the
    target class's softmax probability (``ClassifierOutputSoftmaxTarget``); all are changes of a
    probability, in [-1, 1]:

    * ``road_morf``: ROAD, most relevant first (Rong et al. 2022): pixels at or above each
      percentile of the map are replaced by noisy linear imputation from their neighbours;
      the mean change over ``percentiles``. Lower (a larger drop) is more faithful.
    * ``road_lerf``: least relevant first, the same with the map reversed. Higher is more faithful.
    * ``road_combined``: ``(road_lerf - road_morf) / 2``, pytorch-grad-cam's ``ROADCombined``.
      Higher is more faithful; about 0 for maps no better than chance.
    * ``keep_cam_change``: ``CamMultImageConfidenceChange``: the change when the normalized image is
      multiplied by the map (outside the map's region the image fades to the mean colour). Higher
      is more faithful.

    Args:
        model: the classifier, on ``device`` (run in eval mode, its mode restored).
        inputs: (N, 3, H, W) normalized images; targets: N classes; cams: (N, H, W) maps in [0, 1].
        percentiles: ROAD's thresholds, each in (0, 100).
        seed: seed of the imputation noise (the global RNG is left as it was).

    Returns:
        ``{"road_morf", "road_lerf", "road_combined", "keep_cam_change"}``, each (N,) float32.

    Raises:
        ValueError: mismatched shapes or counts.
    """
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirstAverage, ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    _check_batch(inputs, targets)
    cams = np.asarray(cams, np.float32)
    if cams.shape != (inputs.shape[0], *inputs.shape[2:]):
        raise ValueError(f"cams must be (N, H, W) = {(inputs.shape[0], *inputs.shape[2:])}, got {cams.shape}")
    wanted = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    x = inputs.to(device)
    with preserved(model), torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # the imputer's sparse solver trips a numpy 2 DeprecationWarning (__array_wrap__) on every image
        warnings.simplefilter("ignore", DeprecationWarning)
        model.eval()
        torch.manual_seed(seed)
        morf = ROADMostRelevantFirstAverage(list(percentiles))(x, cams, wanted, model)
        lerf = ROADLeastRelevantFirstAverage(list(percentiles))(x, cams, wanted, model)
        keep = CamMultImageConfidenceChange()(x, cams, wanted, model)
    return {"road_morf": morf.astype(np.float32), "road_lerf": lerf.astype(np.float32),
            "road_combined": ((lerf - morf) / 2).astype(np.float32),
            "keep_cam_change": np.asarray(keep, np.float32).reshape(-1)}


def compare_gradcam_layers(model: nn.Module, inputs: torch.Tensor, targets: Sequence[int], layers: Sequence[str], *,
                           device: torch.device | str, batch_size: int = 128, random_baseline: bool = True,
                           seed: int = 0, per_image: dict | None = None) -> dict[str, dict[str, float]]:
    """Mean :func:`cam_faithfulness` of GradCAM at each of ``layers`` on the same images and targets:
    the measurement behind :data:`DEFAULT_GRADCAM_LAYERS`.

    Args:
        model, inputs, targets, device: as :func:`cam_faithfulness`.
        layers: dotted layer names, e.g. ``("layer2", "layer3")``.
        batch_size: images per GradCAM and metric pass.
        random_baseline: also score seeded uniform-noise maps (key ``"random maps"``): what
            chance gives.
        seed: seed of the imputation noise and the random maps.
        per_image: a dict to fill with layer -> metric -> (N,) float32 per-image values (for paired
            comparisons of two layers on the same images); None: not kept.

    Returns:
        layer -> metric -> mean over the images (probability change, see :func:`cam_faithfulness`),
        with ``"images"`` the count.
    """
    _check_batch(inputs, targets)
    rng = np.random.default_rng(seed)
    sources = {layer: None for layer in layers}
    if random_baseline:
        sources["random maps"] = "random"
    results = {}
    for name, source in sources.items():
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(inputs), batch_size):
            batch, wanted = inputs[start:start + batch_size], list(targets[start:start + batch_size])
            if source == "random":
                cams = rng.random((len(batch), *batch.shape[2:]), dtype=np.float32)
            else:
                cams = gradcam(model, batch, wanted, name, device=device)
            for key, value in cam_faithfulness(model, batch, wanted, cams, device=device, seed=seed).items():
                parts.setdefault(key, []).append(value)
        values = {key: np.concatenate(v) for key, v in parts.items()}
        results[name] = {key: float(v.mean()) for key, v in values.items()}
        results[name]["images"] = int(len(inputs))
        if per_image is not None:
            per_image[name] = values
    return results


def faithfulness_table(results: dict[str, dict[str, float]]) -> str:
    """:func:`compare_gradcam_layers`' results as aligned text, in percentage points of p(target)."""
    metrics = ("road_combined", "road_morf", "road_lerf", "keep_cam_change")
    lines = [f"{'maps':<13}" + "".join(f"{m:>17}" for m in metrics) + f"{'images':>8}"]
    lines += [f"{name:<13}" + "".join(f"{100 * scores[m]:>+17.2f}" for m in metrics) + f"{scores['images']:>8}"
              for name, scores in results.items()]
    return "\n".join(lines)

