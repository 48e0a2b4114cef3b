"""Train a CIFAR-10 model from one config: :func:`fit`, the main job's recipe read top to bottom.

From Python::

    from cifarhelpers.training import TrainConfig, fit, resume_config
    result = fit(TrainConfig(epochs=24, max_lr=0.005))
    result.final_test_accuracy, result.run_dir
    result = fit(resume_config("runs/20261122-101500-custom_resnet"))   # after a crash

From the shell: ``cifar-train`` (:mod:`cifarhelpers.cli.train`). Every run writes a new folder under
``output_dir`` (:mod:`cifarhelpers.training.run_folder`): ``metrics.json`` (status, config, per-epoch history,
final test accuracy plain and with horizontal-flip TTA, timings, device, the loader in use, precision,
torch version, data source and hash),
``checkpoint.pt`` (rewritten atomically after every epoch), ``model.pt`` (the final ``state_dict``,
loadable with ``torch.load(weights_only=True)``), ``curves.png``, ``history.csv`` and ``steps.csv``
(per epoch and per step), TensorBoard event files when TensorBoard is installed, and with
``max_lr="find"`` the LR range test run first (``lr_range_test.json``, ``lr_range_test.png``).
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from cifarhelpers import __version__
from cifarhelpers.data import CIFAR10Data
from cifarhelpers.files import ensure_writable_dir
from cifarhelpers.models import build_model, count_parameters

from .checkpoint import check_resumable, load_weights, restore_training_state, training_state
from .config import FIND_LR, TrainConfig
from .devices import device_name, resolve_device
from .engine import check_epoch_finite, evaluate, evaluate_flip_tta, train_one_epoch
from .loaders import Prepared, prepare_data
from .lr_range_test import describe_lr, range_test_for_run
from .plots import plot_curves
from .precision import Precision, select_precision
from .recipes import build_criterion, build_optimizer
from .reproducibility import seed_epoch, seed_everything
from .run_folder import UNITS, RunFolder, resumable_checkpoint


@dataclass
class RunResult:
    """What :func:`fit` returns.

    Attributes:
        run_dir: the run's folder.
        history: per-epoch dicts (epoch, train_loss, train_accuracy, test_loss, test_accuracy, lr,
            train_seconds, test_seconds, seconds; the last epoch's also test_accuracy_flip_tta and
            flip_tta_seconds); accuracies are fractions in [0, 1].
        final_test_accuracy: test accuracy after the last epoch, a fraction in [0, 1] (the headline).
        metrics: the content of ``metrics.json``.
        model: the trained model (on the training device, eval mode).
        steps: per-step dicts (epoch, step, global_step, loss, lr), the rows of ``steps.csv``.
        final_test_accuracy_flip_tta: test accuracy after the last epoch under horizontal-flip TTA
            (:data:`~cifarhelpers.training.engine.FLIP_TTA_METHOD`), a fraction in [0, 1].
    """

    run_dir: Path
    history: list[dict]
    final_test_accuracy: float
    metrics: dict
    model: nn.Module
    steps: list[dict] = field(default_factory=list)
    final_test_accuracy_flip_tta: float | None = None


def fit(cfg: TrainConfig, *, data: CIFAR10Data | None = None, progress: bool = True,
        on_epoch: Callable[[dict], None] | None = None) -> RunResult:
    """Train ``cfg.model`` with ``cfg.recipe``, checkpointing every epoch into a new run folder.

    With ``cfg.max_lr == "find"`` the LR range test (:func:`~cifarhelpers.training.lr_range_test.range_test_for_run`:
    ``cfg.lr_test_iterations`` iterations, rule ``cfg.lr_rule``) runs first on the run's own data and
    model, and the run trains at its suggestion. Every epoch re-derives its random streams from ``(cfg.seed, epoch)``
    (:func:`~cifarhelpers.training.reproducibility.seed_epoch`), so with ``cfg.resume`` set to a run folder
    training continues from that folder's last checkpoint, in that folder, and on the CPU ends with
    exactly the history of the run left alone. After the last epoch the test set is evaluated once
    more with horizontal-flip TTA (:func:`~cifarhelpers.training.engine.evaluate_flip_tta`, batched on the
    device), recorded as that epoch's ``test_accuracy_flip_tta`` and ``metrics.json``'s
    ``final_test_accuracy_flip_tta``; ``cfg.loader="auto"`` is resolved for the device
    (:func:`~cifarhelpers.training.loaders.resolved_loader`) and ``metrics.json["loader"]`` records the result.

    Args:
        cfg: the run's validated config.
        data: an already loaded copy (saves reloading in notebooks and tests); by default
            ``load_cifar10(cfg.data_root)``.
        progress: tqdm bars for epochs and batches, and a line per epoch.
        on_epoch: called with each epoch's history entry (the dict ``metrics.json`` records, with
            the run folder as ``run_dir``) once that epoch is checkpointed; a sweep reports it to
            Ray Tune (:mod:`cifarhelpers.sweep.ray_backend`). An exception it raises stops the run like
            any other.

    Returns:
        :class:`RunResult`.

    Raises:
        ConfigError: the device is unavailable, the output folder is not writable, a subset is
            larger than the data, or the resumed run is already complete (all checked before
            training starts; nothing is written).
        CheckpointError: the checkpoint to resume from is missing, unsafe, or from another
            config or data copy (checked before training starts; nothing is written).
        DataError / DataNotFoundError: the data cannot be read.
        DivergenceError: a training or test loss became NaN or infinite; the message names the
            epoch, step and LR and the run folder, whose ``metrics.json`` says ``"diverged"`` and
            whose ``checkpoint.pt`` still holds the last good epoch.
        RunWriteError: an artifact could not be written (disk full, read-only folder); the
            earlier checkpoint is intact and ``metrics.json`` says ``"failed"`` if it could be written.
    """
    wall_start = time.perf_counter()
    device = resolve_device(cfg.device)
    resumed = resumable_checkpoint(cfg) if cfg.resume else None
    if resumed is None:
        ensure_writable_dir(cfg.output_dir, "output_dir")
    data_start = time.perf_counter()
    prep = prepare_data(cfg, device, data, progress)
    data_seconds = time.perf_counter() - data_start
    if resumed is not None:
        check_resumable(resumed, cfg.to_dict(), prep.data.source.sha256, defaults=TrainConfig().to_dict())
    found = range_test_for_run(cfg, prep, device) if cfg.max_lr == FIND_LR else None
    if found is not None:  # train at the suggestion; the run's config holds the number, so a resume reuses it
        cfg = cfg.replace(max_lr=found.max_lr)
        if progress:
            print(describe_lr(cfg, f"the LR range test ({found.rule}; all rules: {found.describe_suggestions()})"))

    seed_everything(cfg.seed)
    net = build_model(cfg.model, logit_scale=cfg.logit_scale)
    if resumed is not None:
        load_weights(net, resumed["model"])
    net = net.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    model = torch.compile(net) if cfg.compile else net
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    criterion = build_criterion(cfg)
    optimizer, schedule = build_optimizer(net, cfg, steps_per_epoch=len(prep.train_loader))
    precision = select_precision(device, cfg.amp)
    scaler = precision.grad_scaler()
    if progress:
        print(f"precision: {precision.describe()}")
    if resumed is not None:
        restore_training_state(resumed, optimizer, schedule, scaler)

    header = run_header(cfg, net, prep, device, precision)
    run = RunFolder.reopen(cfg, header, resumed) if resumed is not None else RunFolder.create(cfg, header)
    run.start(wall_start=wall_start, data_seconds=data_seconds)
    if found is not None:
        run.record_lr_range_test(found)
    bar = tqdm(range(len(run.history), cfg.epochs), initial=len(run.history), total=cfg.epochs,
               desc=f"{cfg.model} {cfg.recipe}", unit="epoch", disable=not progress)
    with run.recording(), contextlib.closing(bar):
        for epoch in bar:
            prep.train_loader.set_epoch(seed_epoch(cfg.seed, epoch))
            train = train_one_epoch(model, prep.train_loader, criterion, optimizer, schedule, device=device,
                                    epoch=epoch, epochs=cfg.epochs, precision=precision, scaler=scaler,
                                    channels_last=cfg.channels_last, progress=progress)
            test = evaluate(model, prep.test_loader, criterion, device=device, precision=precision,
                            channels_last=cfg.channels_last, progress=progress)
            check_epoch_finite(train, test, epoch=epoch, epochs=cfg.epochs, steps=len(prep.train_loader))
            schedule.after_epoch(test.loss)
            entry = {"epoch": epoch + 1, "train_loss": train.loss, "train_accuracy": train.accuracy,
                     "test_loss": test.loss, "test_accuracy": test.accuracy, "lr": train.lr,
                     "train_seconds": train.seconds, "test_seconds": test.seconds,
                     "seconds": train.seconds + test.seconds}
            if epoch + 1 == cfg.epochs:  # the run completes: horizontal-flip TTA once, before the checkpoint
                tta = evaluate_flip_tta(model, prep.test_loader, device=device, precision=precision,
                                        channels_last=cfg.channels_last, progress=progress)
                entry.update(test_accuracy_flip_tta=tta.accuracy, flip_tta_seconds=tta.seconds)
            run.save_epoch(entry, training_state(
                epoch=epoch + 1, model=net, optimizer=optimizer, schedule=schedule, scaler=scaler,
                config=cfg.to_dict(), data_sha256=prep.data.source.sha256,
                loader_generator=prep.train_loader.generator), train.step_losses, train.step_lrs)
            if on_epoch is not None:
                on_epoch({**entry, "run_dir": str(run.path)})
            bar.set_postfix(train_loss=f"{train.loss:.3f}", test_acc=f"{100 * test.accuracy:.2f}%")
            if progress:
                tqdm.write(f"epoch {epoch + 1:>2}/{cfg.epochs}  train loss {train.loss:.4f} acc "
                           f"{100 * train.accuracy:6.2f}%  test loss {test.loss:.4f} acc {100 * test.accuracy:6.2f}%  "
                           f"lr {train.lr:.2e}  {entry['seconds']:.1f} s"
                           + (f"  flip-TTA acc {100 * entry['test_accuracy_flip_tta']:6.2f}%"
                              if "test_accuracy_flip_tta" in entry else ""))
        final, final_tta = run.history[-1]["test_accuracy"], run.history[-1].get("test_accuracy_flip_tta")
        run.complete(net.state_dict(), plot_curves(run.history, title=f"{cfg.model}, {cfg.recipe}: test accuracy "
                                                                      f"{100 * final:.2f}%",
                                                   label_smoothing=cfg.label_smoothing))
    net.eval()
    return RunResult(run_dir=run.path, history=run.history, final_test_accuracy=final, metrics=run.metrics,
                     model=net, steps=run.steps, final_test_accuracy_flip_tta=final_tta)


def run_header(cfg: TrainConfig, net: nn.Module, prep: Prepared, device: torch.device,
               precision: Precision) -> dict[str, Any]:
    """What ``metrics.json`` says about a run before its first epoch: config, model and parameter
    count, recipe and LRs, data (source, hash, subset sizes, normalization), device, the loader in use
    (``"albumentations"`` or ``"device"``: ``cfg.loader`` resolved), precision, versions and units."""
    return {
        "status": "running",
        "stop_reason": None,
        "config": cfg.to_dict(),
        "model": {"name": cfg.model, "parameters": count_parameters(net)},
        "recipe": {"name": cfg.recipe, "max_lr": cfg.resolved_max_lr, "min_lr": cfg.resolved_min_lr},
        "data": {**prep.data.source.to_dict(), "train_images": prep.train_images, "test_images": prep.test_images,
                 "mean": list(prep.stats.mean), "std": list(prep.stats.std)},
        "device": device_name(device),
        "device_type": device.type,
        "loader": prep.loader,
        "precision": precision.to_dict(),
        "torch_version": torch.__version__,
        "cifarhelpers_version": __version__,
        "python_version": platform.python_version(),
        "history": [],
        "final_test_accuracy": None,
        "final_test_accuracy_flip_tta": None,
        "units": UNITS,
        "timings": {},
    }
