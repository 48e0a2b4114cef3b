"""The numeric precision of a run, chosen by the device: bf16, fp16 with a GradScaler, or fp32.

=====================================================  ==========================================
device                                                 ``amp=True`` gives
=====================================================  ==========================================
CUDA GPU, compute capability >= 8.0 (A100, H100, L4)   bf16 autocast (no loss scaling needed)
CUDA GPU, compute capability < 8.0 (T4, V100)          fp16 autocast + ``torch.amp.GradScaler``
CPU, Apple MPS                                         fp32 (autocast off)
=====================================================  ==========================================

bf16 has fp32's exponent range, so gradients do not underflow and no scaler is needed; GPUs
before Ampere (compute capability 8.0) have no bf16 tensor cores and emulate it slowly or not at
all, so they get fp16, whose narrow range needs dynamic loss scaling (Micikevicius et al., "Mixed
Precision Training", 2018; PyTorch's AMP recipe, https://pytorch.org/docs/stable/amp.html).
``amp=False`` is fp32 everywhere.

Example::

    precision = select_precision(torch.device("cuda"))   # Precision(name='bf16', ...) on an H100
    scaler = precision.grad_scaler()                     # None unless fp16
    with precision.autocast():
        loss = criterion(model(images), labels)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

#: Compute capability from which CUDA GPUs get bf16 (Ampere and newer).
BF16_MIN_CAPABILITY = (8, 0)
PRECISIONS = ("bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass(frozen=True)
class Precision:
    """How a run computes its forward pass and loss.

    Attributes:
        name: ``"bf16"``, ``"fp16"`` or ``"fp32"``.
        device_type: ``torch.device.type`` the autocast applies to (``"cuda"``, ``"cpu"``, ``"mps"``).
        reason: why this precision was chosen (device, compute capability, ``amp``), for logs
            and ``metrics.json``.

    Raises:
        ValueError: an unknown ``name``.
    """

    name: str
    device_type: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"precision {self.name!r} is unknown: choose one of {list(PRECISIONS)}")

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype (``torch.bfloat16`` or ``torch.float16``), None for fp32."""
        return _DTYPES[self.name]

    @property
    def uses_grad_scaler(self) -> bool:
        """True for fp16, whose gradients need dynamic loss scaling."""
        return self.name == "fp16"

    def autocast(self):
        """``torch.autocast`` for this precision; a no-op context for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A fresh ``torch.amp.GradScaler`` for fp16, None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.uses_grad_scaler else None

    def describe(self) -> str:
        """One line for logs, e.g. ``"bf16 autocast (CUDA compute capability 9.0 >= 8.0)"``."""
        what = {"bf16": "bf16 autocast", "fp16": "fp16 autocast + GradScaler", "fp32": "fp32"}[self.name]
        return f"{what} ({self.reason})" if self.reason else what

    def to_dict(self) -> dict:
        """JSON-ready: name, device type, autocast dtype (or None), grad scaler, reason."""
        return {"name": self.name, "device_type": self.device_type,
                "autocast_dtype": None if self.dtype is None else str(self.dtype).replace("torch.", ""),
                "grad_scaler": self.uses_grad_scaler, "reason": self.reason}


def select_precision(device: torch.device | str, amp: bool = True,
                     capability: tuple[int, int] | None = None) -> Precision:
    """The precision a run on ``device`` uses (see the module's table).

    Args:
        device: the training device.
        amp: mixed precision wanted (``TrainConfig.amp``); False gives fp32 everywhere.
        capability: the CUDA compute capability ``(major, minor)``; None reads it from the device
            (pass it to decide for another GPU, e.g. in tests).

    Returns:
        :class:`Precision`.
    """
    device = torch.device(device)
    if not amp:
        return Precision("fp32", device.type, "amp=False")
    if device.type != "cuda":
        return Precision("fp32", device.type, f"{device.type.upper()} trains in fp32; autocast is for CUDA GPUs")
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    major, minor = capability
    text = f"CUDA compute capability {major}.{minor}"
    if tuple(capability) >= BF16_MIN_CAPABILITY:
        return Precision("bf16", "cuda", f"{text} >= 8.0")
    return Precision("fp16", "cuda", f"{text} < 8.0: no fast bf16, so fp16 with loss scaling")


__all__ = ["BF16_MIN_CAPABILITY", "PRECISIONS", "Precision", "select_precision"]
