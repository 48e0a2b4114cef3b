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
    """
    loader = AlbumentationsLoader(images, labels, test_transform(mean, std), batch_size=batch_size, train=False)
    logits, _ = predict(model, loader, device=torch.device(device), progress=progress)
    probabilities = torch.softmax(logits, dim=1).numpy()
    return Predictions(images=np.asarray(images), labels=np.asarray(labels, dtype=np.int64),
                       probabilities=probabilities, predicted=probabilities.argmax(1).astype(np.int64),
                       confidence=probabilities.max(1).astype(np.float32))


def most_confident_mistakes(preds: Predictions, limit: int | None = None) -> np.ndarray:
    """Indices of misclassified images, the most confident mistakes first (the informative ones)."""
    wrong = np.flatnonzero(preds.predicted != preds.labels)
    order = wrong[np.argsort(-preds.confidence[wrong], kind="stable")]
    return order if limit is None else order[:limit]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class (scikit-learn's convention)."""
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

    Args:
        model: the classifier (put in eval mode; its weights are not changed).
        inputs: (N, 3, H, W) normalized float32 images.
        targets: N class indices, the class whose score each map explains.
        layer: the convolutional layer (or its dotted name) whose activations are weighted.
        device: where the model is.

    Returns:
        (N, H, W) float32 maps in [0, 1], upsampled to the input size.

    Raises:
        ValueError: unknown layer, or len(targets) != N.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if len(targets) != len(inputs):
        raise ValueError(f"{len(inputs)} images but {len(targets)} targets: give one target class per image")
    target_layer = resolve_layer(model, layer)
    model.eval()
    with GradCAM(model=model, target_layers=[target_layer]) as cam:
        maps = cam(input_tensor=inputs.to(device), targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return maps.astype(np.float32)


def overlay_cams(images: np.ndarray, cams: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """Heat maps over images with grad-cam's ``show_cam_on_image`` (jet colour map).

    Args:
        images: (N, H, W, 3) RGB, float in [0, 1] (e.g. ``transforms.denormalize``) or uint8.
        cams: (N, H, W) maps in [0, 1].

    Returns:
        (N, H, W, 3) uint8 RGB overlays.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    images = np.asarray(images)
    rgb = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    return np.stack([show_cam_on_image(img, cam, use_rgb=True, image_weight=image_weight)
                     for img, cam in zip(rgb, cams)])
