"""The GPU report's ``profile`` part: ``torch.profiler`` over one epoch of the main job (a fresh model and
optimizer, the engine's own epoch loop): the share of device time in convolution/matmul kernels, in other
kernels and idle (:func:`summarize_kernels`), and the top kernels, written to ``profile_top_kernels.txt``.
"""

from __future__ import annotations

import gc
import re
import time

import torch

from cifarhelpers.files import atomic_write
from cifarhelpers.models import build_model
from cifarhelpers.training import (
    backward_and_step,
    build_criterion,
    build_optimizer,
    device_name,
    prepare_data,
    seed_epoch,
    seed_everything,
    select_precision,
    train_one_epoch,
)

from ..budget import sync
from ..settings import CONV_MATMUL, NOT_CONV_MATMUL, TOP_KERNELS, TOP_KERNELS_TXT


def classify_kernel(name: str) -> str:
    """``"conv_matmul"`` or ``"other"`` by the kernel's (or op's) name."""
    low = name.lower()
    if re.search(CONV_MATMUL, low) and not re.search(NOT_CONV_MATMUL, low):
        return "conv_matmul"
    return "other"


def summarize_kernels(records: list[tuple[str, float, int]], wall_seconds: float, top: int = TOP_KERNELS) -> dict:
    """Device-time shares of an epoch from ``(name, seconds, calls)`` records (one per kernel name).

    Shares are of ``max(wall, kernel total)``: conv/matmul + other + idle = 100%. Idle = wall minus
    the total kernel time, clipped at 0 (kernels on several streams may overlap).
    """
    conv = sum(s for n, s, _ in records if classify_kernel(n) == "conv_matmul")
    total = sum(s for _, s, _ in records)
    other = total - conv
    idle = max(0.0, wall_seconds - total)
    denom = max(wall_seconds, total) or 1.0
    ranked = sorted(records, key=lambda r: r[1], reverse=True)[:top]
    return {
        "wall_seconds": wall_seconds,
        "kernel_seconds": total,
        "conv_matmul_seconds": conv,
        "other_kernel_seconds": other,
        "idle_seconds": idle,
        "conv_matmul_percent": 100.0 * conv / denom,
        "other_kernel_percent": 100.0 * other / denom,
        "idle_percent": 100.0 * idle / denom,
        "kernel_names": len(records),
        "top_kernels": [{"rank": i + 1, "name": n[:300], "seconds": s, "calls": c,
                         "percent_of_kernel_time": 100.0 * s / total if total else 0.0,
                         "category": classify_kernel(n)} for i, (n, s, c) in enumerate(ranked)],
    }


def top_kernels_text(summary: dict, header: str) -> str:
    """The top-kernel table as text (for ``profile_top_kernels.txt``)."""
    lines = [header, "",
             f"epoch wall {summary['wall_seconds']:.3f} s; kernel time {summary['kernel_seconds']:.3f} s; "
             f"conv/matmul {summary['conv_matmul_percent']:.1f}%, other kernels {summary['other_kernel_percent']:.1f}%, "
             f"idle {summary['idle_percent']:.1f}% (of max(wall, kernel time))", "",
             f"{'rank':>4}  {'ms':>10}  {'% kernels':>9}  {'calls':>7}  {'category':<11}  name"]
    for k in summary["top_kernels"]:
        lines.append(f"{k['rank']:>4}  {1000 * k['seconds']:>10.2f}  {k['percent_of_kernel_time']:>9.2f}  "
                     f"{k['calls']:>7}  {k['category']:<11}  {k['name']}")
    return "\n".join(lines) + "\n"


def is_annotation(event) -> bool:
    """Whether a profiler event is a user annotation (a named range over other events), not work."""
    name = str(getattr(event, "name", ""))
    return bool(getattr(event, "is_user_annotation", False)) or name.startswith(("ProfilerStep#", "Optimizer."))


def kernel_records(prof, device: torch.device) -> tuple[list[tuple[str, float, int]], str]:
    """``(name, seconds, calls)`` per kernel name from a finished profiler, and what was measured.

    On CUDA: the device (kernel, memcpy, memset) events' own durations. Elsewhere: CPU ops' self time.
    Annotations on the device's timeline (``record_function`` ranges such as the optimizer's
    ``Optimizer.step#Adam.step``, ``ProfilerStep#N``) span kernels that are counted on their own, so
    they are left out: counted, they would count those kernels' time twice.
    """
    agg: dict[str, list[float]] = {}
    if device.type == "cuda":
        for e in prof.events():
            if is_annotation(e):
                continue
            if str(getattr(e, "device_type", "")).split(".")[-1] in ("CUDA", "HIP"):
                a = agg.setdefault(e.name, [0.0, 0])
                a[0] += e.time_range.elapsed_us() / 1e6
                a[1] += 1
        if agg:
            return [(n, s, int(c)) for n, (s, c) in agg.items()], "CUDA kernels: device time per kernel name"
        for e in prof.key_averages():  # fallback: ops with device time
            t = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
            if t:
                agg[e.key] = [t / 1e6, e.count]
        if agg:
            return ([(n, s, int(c)) for n, (s, c) in agg.items()],
                    "CUDA: no kernel events found; ops' self device time (key_averages)")
    for e in prof.key_averages():
        if e.key.startswith("ProfilerStep") or e.key.startswith("[memory]"):
            continue
        if e.self_cpu_time_total > 0:
            agg[e.key] = [e.self_cpu_time_total / 1e6, e.count]
    return ([(n, s, int(c)) for n, (s, c) in agg.items()],
            f"{device.type.upper()} ops' self CPU time: no CUDA kernels on this device, so 'idle' is time "
            "outside the ops (Python, data)")


def run(ctx, part: dict) -> None:
    """torch.profiler over one epoch of the main job (fresh model and optimizer, the engine's loop)."""
    from torch.profiler import ProfilerActivity, profile

    s, device = ctx.settings, ctx.device
    cfg = ctx.main_config()
    if not ctx.decide("profile", "one profiled epoch", ctx.estimate_profile(), reserve=False):
        return
    prep = prepare_data(cfg, device, ctx.data, progress=False)
    seed_everything(cfg.seed)
    model = build_model(cfg.model).to(device, memory_format=torch.channels_last)
    criterion = build_criterion(cfg)
    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=len(prep.train_loader))
    precision = select_precision(device, amp=cfg.amp)
    scaler = precision.grad_scaler()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    loader = prep.train_loader
    loader.set_epoch(seed_epoch(cfg.seed, 0))
    model.train()
    warm = 0
    for x, y in loader:  # warm-up outside the profiler: cuDNN autotuning, allocator
        if warm >= s.profile_warmup_steps:
            break
        with precision.autocast():
            loss = criterion(model(x), y)
        backward_and_step(loss, optimizer, scaler)
        schedule.after_batch()
        warm += 1
    loader.set_epoch(seed_epoch(cfg.seed, 1))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync(device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        train_one_epoch(model, loader, criterion, optimizer, schedule, device=device, epoch=1, epochs=cfg.epochs,
                        precision=precision, scaler=scaler, channels_last=True, progress=False)
        sync(device)
        wall = time.perf_counter() - start
    records, source = kernel_records(prof, device)
    summary = summarize_kernels(records, wall)
    part.update(summary, source=source, device_type=device.type, steps=len(loader), warmup_steps=warm)
    header = (f"Top {TOP_KERNELS} kernels by device time: one epoch of the main job ({cfg.model}, batch "
              f"{cfg.batch_size}, {len(loader)} steps, device loader, channels-last, "
              f"{precision.describe()}) on {device_name(device)}.\nMeasured: {source}.\n"
              f"conv/matmul = names matching /{CONV_MATMUL}/ but not /{NOT_CONV_MATMUL}/ (case-insensitive).")
    atomic_write(ctx.out_dir / TOP_KERNELS_TXT, lambda f: f.write(top_kernels_text(summary, header).encode()))
    print(f"[profile] epoch {wall:.2f} s: conv/matmul {summary['conv_matmul_percent']:.1f}%, other kernels "
          f"{summary['other_kernel_percent']:.1f}%, idle {summary['idle_percent']:.1f}% ({source})", flush=True)
    del prof, model, optimizer, prep
    gc.collect()
    ctx.save()
