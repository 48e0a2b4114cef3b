"""The GPU report's ``peer`` part: airbench94 from PyPI on the same data copy and card as the main job.

Source: ``airbench`` 0.1.8 on PyPI (Keller Jordan, https://github.com/KellerJordan/cifar10-airbench; paper
"94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv:2404.00498). Its ``train94`` is published at
94.01% mean test accuracy (with its full test-time augmentation, n=1000 runs) on the original CIFAR-10 in
3.83 s on an NVIDIA A100 (``airbench94.py``). Run on our JPEG copy, its accuracy says what the copy costs
a strong recipe (``drop_points`` = 94.01 minus its full-TTA mean here), and its time is the speed bar.

The package reads ``<folder>/train.pt`` and ``<folder>/test.pt`` (a dict: ``images`` uint8 (N, 32, 32, 3)
HWC RGB, ``labels`` int64 (N,), ``classes`` the 10 names) and downloads torchvision's CIFAR-10 when they
are missing; ``train94`` builds its test loader as ``CifarLoader('cifar10', train=False)``, a path relative
to the working directory. So the part writes both files from cifarhelpers' loader into
``<work>/peer/cifar10/`` and runs there (the working directory is restored afterwards).

On CUDA: one warm-up (``airbench.warmup94()``, one step), then :data:`RUNS` runs (``train94()``, seeds
0..4 via ``torch.manual_seed``), each evaluated plain, with flip TTA and with its full TTA (flip +
1-pixel translations; ``airbench.evaluate`` at ``tta_level`` 0, 1, 2). The package calls ``.cuda()``
and ``.half()``, so on a CPU (``--smoke``) the part checks the import and the files it would read
(shapes, dtypes, labels, class order, read back through airbench's own ``CifarLoader``); a CPU run is
``benchmarks/airbench_cpu_port.py``'s (``results/cpu-airbench94/``).

Seconds: ``airbench_seconds`` is the package's own timer (whitening init + training epochs + the final
full-TTA pass, per-epoch evaluations excluded: how the 3.83 s is measured); ``wall_seconds`` the whole
``train94`` call (model build, loaders, per-epoch evaluations), with ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cifarhelpers.data import CLASSES, IMAGE_SHAPE, balanced_subset
from cifarhelpers.errors import DataError, require

PUBLISHED = {"test_accuracy_full_tta_percent": 94.01, "seconds": 3.83, "device": "NVIDIA A100",
             "data": "the original CIFAR-10", "runs": 1000,
             "source": "airbench 0.1.8 README and lib_airbench94.py; arXiv:2404.00498"}
RUNS = 5
#: train94's test loader reads this folder relative to the working directory.
DATA_DIR = "cifar10"
TTA_LEVELS = {"plain": 0, "flip": 1, "full": 2}  # airbench.evaluate's tta_level
TEST_BATCH = 2000  # train94's own test loader batch
#: Estimates before anything was measured (safety factor applied by the report): writing 60,000 images,
#: one warm-up (CUDA context, cuDNN autotuning), one run with its three evaluations.
FILES_GUESS_SECONDS = 15.0
WARMUP_GUESS_SECONDS = 30.0
RUN_GUESS_SECONDS = 15.0
CPU_NOTE = ("airbench calls .cuda() and .half(): on a CPU this part checks the import and the files it would read "
            "only; the CPU run is benchmarks/airbench_cpu_port.py's (results/cpu-airbench94/)")


def import_airbench():
    """The ``airbench`` module. Raises MissingDependencyError naming the ``benchmark`` extra when absent."""
    return require("airbench", "benchmark", "the GPU report's peer part (airbench94)")


def write_airbench_files(data, dest: Path, train_subset: int | None = None, test_subset: int | None = None,
                         seed: int = 0) -> dict:
    """Write ``dest/train.pt`` and ``dest/test.pt`` in airbench's format from a :class:`CIFAR10Data`.

    Args:
        data: cifarhelpers' loaded copy (``x_*`` uint8 (N, 32, 32, 3) HWC RGB, ``y_*`` int64 (N,)).
        dest: the folder (created); airbench's ``CifarLoader(dest)`` reads it.
        train_subset, test_subset: class-balanced seeded draws (cifarhelpers.data.subsets), None: all images.

    Returns:
        ``{"dir", "train_images", "test_images", "bytes", "seconds"}``.
    """
    start = time.perf_counter()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    splits = {"train": balanced_subset(data.x_train, data.y_train, train_subset, seed, name="train_subset"),
              "test": balanced_subset(data.x_test, data.y_test, test_subset, seed, name="test_subset")}
    for split, (x, y) in splits.items():
        blob = {"images": torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)),
                "labels": torch.from_numpy(np.asarray(y, dtype=np.int64)), "classes": list(data.classes)}
        torch.save(blob, dest / f"{split}.pt")
        total += (dest / f"{split}.pt").stat().st_size
    return {"dir": str(dest), "train_images": len(splits["train"][1]), "test_images": len(splits["test"][1]),
            "bytes": total, "seconds": time.perf_counter() - start}


def check_airbench_files(dest: Path, expected: dict | None = None, airbench=None) -> dict:
    """Check the files airbench would read: keys, shapes, dtypes, label range, class order (and counts).

    Args:
        dest: the folder holding ``train.pt`` and ``test.pt``.
        expected: ``{"train": N, "test": M}`` image counts, when known.
        airbench: the module; when given, each file is also read through ``airbench.CifarLoader`` on the
            CPU (images (N, 3, 32, 32) in [0, 1], the same labels and classes).

    Returns:
        ``{split: {"images", "shape", "dtype", "labels_dtype", "classes", "label_counts"}}``.

    Raises:
        DataError: a file is missing or differs from the format (named, with the fix).
    """
    fix = "rewrite it with benchmarks/peer_airbench.py's write_airbench_files from cifarhelpers' loader"
    out = {}
    for split in ("train", "test"):
        path = Path(dest) / f"{split}.pt"
        if not path.is_file():  # airbench would download torchvision's CIFAR-10 in its place
            raise DataError(f"{path} is missing (airbench would download the original CIFAR-10 instead): {fix}")
        blob = torch.load(path, weights_only=True)
        problems = []
        if not isinstance(blob, dict) or set(blob) != {"images", "labels", "classes"}:
            raise DataError(f"{path} holds {type(blob).__name__} {sorted(blob) if isinstance(blob, dict) else ''}, "
                            f"not a dict of images, labels, classes: {fix}")
        x, y = blob["images"], blob["labels"]
        if x.dtype != torch.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            problems.append(f"images {x.dtype} {tuple(x.shape)}, expected uint8 (N, 32, 32, 3)")
        if y.dtype != torch.int64 or y.shape != (len(x),):
            problems.append(f"labels {y.dtype} {tuple(y.shape)}, expected int64 ({len(x)},)")
        elif len(y) and (int(y.min()) < 0 or int(y.max()) >= len(CLASSES)):
            problems.append(f"labels in [{int(y.min())}, {int(y.max())}], expected [0, 9]")
        if list(blob["classes"]) != list(CLASSES):
            problems.append(f"classes {blob['classes']}, expected torchvision's order {list(CLASSES)}")
        if expected and expected.get(split) is not None and len(x) != expected[split]:
            problems.append(f"{len(x)} images, expected {expected[split]}")
        if problems:
            raise DataError(f"{path}: {'; '.join(problems)}: {fix}")
        if airbench is not None:
            loader = airbench.CifarLoader(str(dest), train=split == "train", batch_size=TEST_BATCH, gpu="cpu")
            img = loader.images
            if (tuple(img.shape) != (len(x), 3, 32, 32) or not torch.equal(loader.labels, y)
                    or list(loader.classes) != list(CLASSES) or float(img.min()) < 0 or float(img.max()) > 1):
                raise DataError(f"{path}: airbench.CifarLoader reads images {tuple(img.shape)} and other labels or "
                                f"classes than the file holds: {fix}")
        out[split] = {"images": len(x), "shape": list(x.shape), "dtype": str(x.dtype), "labels_dtype": str(y.dtype),
                      "classes": list(blob["classes"]),
                      "label_counts": torch.bincount(y, minlength=len(CLASSES)).tolist(),
                      "read_by_airbench_cifarloader": airbench is not None}
    return out


@contextlib.contextmanager
def working_directory(path: Path):
    """``os.chdir(path)`` for the block (airbench reads ``'cifar10'`` relative to it), restored after."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def parse_airbench_seconds(printed: str) -> float | None:
    """``total_time_seconds`` of the ``eval`` row of the table ``train94(verbose=True)`` prints (seconds), or None."""
    for line in reversed(printed.splitlines()):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and cells[1] == "eval":
            with contextlib.suppress(ValueError):
                return float(cells[-1])
    return None


def evaluate_tta(airbench, model, loader) -> dict:
    """Test accuracy in percent at every :data:`TTA_LEVELS` with ``airbench.evaluate`` (keys
    ``test_accuracy_percent``, ``test_accuracy_flip_tta_percent``, ``test_accuracy_full_tta_percent``)."""
    acc = {name: 100.0 * airbench.evaluate(model, loader, tta_level=level) for name, level in TTA_LEVELS.items()}
    return {"test_accuracy_percent": acc["plain"], "test_accuracy_flip_tta_percent": acc["flip"],
            "test_accuracy_full_tta_percent": acc["full"]}


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so a clock read after it times the work; no-op elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Echo(io.StringIO):
    """A StringIO that also writes through to ``stream``."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.stream.flush()
        return super().write(text)


def run_once(airbench, seed: int, device: torch.device, **train_kwargs) -> dict:
    """One ``train94`` run (seeded), timed, then evaluated at the three TTA levels; the working
    directory must hold :data:`DATA_DIR`. ``train_kwargs`` go to ``train94`` (the CPU port passes its
    loader and network builder). Returns the run's record (percent, seconds)."""
    torch.manual_seed(seed)
    printed = _Echo(sys.stdout)  # the package's table, kept and shown as it trains
    sync(device)
    start = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        model = airbench.train94(run=seed, **train_kwargs)
    sync(device)
    wall = time.perf_counter() - start
    # the class train() builds its own test loader with (on a CPU, the port's patched one)
    loader = airbench.utils.CifarLoader(DATA_DIR, train=False, batch_size=TEST_BATCH,
                                        gpu=(device.index or 0) if device.type == "cuda" else "cpu")
    start = time.perf_counter()
    acc = evaluate_tta(airbench, model, loader)
    sync(device)
    table = printed.getvalue()
    return {"label": f"run{seed}", "status": "completed", "seed": seed, **acc, "wall_seconds": wall,
            "airbench_seconds": parse_airbench_seconds(table), "evaluation_seconds": time.perf_counter() - start,
            "printed": table.splitlines()[-14:], "error": None}


def summarize(runs: list[dict], main_job_wall_seconds: float | None = None) -> dict:
    """Mean, sample std, min and max over completed runs of each accuracy (percent) and time (seconds);
    ``drop_points`` = the published 94.01 minus the full-TTA mean; the main job's mean wall seconds beside it."""
    done = [r for r in runs if r.get("status") == "completed"]
    out: dict = {"runs_completed": len(done), "seeds": [r["seed"] for r in done]}
    for key in ("test_accuracy_percent", "test_accuracy_flip_tta_percent", "test_accuracy_full_tta_percent",
                "airbench_seconds", "wall_seconds"):
        vals = [r[key] for r in done if r.get(key) is not None]
        out[f"{key}_mean"] = statistics.mean(vals) if vals else None
        out[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out[f"{key}_min"] = min(vals) if vals else None
        out[f"{key}_max"] = max(vals) if vals else None
    full = out["test_accuracy_full_tta_percent_mean"]
    out["drop_points"] = None if full is None else PUBLISHED["test_accuracy_full_tta_percent"] - full
    out["main_job_wall_seconds_mean"] = main_job_wall_seconds
    wall = out["wall_seconds_mean"]
    out["main_job_vs_airbench_wall_ratio"] = (main_job_wall_seconds / wall) if main_job_wall_seconds and wall else None
    return out


def part_fields() -> dict:
    """The part's own keys in ``gpu_report.json`` (beside the common ones every part has)."""
    return {"package": None, "published": PUBLISHED, "files": None, "files_check": None, "warmup_seconds": None,
            "runs": [], "summary": summarize([]), "units": {
                "*_percent": "percent of test images correct, 0-100 (plain, flip TTA, full TTA = flip + translate)",
                "airbench_seconds": "airbench's own timer: whitening init + training + final TTA pass, wall-clock",
                "wall_seconds": "the whole train94 call, torch.cuda.synchronize() before each clock read",
                "drop_points": "percentage points: 94.01 (published, original CIFAR-10) minus the full-TTA mean here"}}


def run_part(ctx, part: dict) -> None:
    """The report's runner (``RUNNERS["peer"]``): files, then (CUDA only) warm-up and :data:`RUNS` runs, each
    decided against the budget. ``ctx`` is the report's Context (settings, data, device, work_dir, decide)."""
    airbench = import_airbench()
    import importlib.metadata as md

    part["package"] = {"name": "airbench", "version": md.version("airbench"), "module": airbench.__file__}
    s = ctx.settings
    folder = Path(ctx.work_dir) / "peer"
    if not ctx.decide("peer", "write and check train.pt/test.pt", ctx.scaled(FILES_GUESS_SECONDS)):
        return
    part["files"] = write_airbench_files(ctx.data, folder / DATA_DIR, s.train_subset, s.test_subset)
    on_cpu = ctx.device.type != "cuda"
    part["files_check"] = check_airbench_files(folder / DATA_DIR, {"train": part["files"]["train_images"],
                                                                   "test": part["files"]["test_images"]},
                                               airbench if on_cpu else None)
    print(f"[peer] airbench {part['package']['version']}: {part['files']['train_images']} train / "
          f"{part['files']['test_images']} test images written and checked ({part['files']['seconds']:.1f} s)",
          flush=True)
    ctx.save()
    if on_cpu:
        part["notes"].append(CPU_NOTE)
        return
    with working_directory(folder):
        if not ctx.decide("peer", "warm-up", ctx.scaled(WARMUP_GUESS_SECONDS)):
            return
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            airbench.warmup94()
        sync(ctx.device)
        part["warmup_seconds"] = time.perf_counter() - start
        for seed in range(RUNS):
            done = [r["wall_seconds"] + r["evaluation_seconds"] for r in part["runs"] if r["status"] == "completed"]
            if not ctx.decide("peer", f"run{seed}", ctx.scaled(statistics.mean(done) if done else RUN_GUESS_SECONDS)):
                break
            try:
                rec = run_once(airbench, seed, ctx.device)
            except Exception as err:  # recorded; the next run goes on
                rec = {"label": f"run{seed}", "status": "failed", "seed": seed,
                       "error": ctx.note_error(f"peer run{seed}", err)}
            part["runs"].append(rec)
            print(f"[peer] run{seed}: " + (f"{rec['test_accuracy_percent']:.2f}% plain, "
                                           f"{rec['test_accuracy_flip_tta_percent']:.2f}% flip, "
                                           f"{rec['test_accuracy_full_tta_percent']:.2f}% full TTA; airbench "
                                           f"{rec['airbench_seconds']} s, wall {rec['wall_seconds']:.2f} s"
                                           if rec["status"] == "completed" else rec["error"]), flush=True)
            ctx.save()
    walls = [r["wall_seconds"] for r in ctx.part("main_job")["runs"]
             if r.get("status") == "completed" and r.get("wall_seconds")]
    part["summary"] = summarize(part["runs"], statistics.mean(walls) if walls else None)
    ctx.save()


def summary_rows(part: dict) -> list[dict]:
    """Rows for the report's summary table: one per run, then the mean over the runs."""
    rows = [{"part": "peer", "item": f"airbench94 {r['label']}", "status": r["status"],
             "test_accuracy_percent": r.get("test_accuracy_percent"),
             "test_accuracy_flip_tta_percent": r.get("test_accuracy_flip_tta_percent"),
             "wall_seconds": r.get("wall_seconds"), "seconds_per_epoch": None,
             "note": (f"full TTA {r['test_accuracy_full_tta_percent']:.2f}%, airbench timer {r['airbench_seconds']} s"
                      if r["status"] == "completed" else str(r.get("error"))[:80])} for r in part["runs"]]
    s = part["summary"]
    if s["runs_completed"]:
        sd = s["test_accuracy_full_tta_percent_std"]
        rows.append({"part": "peer", "item": f"airbench94 mean of {s['runs_completed']}", "status": "completed",
                     "test_accuracy_percent": s["test_accuracy_percent_mean"],
                     "test_accuracy_flip_tta_percent": s["test_accuracy_flip_tta_percent_mean"],
                     "wall_seconds": s["wall_seconds_mean"], "seconds_per_epoch": None,
                     "note": f"full TTA {s['test_accuracy_full_tta_percent_mean']:.2f}%"
                             + (f" (sd {sd:.2f})" if sd is not None else "")
                             + f"; d = 94.01 - full TTA = {s['drop_points']:.2f} points"})
    elif part.get("files_check"):
        rows.append({"part": "peer", "item": "airbench94 files", "status": part["status"],
                     "test_accuracy_percent": None, "wall_seconds": None, "seconds_per_epoch": None,
                     "note": f"{part['files']['train_images']}/{part['files']['test_images']} images checked"
                             + ("; no runs on a CPU" if CPU_NOTE in part["notes"] else "")})
    return rows
