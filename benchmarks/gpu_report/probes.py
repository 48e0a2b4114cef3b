"""Short measurements the GPU report's estimates rest on before a real run measured them: a model's seconds
per training step on a synthetic batch (:func:`probe_step_seconds`) and an albumentations DataLoader's images
per second (:func:`probe_loader`, :func:`data_epoch_seconds`).
"""

from __future__ import annotations

import gc
import time

import torch

from cifarhelpers.data import train_transform
from cifarhelpers.models import build_model
from cifarhelpers.training import (
    AlbumentationsLoader,
    TrainConfig,
    backward_and_step,
    seed_epoch,
    select_precision,
    train_statistics,
)

from .budget import sync


def probe_step_seconds(model_name: str, ctx) -> float:
    """Seconds per training step of ``model_name`` at the main batch size on a synthetic batch
    (forward, loss, backward, SGD step; channels-last; the device's precision), after warm-up steps;
    the probe's memory is released before returning. ``ctx``: the report's ``Context``."""
    seconds = _probe_step_seconds(model_name, ctx)
    gc.collect()  # the probe's model and batch are gone once it returned
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds


def _probe_step_seconds(model_name: str, ctx) -> float:
    s, device = ctx.settings, ctx.device
    torch.manual_seed(0)
    model = build_model(model_name).to(device, memory_format=torch.channels_last)
    model.train()
    x = torch.randn(s.batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (s.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    precision = select_precision(device, amp=True)
    scaler = precision.grad_scaler()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as fit() sets it

    def step():
        with precision.autocast():
            loss = criterion(model(x), y)
        backward_and_step(loss, optimizer, scaler)

    for _ in range(s.probe_warmup_steps):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(s.probe_steps):
        step()
    sync(device)
    seconds = (time.perf_counter() - start) / s.probe_steps
    print(f"[{ctx.current_part}] probe: {model_name} {seconds * 1000:.1f} ms per step at batch {s.batch_size}",
          flush=True)
    return seconds


def probe_loader(cfg: TrainConfig, ctx) -> dict:
    """Images/s of the first batches of ``cfg``'s training DataLoader (the albumentations pipeline of
    ``cfg.transform_set`` with ``cfg.num_workers`` workers; workers' start included), batches moved
    to the device.

    Returns:
        ``{"transform_set", "num_workers", "batches", "first_batch_seconds", "seconds", "images_per_second"}``.
    """
    device = ctx.device
    stats = train_statistics(ctx.data)
    n = min(len(ctx.data.y_train), ctx.settings.loader_probe_batches * cfg.batch_size)
    loader = AlbumentationsLoader(ctx.data.x_train[:n], ctx.data.y_train[:n],
                                  train_transform(stats.mean, stats.std, cfg.transform_set),
                                  batch_size=cfg.batch_size, train=True, num_workers=cfg.num_workers or 0,
                                  pin_memory=device.type == "cuda")
    loader.set_epoch(seed_epoch(cfg.seed, 0))
    batches = len(loader)
    sync(device)
    start = time.perf_counter()
    first = None
    images = 0
    for x, y in loader:
        x.to(device, non_blocking=True)
        sync(device)
        if first is None:
            first = time.perf_counter() - start  # workers' start + the first batch
        else:
            images += len(y)
    seconds = time.perf_counter() - start
    del loader
    gc.collect()
    steady = seconds - first
    rate = images / steady if images and steady > 0 else cfg.batch_size / first
    print(f"[{ctx.current_part}] probe: albumentations loader ({cfg.transform_set}, {cfg.num_workers} workers): "
          f"first batch after {first:.2f} s, then {rate:.0f} images/s ({batches} batches)", flush=True)
    return {"transform_set": cfg.transform_set, "num_workers": cfg.num_workers, "batches": batches,
            "first_batch_seconds": first, "seconds": seconds, "images_per_second": rate}


def data_epoch_seconds(probe: dict, images: int) -> float:
    """A DataLoader epoch's data time from a probe: workers' start (every epoch: the workers are not
    persistent) plus the images at the steady rate."""
    return probe["first_batch_seconds"] + images / probe["images_per_second"]
