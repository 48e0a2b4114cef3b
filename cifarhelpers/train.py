"""Train a CIFAR-10 model from one config: the main job and its command line.

Run::

    cifar-train                          # full 24-epoch recipe on a GPU, short profile on a CPU
    cifar-train --profile full           # the 24-epoch recipe even without a GPU (hours on 2 cores)
    python -m cifarhelpers.train --max-lr 0.02 --train-subset 10000 --epochs 5
    cifar-train --resume runs/20261122-101500-custom_resnet   # continue a killed run, same settings

From Python::

    from cifarhelpers.config import TrainConfig
    from cifarhelpers.train import fit, resume_config
    result = fit(TrainConfig(epochs=24, max_lr=0.01))
    result.final_test_accuracy, result.run_dir
    result = fit(resume_config("runs/20261122-101500-custom_resnet"))   # after a crash

Every run writes a new folder under ``output_dir`` holding ``metrics.json`` (status, config,
per-epoch history, final test accuracy, timings, device, torch version, data source and hash),
``checkpoint.pt`` (everything needed to continue, rewritten atomically after every epoch),
``model.pt`` (the final ``state_dict``, loadable with ``torch.load(weights_only=True)``) and
``curves.png``. ``metrics.json``'s ``status`` is ``"running"``, ``"completed"``, ``"diverged"``
(a NaN or infinite loss), ``"failed"`` (a write failed) or ``"interrupted"`` (Ctrl-C); for the
last three, ``stop_reason`` and ``stopped_epoch`` say why and where. A run killed outright
(SIGKILL, a dead kernel) stays ``"running"``; its checkpoint holds every finished epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import platform
import signal
import sys
import threading
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .checkpoint import check_resumable, load_checkpoint, load_weights, save_checkpoint
from .config import LOADERS, PROFILES, SHORT_PROFILE, TrainConfig, profile_overrides
from .data import CIFAR10Data, ChannelStats, balanced_subset, dataset_statistics, load_cifar10
from .device_loader import DeviceLoader
from .devices import device_name, resolve_device
from .engine import evaluate, train_one_epoch
from .errors import CifarHelpersError, ConfigError, DivergenceError, RunWriteError
from .loaders import AlbumentationsLoader, check_batches, default_num_workers
from .models import build_model, count_parameters
from .plots import plot_curves
from .precision import select_precision
from .recipes import build_criterion, build_optimizer
from .reproducibility import restore_rng_states, rng_states, seed_epoch, seed_everything
from .runs import (atomic_write, ensure_writable_dir, new_run_dir, read_json, remove_temp_files, save_figure,
                   write_json)
from .transforms import test_transform, train_transform

METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.pt"
CURVES_FILE = "curves.png"
UNITS = {
    "accuracy": "fraction of images correct, in [0, 1]",
    "loss": "mean cross-entropy per image",
    "lr": "learning rate of the last optimizer step of the epoch",
    "seconds": "wall-clock seconds",
}


@dataclass
class RunResult:
    """What :func:`fit` returns.

    Attributes:
        run_dir: the run's new folder.
        history: per-epoch dicts (epoch, train_loss, train_accuracy, test_loss, test_accuracy, lr, seconds).
        final_test_accuracy: test accuracy after the last epoch, a fraction in [0, 1].
        metrics: the content of ``metrics.json``.
        model: the trained model (on the training device, eval mode).
    """

    run_dir: Path
    history: list[dict]
    final_test_accuracy: float
    metrics: dict
    model: nn.Module


@dataclass
class Prepared:
    """Data, statistics and loaders of a run, built once from its config."""

    data: CIFAR10Data
    stats: ChannelStats
    train_loader: Any
    test_loader: Any
    train_images: int
    test_images: int


def prepare_data(cfg: TrainConfig, device: torch.device, data: CIFAR10Data | None = None,
                 progress: bool = True) -> Prepared:
    """Load the data (unless given), measure the train statistics, draw subsets, build loaders.

    The normalization statistics always come from the whole training set, so a subset run
    normalizes exactly like the full run. ``cfg.loader`` picks the loader: the albumentations
    DataLoader (reference path) or :class:`~cifarhelpers.device_loader.DeviceLoader`.

    Raises:
        ConfigError: a subset larger than the data, or fewer training images than one batch.
        DataError / DataNotFoundError: as :func:`~cifarhelpers.data.load_cifar10`.
    """
    data = data if data is not None else load_cifar10(cfg.data_root, download=cfg.download, progress=progress)
    stats = dataset_statistics(data.x_train)
    x_train, y_train = balanced_subset(data.x_train, data.y_train, cfg.train_subset, cfg.seed, name="train_subset")
    x_test, y_test = balanced_subset(data.x_test, data.y_test, cfg.test_subset, cfg.seed, name="test_subset")
    check_batches(len(x_train), cfg.batch_size)
    test_batch = max(cfg.batch_size, 256)
    if cfg.loader == "device":
        common = dict(mean=stats.mean, std=stats.std, device=device, channels_last=cfg.channels_last)
        train_loader = DeviceLoader(x_train, y_train, batch_size=cfg.batch_size, train=True, **common)
        test_loader = DeviceLoader(x_test, y_test, batch_size=test_batch, train=False, **common)
    else:
        workers = cfg.num_workers if cfg.num_workers is not None else default_num_workers(device)
        common = dict(num_workers=workers, pin_memory=device.type == "cuda")
        train_loader = AlbumentationsLoader(x_train, y_train, train_transform(stats.mean, stats.std, cfg.transform_set),
                                            batch_size=cfg.batch_size, train=True, **common)
        test_loader = AlbumentationsLoader(x_test, y_test, test_transform(stats.mean, stats.std),
                                           batch_size=test_batch, train=False, **common)
    return Prepared(data, stats, train_loader, test_loader, len(x_train), len(x_test))


def fit(cfg: TrainConfig, *, data: CIFAR10Data | None = None, progress: bool = True) -> RunResult:
    """Train ``cfg.model`` with ``cfg.recipe``, checkpointing every epoch into a new run folder.

    After every epoch ``checkpoint.pt`` (model, optimizer, scheduler, epoch, history, config, data
    hash, RNG states) and ``metrics.json`` are rewritten atomically, so a run killed at any moment
    loses at most the epoch in flight. Every epoch re-derives its random streams from
    ``(cfg.seed, epoch)`` (:func:`~cifarhelpers.reproducibility.seed_epoch`), so with
    ``cfg.resume`` set to a run folder, training continues from that folder's last checkpoint, in
    that folder, and on the CPU ends with exactly the history of the run left alone.

    Args:
        cfg: the run's validated config.
        data: an already loaded copy (saves reloading in notebooks and tests); by default
            ``load_cifar10(cfg.data_root)``.
        progress: tqdm bars for epochs and batches.

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
            epoch, step and LR and the run folder, whose ``metrics.json`` says why the run stopped
            (status ``"diverged"``) and whose ``checkpoint.pt`` still holds the last good epoch.
        RunWriteError: an artifact could not be written (disk full, read-only folder); the
            earlier checkpoint is intact and ``metrics.json`` says ``"failed"`` if it could be written.
    """
    wall_start = time.perf_counter()
    device = resolve_device(cfg.device)
    resumed = None
    if cfg.resume:
        resumed = load_checkpoint(cfg.resume)
        check_resumable(resumed, cfg.to_dict())  # the config before any data is read
        if resumed["epoch"] >= cfg.epochs:
            raise ConfigError(f"resume={cfg.resume!r}: that run already finished its {resumed['epoch']} epochs, "
                              "so there is nothing to resume. Its weights are in model.pt (or checkpoint.pt: "
                              "load_weights(model, folder)); start a new run to train further.")
        ensure_writable_dir(cfg.resume, "resume")
    else:
        ensure_writable_dir(cfg.output_dir, "output_dir")
    data_start = time.perf_counter()
    prep = prepare_data(cfg, device, data, progress)
    data_seconds = time.perf_counter() - data_start
    sha = prep.data.source.sha256
    if resumed is not None:
        check_resumable(resumed, cfg.to_dict(), sha)

    seed_everything(cfg.seed)
    net = build_model(cfg.model)
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
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["scheduler"])
        if scaler is not None and resumed.get("scaler"):
            scaler.load_state_dict(resumed["scaler"])  # the loss scale reached, not a fresh 65536
        if resumed.get("rng"):
            restore_rng_states(resumed["rng"])  # each epoch reseeds anyway; this keeps the streams whole
        run_dir = Path(cfg.resume)
        remove_temp_files(run_dir)  # what a kill during a write left behind
        try:
            metrics = read_json(run_dir / METRICS_FILE, "metrics file")
        except ConfigError:  # lost or damaged: the checkpoint holds the history
            metrics = None
        if not isinstance(metrics, dict):
            metrics = _new_metrics(cfg, net, prep, device)
        metrics["precision"] = precision.to_dict()  # the device may have changed
        metrics["history"] = list(resumed["history"])
        metrics.setdefault("resumed_at_epochs", []).append(resumed["epoch"])
        metrics["config"] = cfg.to_dict()
    else:
        run_dir = new_run_dir(cfg.output_dir, cfg.model)
        metrics = _new_metrics(cfg, net, prep, device)
        metrics["precision"] = precision.to_dict()
    metrics.update(status="running", stop_reason=None, stopped_epoch=None, final_test_accuracy=None)
    metrics["timings"] = {"data_seconds": data_seconds}
    write_json(run_dir / METRICS_FILE, metrics)

    history: list[dict] = metrics["history"]
    first_epoch = len(history)
    epoch = first_epoch
    bar = tqdm(range(first_epoch, cfg.epochs), initial=first_epoch, total=cfg.epochs,
               desc=f"{cfg.model} {cfg.recipe}", unit="epoch", disable=not progress)
    try:
        for epoch in bar:
            prep.train_loader.set_epoch(seed_epoch(cfg.seed, epoch))
            train = train_one_epoch(model, prep.train_loader, criterion, optimizer, schedule, device=device,
                                    epoch=epoch, epochs=cfg.epochs, precision=precision, scaler=scaler,
                                    channels_last=cfg.channels_last, progress=progress)
            test = evaluate(model, prep.test_loader, criterion, device=device, precision=precision,
                            channels_last=cfg.channels_last, progress=progress)
            if not (math.isfinite(train.loss) and math.isfinite(test.loss)):
                steps = len(prep.train_loader)
                raise DivergenceError(
                    f"training diverged: the test loss is {test.loss} (train loss {train.loss}) after epoch "
                    f"{epoch + 1}/{cfg.epochs}, step {steps}/{steps}, lr {train.lr:.3g}: the weights are no longer "
                    "finite. Lower the max LR (try a tenth of it, or run the LR range test) and start again."
                )
            schedule.after_epoch(test.loss)
            entry = {
                "epoch": epoch + 1,
                "train_loss": train.loss, "train_accuracy": train.accuracy,
                "test_loss": test.loss, "test_accuracy": test.accuracy,
                "lr": train.lr, "train_seconds": train.seconds, "test_seconds": test.seconds,
                "seconds": train.seconds + test.seconds,
            }
            save_checkpoint(run_dir, {
                "epoch": epoch + 1, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "history": [*history, entry],
                "config": cfg.to_dict(), "data_sha256": sha,
                "rng": {**rng_states(), "loader": prep.train_loader.generator.get_state()},
            })
            history.append(entry)  # only once it is safely on disk
            write_json(run_dir / METRICS_FILE, metrics)
            bar.set_postfix(train_loss=f"{train.loss:.3f}", test_acc=f"{100 * test.accuracy:.2f}%")
            if progress:
                tqdm.write(f"epoch {epoch + 1:>2}/{cfg.epochs}  train loss {train.loss:.4f} acc {100 * train.accuracy:6.2f}%  "
                           f"test loss {test.loss:.4f} acc {100 * test.accuracy:6.2f}%  lr {train.lr:.2e}  "
                           f"{train.seconds + test.seconds:.1f} s")
        epoch = cfg.epochs - 1  # what follows belongs to the last epoch
        metrics.update(status="completed", final_test_accuracy=history[-1]["test_accuracy"])
        atomic_write(run_dir / WEIGHTS_FILE, lambda f: torch.save(net.state_dict(), f))
        save_figure(plot_curves(history, title=f"{cfg.model}, {cfg.recipe}: test accuracy "
                                               f"{100 * history[-1]['test_accuracy']:.2f}%"), run_dir / CURVES_FILE)
        _finish(metrics, run_dir, wall_start)
    except (DivergenceError, RunWriteError, KeyboardInterrupt) as err:
        status = {DivergenceError: "diverged", RunWriteError: "failed"}.get(type(err), "interrupted")
        kept = (f"checkpoint.pt keeps epoch {len(history)}/{cfg.epochs}" if history
                else "no epoch finished, so there is no checkpoint")
        where = f" Run folder: {run_dir} (metrics.json: status {status!r}; {kept})."
        if status != "diverged" and history:
            where += f" Continue it with resume={str(run_dir)!r} (cifar-train --resume {run_dir})."
        metrics.update(status=status, stop_reason=(str(err) or type(err).__name__), stopped_epoch=epoch + 1,
                       final_test_accuracy=None)
        with contextlib.suppress(RunWriteError):  # the disk may still be full: the error below says so
            _finish(metrics, run_dir, wall_start)
        if isinstance(err, KeyboardInterrupt):
            print(f"interrupted during epoch {epoch + 1}.{where}", file=sys.stderr)
            raise
        raise type(err)(f"{err}{where}") from err
    finally:
        bar.close()

    net.eval()
    return RunResult(run_dir=run_dir, history=history, final_test_accuracy=metrics["final_test_accuracy"],
                     metrics=metrics, model=net)


def _new_metrics(cfg: TrainConfig, net: nn.Module, prep: Prepared, device: torch.device) -> dict[str, Any]:
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
        "torch_version": torch.__version__,
        "cifarhelpers_version": __version__,
        "python_version": platform.python_version(),
        "history": [],
        "final_test_accuracy": None,
        "units": UNITS,
        "timings": {},
    }


def _finish(metrics: dict, run_dir: Path, wall_start: float) -> None:
    history = metrics["history"]
    timings = metrics["timings"]
    timings.update(
        wall_seconds=time.perf_counter() - wall_start,
        train_seconds=sum(h["train_seconds"] for h in history),
        test_seconds=sum(h["test_seconds"] for h in history),
        seconds_per_epoch=(sum(h["seconds"] for h in history) / len(history)) if history else None,
    )
    write_json(run_dir / METRICS_FILE, metrics)


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def _field_help() -> dict[str, str]:
    """Field descriptions from the 'Attributes:' section of TrainConfig's docstring."""
    doc = TrainConfig.__doc__ or ""
    section = doc.split("Attributes:", 1)[1]
    helps: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 8 and ":" in stripped:
            current, text = stripped.split(":", 1)
            helps[current] = text.strip()
        elif current is not None:
            helps[current] += " " + stripped
    return {k: v.replace("%", "%%") for k, v in helps.items()}


#: Default of every field flag: tells "not given" apart from an explicit ``none``.
_UNSET = object()


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser_for(base: type, optional: bool):
    """An argparse ``type`` for a field: int, float or str, plus ``none`` when the field is optional,
    with a message that says what is expected."""
    what = {int: "an integer", float: "a number"}.get(base, "a value")
    if optional:
        what += " or none"

    def parse(text: str):
        if optional and text.strip().lower() in ("none", "null"):
            return None
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = base.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``cifar-train`` argument parser: one flag per :class:`TrainConfig` field, plus ``--profile``
    and ``--quiet``. Optional fields accept ``none`` (e.g. ``--train-subset none`` for all images).
    Flags not given are left at a sentinel, so :func:`config_from_args` can tell them apart."""
    parser = argparse.ArgumentParser(
        prog="cifar-train",
        description="Train a CIFAR-10 classifier (default: the custom ResNet, 24 epochs of OneCycle) and "
                    "write a run folder with metrics.json, model.pt and curves.png, checkpointing every epoch. "
                    "Continue a run that was killed with --resume RUN_FOLDER (its settings are reused).",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default="auto",
        help="auto (default): the full recipe on a CUDA GPU, the short profile elsewhere; short: "
             + ", ".join(f"{k}={v}" for k, v in SHORT_PROFILE.items()) + "; full: the recipe as configured. "
             "Ignored with --resume.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    helps = _field_help()
    hints = typing.get_type_hints(TrainConfig)
    from .models import MODEL_NAMES
    from .recipes import RECIPES
    from .transforms import TRANSFORM_SETS

    # shown in --help; TrainConfig checks the value (with the same list in its message)
    choices = {"model": MODEL_NAMES, "recipe": tuple(RECIPES), "transform_set": tuple(TRANSFORM_SETS),
               "loader": LOADERS}
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        args = typing.get_args(kind)
        optional = type(None) in args
        base = next((t for t in args if t is not type(None)), kind)
        text = helps.get(field.name, "")
        if base is bool:
            parser.add_argument(flag, type=_parse_bool, metavar="{true,false}", default=_UNSET,
                                help=f"{text} (default: {field.default})")
        else:
            metavar = "{" + ",".join(choices[field.name]) + "}" if field.name in choices else field.name.upper()
            parser.add_argument(flag, type=_parser_for(base, optional), default=_UNSET,
                                metavar=metavar, help=f"{text} (default: {field.default})")
    return parser


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, _UNSET) is not _UNSET}


def config_from_args(args: argparse.Namespace, device_type: str) -> tuple[TrainConfig, str]:
    """The run's config: defaults, then the profile, then the flags given. Returns (config, profile used).

    With ``--resume FOLDER`` the base is the config saved in the folder's checkpoint instead (the
    profile is ignored and ``"resume"`` returned as the profile), so ``cifar-train --resume FOLDER``
    alone continues the run as it was started; flags given on top may only change where things
    are (device, data_root, output_dir...): :func:`fit` refuses anything else, naming the fields.

    Raises:
        ConfigError: an invalid value (named, with its valid range or choices).
        CheckpointError: ``--resume`` names a folder without a readable, safe checkpoint.
    """
    given = _given(args)
    if given.get("resume"):
        return resume_config(given.pop("resume"), **given), "resume"
    profile = args.profile if args.profile != "auto" else ("full" if device_type == "cuda" else "short")
    return TrainConfig(**{**profile_overrides(profile, device_type), **given}), profile


def resume_config(run_dir: str | os.PathLike, **changes: Any) -> TrainConfig:
    """The config to continue the run in ``run_dir``: the one saved in its checkpoint, with
    ``resume=run_dir`` and ``changes`` (only where-things-are fields such as ``device`` or
    ``data_root`` may differ; :func:`fit` refuses the rest).

    Example::

        result = fit(resume_config("runs/20261122-101500-custom_resnet"))

    Raises:
        CheckpointError: no readable, safe checkpoint in ``run_dir``.
        ConfigError: an invalid or unknown field in ``changes``.
    """
    saved = load_checkpoint(run_dir)["config"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    base = TrainConfig(**{k: v for k, v in saved.items() if k in fields and k != "resume"})
    return base.replace(**{**changes, "resume": os.fspath(run_dir)})


class Terminated(KeyboardInterrupt):
    """SIGTERM (a stopped job, a runtime shutting down), turned into an interruption by :func:`main`
    so the run folder records it (status ``"interrupted"``) like Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated("terminated by SIGTERM")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cifar-train`` and ``python -m cifarhelpers.train``. Returns the exit status:
    0 done, 1 training or writing failed (divergence, disk, data, checkpoint), 2 invalid settings
    (argparse's own errors too), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."""
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        device = resolve_device(args.device if args.device is not _UNSET else "auto")
        cfg, profile = config_from_args(args, device.type)
        print(f"device: {device_name(device)}")
        if profile == "resume":
            print(f"resuming the run in {cfg.resume} with its saved settings ({cfg.epochs} epochs, batch "
                  f"{cfg.batch_size}, {cfg.train_subset or 50000:,} training images)")
        elif profile == "short":
            why = "no CUDA GPU found" if args.profile == "auto" else "--profile short"
            print(f"{why}: running the SHORT profile: {cfg.train_subset or 50000:,} training images, {cfg.epochs} "
                  f"epoch(s), batch {cfg.batch_size}, test on {cfg.test_subset or 10000:,} images. "
                  "Pass --profile full for the 24-epoch recipe on all 50,000 images.")
        else:
            print(f"profile: full ({cfg.epochs} epochs, batch {cfg.batch_size})")
        result = fit(cfg, progress=not args.quiet)
    except ConfigError as err:
        print(f"cifar-train: error: {err}", file=sys.stderr)
        return 2
    except CifarHelpersError as err:
        print(f"cifar-train: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        return 143 if isinstance(err, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"final test accuracy: {100 * result.final_test_accuracy:.2f}% "
          f"({result.metrics['data']['test_images']:,} test images)")
    print(f"wall time: {result.metrics['timings']['wall_seconds']:.1f} s; run folder: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
