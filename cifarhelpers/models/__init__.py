"""Model zoo and registry: build any model by name.

Example::

    from cifarhelpers.models import build_model, MODEL_NAMES
    model = build_model("custom_resnet")      # (N, 3, 32, 32) -> (N, 10) logits
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ConfigError
from .custom_resnet import CustomResNet
from .dilated_net import DilatedNet
from .resnet18 import ResNet18

#: name -> constructor. Every model maps (N, 3, 32, 32) float32 to (N, num_classes) logits.
MODELS: dict[str, Callable[..., nn.Module]] = {
    "custom_resnet": CustomResNet,
    "resnet18": ResNet18,
    "dilated_net": DilatedNet,
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def build_model(name: str, **kwargs) -> nn.Module:
    """A freshly initialized model from the registry.

    Args:
        name: one of :data:`MODEL_NAMES`.
        **kwargs: passed to the constructor (e.g. ``num_classes=10``).

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a keyword the model
            does not take.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}")
    try:
        return MODELS[name](**kwargs)
    except TypeError as err:
        raise ConfigError(f"model {name!r} does not accept {sorted(kwargs)}: {err}") from err


def registry_name(model: nn.Module) -> str | None:
    """The registry name of ``model``'s class (e.g. ``"custom_resnet"``), or None for a model built
    outside the registry."""
    return next((name for name, cls in MODELS.items() if type(model) is cls), None)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["MODELS", "MODEL_NAMES", "CustomResNet", "DilatedNet", "ResNet18", "build_model", "count_parameters",
           "registry_name"]
