"""Train and test loops with tqdm progress bars.

The loops keep the running loss and correct count on the training device and read them back only
every ``sync_every`` steps (every step on CPU, where reading is free; once per epoch on a GPU), so
a GPU is never stalled waiting for the host. Each step's loss is recorded on the device too, so when a
read-back finds a NaN or infinite loss the exact epoch, step and LR are reported.

Horizontal-flip test-time augmentation (:func:`predict_flip_tta`, :func:`evaluate_flip_tta`) is
defined here once, for training runs and ``cifar-eval`` alike: :data:`FLIP_TTA_METHOD`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from cifarhelpers.errors import DivergenceError

from .precision import Precision
from .schedules import Schedule


@dataclass
class EpochResult:
    """What one pass over a loader measured.

    Attributes:
        loss: mean loss per image.
        accuracy: fraction of images classified correctly, in [0, 1].
        images: number of images seen.
        seconds: wall-clock seconds of the pass (including data loading).
        lr: LR of the last optimizer step (training passes only; None for evaluation).
        step_losses: each optimizer step's loss, mean over its batch (training passes only).
        step_lrs: the LR each optimizer step used (training passes only).
    """

    loss: float
    accuracy: float
    images: int
    seconds: float
    lr: float | None = None
    step_losses: list[float] = field(default_factory=list)
    step_lrs: list[float] = field(default_factory=list)


#: Horizontal-flip test-time augmentation, as every run and ``cifar-eval`` compute it (common practice
#: in David Page's cifar10-fast, https://github.com/davidcpage/cifar10-fast, and Keller Jordan's
#: airbench, https://github.com/KellerJordan/cifar10-airbench).
FLIP_TTA_METHOD = "mean of the softmax over the image and its horizontal flip"


def _fp32(device: torch.device) -> Precision:
    return Precision("fp32", device.type)


def _to_device(images: torch.Tensor, labels: torch.Tensor, device: torch.device, channels_last: bool):
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=True)


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                      scaler: torch.amp.GradScaler | None = None) -> None:
    """Zero the gradients, backpropagate ``loss`` and step ``optimizer``; with a GradScaler (fp16)
    the loss is scaled first, the step skipped when the scaled gradients hold inf or NaN, and the
    scale updated."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    *,
    device: torch.device,
    epoch: int = 0,
    epochs: int = 1,
    precision: Precision | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    sync_every: int | None = None,
    progress: bool = True,
) -> EpochResult:
    """One training pass: forward, loss, backward, optimizer step, ``schedule.after_batch()``.

    Args:
        model: in any mode; set to ``train()`` here.
        loader: yields (images (B, 3, H, W) float32, labels (B,) int64).
        criterion: loss on (logits, labels), mean over the batch.
        optimizer, schedule: from :func:`cifarhelpers.training.recipes.build_optimizer`.
        device: where the model lives; batches are moved there.
        epoch, epochs: 0-based epoch index and total, for messages and the progress bar.
        precision: the autocast to run under (:func:`cifarhelpers.training.precision.select_precision`);
            None is fp32.
        scaler: a ``torch.amp.GradScaler`` for fp16 (``precision.grad_scaler()``): the loss is
            scaled before backward and steps with inf/NaN gradients are skipped; None steps plainly.
        channels_last: move images in channels-last memory format.
        sync_every: read the running figures back every this many steps (None: every step on
            CPU, once per epoch elsewhere; the progress bar's postfix updates at each read).
        progress: show a tqdm bar with loss, accuracy and lr.

    Returns:
        :class:`EpochResult` of the pass (loss and accuracy on the augmented training batches).

    Raises:
        DivergenceError: a step's loss was NaN or infinite (names the epoch, step and LR).
    """
    model.train()
    precision = precision or _fp32(device)
    steps = len(loader)
    sync_every = sync_every or (1 if device.type == "cpu" else steps)
    step_losses = torch.zeros(steps, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    lrs: list[float] = []
    seen = 0
    checked = 0
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{epochs} train", unit="batch", leave=False, disable=not progress)
    for step, (images, labels) in enumerate(loader):
        images, labels = _to_device(images, labels, device, channels_last)
        lrs.append(schedule.lr)
        with precision.autocast():
            logits = model(images)
            loss = criterion(logits, labels)
        backward_and_step(loss, optimizer, scaler)
        schedule.after_batch()
        with torch.no_grad():
            loss = loss.detach().float()
            step_losses[step] = loss
            loss_sum += loss * labels.shape[0]
            correct += (logits.argmax(dim=1) == labels).sum()
        seen += labels.shape[0]
        if (step + 1) % sync_every == 0 or step + 1 == steps:
            window = step_losses[checked : step + 1]
            bad = (~torch.isfinite(window)).nonzero()
            if len(bad):
                first = checked + int(bad[0])
                bar.close()
                raise DivergenceError(
                    f"training diverged: loss is {float(step_losses[first])} at epoch {epoch + 1}/{epochs}, "
                    f"step {first + 1}/{steps}, lr {lrs[first]:.3g}. Lower the max LR (try a tenth of it, or "
                    "run the LR range test) and start again."
                )
            checked = step + 1
            bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{100.0 * int(correct) / seen:.1f}%",
                            lr=f"{lrs[-1]:.2e}", refresh=False)
        bar.update(1)
    bar.close()
    if seen == 0:
        raise ValueError("the training loader yielded no batches")
    return EpochResult(loss=float(loss_sum) / seen, accuracy=int(correct) / seen, images=seen,
                       seconds=time.perf_counter() - start, lr=lrs[-1], step_losses=step_losses.tolist(),
                       step_lrs=lrs)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    criterion: nn.Module,
    *,
    device: torch.device,
    precision: Precision | None = None,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "test",
) -> EpochResult:
    """Mean loss and accuracy of ``model`` (in ``eval()`` mode) over ``loader``, under
    ``precision``'s autocast (None: fp32); the loss is computed in fp32.

    Returns:
        :class:`EpochResult` with ``lr=None``; accuracy is a fraction in [0, 1].
    """
    model.eval()
    precision = precision or _fp32(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for images, labels in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        images, labels = _to_device(images, labels, device, channels_last)
        with precision.autocast():
            logits = model(images)
        loss_sum += criterion(logits.float(), labels) * labels.shape[0]
        correct += (logits.argmax(dim=1) == labels).sum()
        seen += labels.shape[0]
    if seen == 0:
        raise ValueError("the evaluation loader yielded no batches")
    return EpochResult(loss=float(loss_sum) / seen, accuracy=int(correct) / seen, images=seen,
                       seconds=time.perf_counter() - start)


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, *, device: torch.device, precision: Precision | None = None,
            channels_last: bool = False, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every image of ``loader``, in loader order, under ``precision``'s
    autocast (None: fp32).

    Returns:
        ``(logits, labels)``: (N, num_classes) float32 and (N,) int64, both on the CPU.

    Raises:
        ValueError: the loader yielded no batches.
    """
    precision = precision or _fp32(device)

    def logits(images: torch.Tensor) -> torch.Tensor:
        with precision.autocast():
            return model(images).float()

    outputs, labels = _batched(model, loader, logits, device=device, channels_last=channels_last, progress=progress,
                               desc="predict")
    return outputs.cpu(), labels.cpu()


def _batched(model: nn.Module, loader: Iterable, forward, *, device: torch.device, channels_last: bool,
             progress: bool, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``forward(images)`` of every batch of ``loader`` with ``model`` in eval mode, concatenated in loader
    order, with the labels: ``(outputs (N, ...), labels (N,))``, on ``device``.

    Raises:
        ValueError: the loader yielded no batches.
    """
    model.eval()
    all_outputs, all_labels = [], []
    for images, labels in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        images, labels = _to_device(images, labels, device, channels_last)
        all_outputs.append(forward(images))
        all_labels.append(labels)
    if not all_labels:
        raise ValueError("the evaluation loader yielded no batches")
    return torch.cat(all_outputs), torch.cat(all_labels)


def flip_tta_probabilities(model: nn.Module, images: torch.Tensor, precision: Precision) -> torch.Tensor:
    """:data:`FLIP_TTA_METHOD` for one batch: the mean of ``softmax(model(images))`` and of the
    softmax of the mirrored (left-right flipped) images' logits.

    Args:
        model: in ``eval()`` mode, on the images' device.
        images: (B, 3, H, W) normalized float, on the model's device (channels-last kept).
        precision: the autocast of the two forward passes.

    Returns:
        (B, C) float32 class probabilities (rows sum to 1), on the images' device.
    """
    mirrored = images.flip(-1)  # (B, 3, H, W) mirrored left-right, in the images' memory format
    with precision.autocast():
        logits, mirrored_logits = model(images), model(mirrored)
    return (torch.softmax(logits.float(), dim=1) + torch.softmax(mirrored_logits.float(), dim=1)) / 2


@torch.no_grad()
def predict_flip_tta(model: nn.Module, loader: Iterable, *, device: torch.device, precision: Precision | None = None,
                     channels_last: bool = False, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip-TTA probabilities (:func:`flip_tta_probabilities`) of every image of ``loader``, in
    loader order, batched on ``device`` (a device loader's test set is already there; nothing is
    read back to the host).

    Args:
        model: set to ``eval()`` here.
        loader: yields (images (B, 3, H, W) float32 normalized, labels (B,) int64), unaugmented.
        device, precision, channels_last, progress: as :func:`evaluate`.

    Returns:
        ``(probabilities, labels)``: (N, C) float32 and (N,) int64, both on ``device``.

    Raises:
        ValueError: the loader yielded no batches.
    """
    precision = precision or _fp32(device)
    return _batched(model, loader, lambda images: flip_tta_probabilities(model, images, precision), device=device,
                    channels_last=channels_last, progress=progress, desc="test, flip TTA")


def evaluate_flip_tta(model: nn.Module, loader: Iterable, *, device: torch.device, precision: Precision | None = None,
                      channels_last: bool = False, progress: bool = True) -> EpochResult:
    """Accuracy and loss of ``model`` over ``loader`` under horizontal-flip TTA (:data:`FLIP_TTA_METHOD`):
    :func:`predict_flip_tta`, then one read-back.

    Returns:
        :class:`EpochResult` with ``lr=None``: accuracy a fraction in [0, 1] (arg-max of the averaged
        probabilities), loss the mean ``-log`` of the averaged probability of the true class (nats per
        image), seconds the wall-clock seconds of the pass.

    Raises:
        ValueError: the loader yielded no batches.
    """
    start = time.perf_counter()
    probabilities, labels = predict_flip_tta(model, loader, device=device, precision=precision,
                                             channels_last=channels_last, progress=progress)
    true_class = probabilities.gather(1, labels[:, None]).squeeze(1)
    loss = -true_class.clamp_min(torch.finfo(torch.float32).tiny).log().mean()
    correct = (probabilities.argmax(dim=1) == labels).sum()
    return EpochResult(loss=float(loss), accuracy=int(correct) / len(labels), images=len(labels),
                       seconds=time.perf_counter() - start)


def check_epoch_finite(train: EpochResult, test: EpochResult, *, epoch: int, epochs: int, steps: int) -> None:
    """Raise DivergenceError when an epoch's train or test loss is NaN or infinite.

    :func:`train_one_epoch` already stops at a non-finite step loss; this catches weights that
    became non-finite in the last step, which only the evaluation shows.

    Args:
        train, test: the epoch's results.
        epoch, epochs: 0-based epoch index and total, for the message.
        steps: optimizer steps per epoch, for the message.

    Raises:
        DivergenceError: names the epoch, step and LR and what to change.
    """
    if math.isfinite(train.loss) and math.isfinite(test.loss):
        return
    raise DivergenceError(
        f"training diverged: the test loss is {test.loss} (train loss {train.loss}) after epoch "
        f"{epoch + 1}/{epochs}, step {steps}/{steps}, lr {train.lr:.3g}: the weights are no longer "
        "finite. Lower the max LR (try a tenth of it, or run the LR range test) and start again."
    )
