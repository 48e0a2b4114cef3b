"""The GPU report's ``notebooks`` part: notebooks 01-06 (``--notebooks 01-07`` adds the LR sweep notebook) with the
full profile through papermill, in one run folder at one commit; what they measured (notebook 04's test
accuracy, notebook 03's LR suggestion, each notebook's seconds) goes into the report, and the run folder is
packed into ``notebooks.tar.gz`` at the end (:func:`pack_notebooks`, weights left out).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
from pathlib import Path

from cifarhelpers.files import atomic_write
from cifarhelpers.notebook import NOTEBOOKS, TRAIN_JSON, run_notebooks
from cifarhelpers.training import LR_JSON, TrainConfig, resolve_profile

from ..budget import sync
from ..settings import MAX_FILE_BYTES


def run(ctx, part: dict) -> None:
    """Notebooks 01-06 (or the chain ``--notebooks`` names) with papermill, in one run folder at one commit;
    the run folder is packed by :func:`pack_notebooks` at the end."""
    params = {**ctx.notebook_parameters, "data_root": str(ctx.data_root), "device": str(ctx.device)}
    chain = f"notebooks {ctx.notebooks[0][:2]}-{ctx.notebooks[-1][:2]}"
    part["parameters"], part["notebooks_dir"] = params, str(ctx.notebooks_dir)
    if ctx.notebooks_dir is None or not (ctx.notebooks_dir / "01_dataset_statistics.ipynb").is_file():
        raise FileNotFoundError(f"no notebooks in {ctx.notebooks_dir}: pass --notebooks-dir (the repository's "
                                "notebooks/ folder)")
    est = None
    cal = ctx.ensure_calibration()
    if cal is not None:
        s = ctx.settings
        profile = resolve_profile(params.get("profile") or "auto", ctx.device.type)
        base = TrainConfig(**profile.overrides)
        batch = params.get("batch_size") or base.batch_size
        train_images = params.get("train_subset") or base.train_subset or len(ctx.data.y_train)
        epochs = params.get("epochs") or base.epochs
        iters = params.get("lr_test_iterations") or base.lr_test_iterations
        step = cal.step_seconds * batch / s.batch_size  # step time taken as proportional to the batch
        lr_test = cal.fixed_seconds + s.lr_test_step_factor * iters * step
        run = cal.run_seconds(epochs, step_seconds=step, steps=train_images // batch)
        est = ctx.scaled(s.notebooks_fixed_seconds + lr_test + run * (1 + notebook_07_runs(ctx.notebooks, params,
                                                                                             profile)))
    if not ctx.decide("notebooks", chain, est):
        return
    parent = ctx.work_dir / "notebooks"
    sync(ctx.device)
    start = time.perf_counter()
    try:
        run_dir = run_notebooks(params, output_dir=parent, notebooks_dir=ctx.notebooks_dir,
                                notebooks=ctx.notebooks, progress=False)
    finally:
        sync(ctx.device)
        part["wall_seconds"] = time.perf_counter() - start
        found = sorted(p for p in parent.glob("*notebooks*") if p.is_dir())  # new_run_dir: <time>-notebooks
        if found:
            ctx.notebook_run_dir = found[-1]
            _read_notebook_outputs(found[-1], part)
        ctx.save()
    acc = part["test_accuracy_percent"]
    print(f"[notebooks] done in {part['wall_seconds']:.1f} s: notebook 04 test accuracy "
          f"{'-' if acc is None else f'{acc:.2f}%'}; {run_dir}", flush=True)


def notebook_07_runs(notebooks: tuple[str, ...], params: dict, profile) -> int:
    """Trainings notebook 07's sweep runs with ``params`` (its ``max_lrs`` and ``num_seeds``, else the profile's
    grid); 0 when the chain leaves 07 out."""
    if not any(n.startswith("07") for n in notebooks):
        return 0
    lrs = params.get("max_lrs")
    count = len(str(lrs).split(",")) if lrs else len(profile.sweep["max_lrs"])
    return count * int(params.get("num_seeds") or profile.sweep["seeds"])


def _read_notebook_outputs(run_dir: Path, part: dict) -> None:
    train = run_dir / TRAIN_JSON
    if train.is_file():
        info = json.loads(train.read_text())
        part["train_run"] = info
        acc = info.get("final_test_accuracy")
        part["test_accuracy_fraction"] = acc
        part["test_accuracy_percent"] = 100.0 * acc if acc is not None else None
    lr = run_dir / LR_JSON
    if lr.is_file():
        content = json.loads(lr.read_text())
        part["lr_suggestion"] = {"max_lr": content.get("max_lr"), "min_lr": content.get("min_lr"),
                                 "rule": content.get("rule"), "suggestions": content.get("suggestions")}
    for name in NOTEBOOKS:
        path = run_dir / name
        if path.is_file():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
                part["per_notebook_seconds"][name] = meta.get("duration")


def pack_notebooks(run_dir: Path | None, dest: Path, part: dict, reason: str | None = None) -> None:
    """Pack the notebooks' run folder (no ``*.pt``) into ``dest``; drop standalone PNGs (also embedded
    in the executed notebooks) if the archive is over the size limit. Without a run folder, the
    archive holds a note saying why."""
    tar = part["tar"]
    if run_dir is None or not run_dir.is_dir():
        text = f"The notebooks part did not produce a run folder: {reason or 'not run'}\n".encode()

        def write_note(f):
            with tarfile.open(fileobj=f, mode="w:gz") as t:
                info = tarfile.TarInfo("notebooks/NOT_RUN.txt")
                info.size, info.mtime = len(text), int(time.time())
                t.addfile(info, io.BytesIO(text))

        atomic_write(dest, write_note)
        tar.update(size_bytes=dest.stat().st_size, size_mib=round(dest.stat().st_size / 2**20, 3), files=1)
        return
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    excluded = [p for p in files if p.suffix == ".pt" or p.name.endswith(".tmp")]
    kept = [p for p in files if p not in excluded]
    dropped: list[Path] = []
    for attempt in ("all", "no_png"):
        if attempt == "no_png":
            dropped = [p for p in kept if p.suffix == ".png"]
            kept = [p for p in kept if p.suffix != ".png"]

        def write(f, kept=kept):
            with tarfile.open(fileobj=f, mode="w:gz") as t:
                for p in kept:
                    t.add(p, arcname=str(Path("notebooks") / p.relative_to(run_dir)))

        atomic_write(dest, write)
        if dest.stat().st_size <= MAX_FILE_BYTES:
            break
    size = dest.stat().st_size
    tar.update(size_bytes=size, size_mib=round(size / 2**20, 3), files=len(kept),
               excluded=[str(p.relative_to(run_dir)) for p in excluded],
               dropped_to_fit=[str(p.relative_to(run_dir)) for p in dropped])
