"""Understanding a trained model's mistakes: predictions, misclassified images, confusion matrix,
per-class accuracy/precision/recall, and GradCAM heat maps.

GradCAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization" (2017, https://arxiv.org/abs/1610.02391), computed with the ``grad-cam`` package
(https://github.com/jacobgil/pytorch-grad-cam). Per-class metrics come from scikit-learn.

Example::

    preds = predict_images(model, data.x_test, data.y_test, mean, std, device=device)
    wrong = most_confident_mistakes(preds, limit=20)
    inputs = normalize_batch(preds.images[wrong], mean, std)
    cams = gradcam(model, inputs, preds.predicted[wrong], layer="layer3", device=device)
    overlays = overlay_cams(denormalize(inputs, mean, std), cams)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .engine import predict
from .loaders import AlbumentationsLoader
from .model_state import preserved
from .models import registry_name
from .transforms import test_transform


@dataclass
class Predictions:
    """A model's outputs on a set of images.

    Attributes:
        images: (N, 32, 32, 3) uint8, the images evaluated (for display).
        labels: (N,) int64 true classes.
        probabilities: (N, C) float32 softmax outputs.
        predicted: (N,) int64 arg-max classes.
        confidence: (N,) float32 probability of the predicted class, in [0, 1].
    """

    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of images classified correctly, in [0, 1]."""
        return float((self.predicted == self.labels).mean())


def predict_images(model: nn.Module, images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                   std: Sequence[float], *, device: torch.device | str, batch_size: int = 500,
                   progress: bool = True) -> Predictions:
    """Run ``model`` (eval mode, no augmentation) on uint8 images normalized with ``mean``/``std``.

    Args:
        images: (N, 32, 32, 3) uint8; labels: (N,) int.
        mean, std: the training statistics on the [0, 1] scale.
        device: where the model is.
        batch_size: images per forward pass.
        progress: a tqdm bar over the batches.

    Returns:
        :class:`Predictions`, in the order of ``images``.

    Raises:
        ValueError: images not (N, H, W, 3) uint8, or len(labels) != N.
    """
    loader = AlbumentationsLoader(images, labels, test_transform(mean, std), batch_size=batch_size, train=False)
    logits, _ = predict(model, loader, device=torch.device(device), progress=progress)
    probabilities = torch.softmax(logits, dim=1).numpy()
    return Predictions(images=np.asarray(images), labels=np.asarray(labels, dtype=np.int64),
                       probabilities=probabilities, predicted=probabilities.argmax(1).astype(np.int64),
                       confidence=probabilities.max(1).astype(np.float32))


def most_confident_mistakes(preds: Predictions, limit: int | None = None) -> np.ndarray:
    """Indices of misclassified images, the most confident mistakes first (the informative ones).

    Returns:
        (K,) int64 indices into ``preds`` (K = number of mistakes, at most ``limit``); ties keep
        the images' order.
    """
    wrong = np.flatnonzero(preds.predicted != preds.labels)
    order = wrong[np.argsort(-preds.confidence[wrong], kind="stable")]
    return order if limit is None else order[:limit]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class (scikit-learn's convention).

    Args:
        labels, predicted: (N,) class indices in [0, num_classes).

    Returns:
        The matrix; it sums to N.

    Raises:
        ValueError: ``labels`` and ``predicted`` differ in length.
    """
    if len(labels) != len(predicted):
        raise ValueError(f"{len(labels)} labels but {len(predicted)} predictions: they must match one to one")
    from sklearn.metrics import confusion_matrix as sk_confusion

    return sk_confusion(labels, predicted, labels=list(range(num_classes))).astype(np.int64)


def per_class_metrics(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """Per class: accuracy (= recall: correct / images of the class), precision, recall, F1 and
    support (images of the class), all rates as fractions in [0, 1]; scikit-learn's
    ``precision_recall_fscore_support`` (a class never predicted gets precision 0)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=list(range(len(classes))), zero_division=0)
    return [{"class": name, "accuracy": float(r), "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)} for name, p, r, f, s in zip(classes, precision, recall, f1, support)]


#: The GradCAM layer used when none is named: each model's last convolutional stage (4x4 maps).
DEFAULT_GRADCAM_LAYERS = {"custom_resnet": "layer3", "resnet18": "layer4", "dilated_net": "block4"}


def default_gradcam_layer(model: nn.Module | str) -> str:
    """The usual GradCAM layer of a registry model (by name or instance): its last convolutional stage.

    Raises:
        ValueError: the model is not in :data:`DEFAULT_GRADCAM_LAYERS` (name a layer instead).
    """
    name = model if isinstance(model, str) else (registry_name(model) or type(model).__name__)
    if name not in DEFAULT_GRADCAM_LAYERS:
        raise ValueError(f"no default GradCAM layer for model {name!r}: name one (e.g. gradcam_layer='layer3'); "
                         f"defaults exist for {sorted(DEFAULT_GRADCAM_LAYERS)}")
    return DEFAULT_GRADCAM_LAYERS[name]


def mistake_titles(preds: Predictions, indices: Sequence[int], classes: Sequence[str]) -> list[str]:
    """One caption per image: ``"true cat\npred dog 87%"`` (confidence of the predicted class, in percent)."""
    return [f"true {classes[preds.labels[i]]}\npred {classes[preds.predicted[i]]} {100 * preds.confidence[i]:.0f}%"
            for i in indices]


def summarize(preds: Predictions, classes: Sequence[str]) -> dict:
    """JSON-ready summary of ``preds``: images, accuracy (fraction), the (C, C) confusion matrix as
    nested lists (row = true class) and :func:`per_class_metrics`."""
    matrix = confusion_matrix(preds.labels, preds.predicted, len(classes))
    return {"test_images": int(len(preds.labels)), "accuracy": preds.accuracy, "classes": list(classes),
            "confusion_matrix": matrix.tolist(), "per_class": per_class_metrics(preds.labels, preds.predicted, classes)}


def per_class_table(rows: Sequence[dict]) -> str:
    """Rows of :func:`per_class_metrics` as aligned text, rates in percent."""
    lines = [f"{'class':<12}{'accuracy':>10}{'precision':>11}{'recall':>9}{'f1':>8}{'images':>8}"]
    lines += [f"{r['class']:<12}{100 * r['accuracy']:>9.1f}%{100 * r['precision']:>10.1f}%{100 * r['recall']:>8.1f}%"
              f"{100 * r['f1']:>7.1f}%{r['support']:>8,}" for r in rows]
    return "\n".join(lines)


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


def gradcam(model: nn.Module, inputs: torch.Tensor, targets: Sequence[int], layer: str | nn.Module,
            *, device: torch.device | str) -> np.ndarray:
    """GradCAM heat maps, one target class per image.

    The model is run in eval mode (BatchNorm uses its running statistics, which are not updated)
    and left in the mode it was in; its weights and any ``.grad`` it held are unchanged.

    Args:
        model: the classifier, on ``device``.
        inputs: (N, 3, H, W) normalized float32 images, N >= 1.
        targets: N class indices, the class whose score each map explains (e.g. the predicted class).
        layer: the convolutional layer (or its dotted name) whose activations are weighted.
        device: where the model is.

    Returns:
        (N, H, W) float32 maps in [0, 1], upsampled to the input size.

    Raises:
        ValueError: unknown layer (the message lists the model's layers), ``inputs`` not (N, 3, H, W)
            with N >= 1, or len(targets) != N.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if inputs.ndim != 4 or inputs.shape[1] != 3 or len(inputs) == 0:
        raise ValueError(f"gradcam expects a non-empty (N, 3, H, W) batch of normalized images, got shape "
                         f"{tuple(inputs.shape)}: use transforms.normalize_batch(images, mean, std)")
    if len(targets) != len(inputs):
        raise ValueError(f"{len(inputs)} images but {len(targets)} targets: give one target class per image")
    target_layer = resolve_layer(model, layer)
    with preserved(model, grads=True):
        model.eval()
        with GradCAM(model=model, target_layers=[target_layer]) as cam:
            maps = cam(input_tensor=inputs.to(device), targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return np.clip(maps, 0.0, 1.0).astype(np.float32)


def overlay_cams(images: np.ndarray, cams: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """Heat maps over images with grad-cam's ``show_cam_on_image`` (jet colour map).

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
