"""``cifar-train``: the command line of :func:`cifarhelpers.training.train.fit`.

Run::

    cifar-train                          # full 24-epoch recipe on a GPU, short profile on a CPU
    cifar-train --profile full           # the 24-epoch recipe even without a GPU (hours on 2 cores)
    python -m cifarhelpers.cli.train --max-lr 0.02 --train-subset 10000 --epochs 5
    cifar-train --max-lr find            # the LR range test first, then train at its suggestion
    cifar-train --resume runs/20261122-101500-custom_resnet   # continue a killed run, same settings
    cifar-train --no-amp --compile       # booleans are --x / --no-x (cifarhelpers.cli.common)
    cifar-train --help                   # one flag per TrainConfig field, with its valid range
    cifar-train --version

Booleans are ``--x`` / ``--no-x`` (``--amp`` / ``--no-amp``). The old spelling ``--amp true`` / ``--amp false``
still works but is deprecated (a note says so; :mod:`cifarhelpers.cli.common`).

Exit status: 0 done, 1 training or writing failed (divergence, disk, data, checkpoint), 2 invalid
settings (argparse's own errors too), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). A run
stopped by Ctrl-C or SIGTERM records status ``"interrupted"`` in its ``metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import typing
from typing import Any

from cifarhelpers.data import TRANSFORM_SETS
from cifarhelpers.errors import CifarHelpersError, ConfigError
from cifarhelpers.models import MODEL_NAMES
from cifarhelpers.training import (
    CIFAR10_TEST_IMAGES,
    CIFAR10_TRAIN_IMAGES,
    FIND_LR,
    LOADERS,
    PROFILE_CHOICES,
    PROFILES,
    RECIPES,
    RULES,
    TrainConfig,
    describe_lr,
    device_name,
    fit,
    resolve_device,
    resolve_profile,
    resume_config,
)

from .common import add_boolean, add_version, command_line_help, format_default, parse_bool, upgrade_old_booleans

#: Default of every field flag: tells "not given" apart from an explicit ``none``.
_UNSET = object()
#: The choices shown in usage and ``--help`` of every TrainConfig field with a fixed set of values
#: (TrainConfig checks the value, with the same list in its message; a test checks none is missing).
CHOICES = {"model": MODEL_NAMES, "recipe": tuple(RECIPES), "transform_set": tuple(TRANSFORM_SETS), "loader": LOADERS,
           "lr_rule": tuple(RULES)}


def _parser_for(base: type, optional: bool, words: tuple[str, ...] = ()):
    """An argparse ``type`` for a field: int, float or str, plus ``none`` when the field is optional
    and the given ``words`` (e.g. ``find`` for ``--max-lr``), with a message that says what is expected."""
    what = {int: "an integer", float: "a number"}.get(base, "a value")
    options = [*words, *(["none"] if optional else [])]
    if options:
        what = ", ".join([what, *options[:-1]]) + f" or {options[-1]}"

    def parse(text: str):
        if optional and text.strip().lower() in ("none", "null"):
            return None
        if text.strip().lower() in words:
            return text.strip().lower()
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = base.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``cifar-train`` argument parser: one flag per :class:`TrainConfig` field, plus ``--profile``
    ``--quiet`` and ``--version``. Optional fields accept ``none`` (e.g. ``--train-subset none`` for all
    images); booleans are ``--x`` / ``--no-x``. Flags not given are left at a sentinel, so
    :func:`config_from_args` can tell them apart."""
    parser = argparse.ArgumentParser(
        prog="cifar-train",
        description="Train a CIFAR-10 classifier (default: the custom ResNet, 24 epochs of OneCycle) and "
                    "write a run folder with metrics.json, model.pt and curves.png, checkpointing every epoch. "
                    "Continue a run that was killed with --resume RUN_FOLDER (its settings are reused).",
    )
    parser.add_argument(
        "--profile", choices=PROFILE_CHOICES, default="auto",
        help="auto (default): full on a CUDA GPU, short elsewhere; "
             + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()) + ". Ignored with --resume.",
    )
    add_boolean(parser, "--quiet", default=False, help="no progress bars")
    add_version(parser)
    add_config_flags(parser)
    return parser


def field_parser(name: str):
    """The argparse ``type`` of :class:`TrainConfig` field ``name``: text to int, float, bool, str
    or None (``none`` for an optional field), raising ``argparse.ArgumentTypeError`` with what is expected.
    For values inside other settings (``--grid amp=true,false``); the flags of booleans take no value."""
    kind = typing.get_type_hints(TrainConfig)[name]
    args = typing.get_args(kind)
    base = next((t for t in args if t is not type(None)), kind)
    words = (FIND_LR,) if name == "max_lr" else ()  # --max-lr find: the LR range test first
    return parse_bool if base is bool else _parser_for(base, type(None) in args, words)


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per :class:`TrainConfig` field (except ``skip``), its help text beside it worded for a
    command line (:func:`~cifarhelpers.cli.common.command_line_help`), the choices of :data:`CHOICES`
    in usage; a boolean field is ``--x`` / ``--no-x``. A flag not given stays at a sentinel, so
    :func:`given_fields` returns only the flags given."""
    for field in dataclasses.fields(TrainConfig):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        text = command_line_help(field.metadata["help"], flag)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        parse = field_parser(field.name)
        if parse is parse_bool:
            add_boolean(parser, flag, default=_UNSET, shown=default, help=text)
            continue
        metavar = "{" + ",".join(CHOICES[field.name]) + "}" if field.name in CHOICES else field.name.upper()
        parser.add_argument(flag, type=parse, default=_UNSET, metavar=metavar,
                            help=f"{text} (default: {format_default(default)})".replace("%", "%%"))


def given_fields(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The :class:`TrainConfig` fields (except ``skip``) whose flags were given (see :func:`add_config_flags`)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if f.name not in skip and getattr(args, f.name, _UNSET) is not _UNSET}


def config_from_args(args: argparse.Namespace, device_type: str) -> tuple[TrainConfig, str]:
    """The run's config: the model's and recipe's own settings (:meth:`TrainConfig.preset`), then the profile,
    then the flags given. Returns (config, profile used).

    With ``--resume FOLDER`` the base is the config saved in the folder's checkpoint instead (the
    profile is ignored and ``"resume"`` returned as the profile), so ``cifar-train --resume FOLDER``
    alone continues the run as it was started; flags given on top may only change where things
    are (device, data_root, output_dir...): :func:`fit` refuses anything else, naming the fields.

    Raises:
        ConfigError: an invalid value (named, with its valid range or choices).
        CheckpointError: ``--resume`` names a folder without a readable, safe checkpoint.
    """
    given = given_fields(args)
    if given.get("resume"):
        return resume_config(given.pop("resume"), **given), "resume"
    profile = resolve_profile(args.profile, device_type)
    return TrainConfig.preset(**{**profile.overrides, **given}), profile.name


def report_error(prog: str, err: CifarHelpersError) -> int:
    """Print ``prog: error: <message>`` to stderr; return the exit status: 2 for invalid settings
    (ConfigError), 1 for anything else that failed (training, data, checkpoint, writing)."""
    print(f"{prog}: error: {err}", file=sys.stderr)
    return 2 if isinstance(err, ConfigError) else 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (a stopped job, a runtime shutting down), turned into an interruption by :func:`main`
    so the run folder records it (status ``"interrupted"``) like Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated("terminated by SIGTERM")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cifar-train`` and ``python -m cifarhelpers.cli.train``; returns the exit status
    (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(upgrade_old_booleans(parser, argv))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        device = resolve_device(args.device if args.device is not _UNSET else "auto")
        cfg, profile = config_from_args(args, device.type)
        print(f"device: {device_name(device)}")
        if profile == "resume":
            print(f"resuming the run in {cfg.resume} with its saved settings ({cfg.epochs} epochs, batch "
                  f"{cfg.batch_size}, {cfg.train_subset or CIFAR10_TRAIN_IMAGES:,} training images)")
        elif profile == "short":
            why = "no CUDA GPU found" if args.profile == "auto" else "--profile short"
            print(f"{why}: running the SHORT profile: {cfg.train_subset or CIFAR10_TRAIN_IMAGES:,} training images, "
                  f"{cfg.epochs} epoch(s), batch {cfg.batch_size}, test on {cfg.test_subset or CIFAR10_TEST_IMAGES:,} "
                  "images. Pass --profile full for the 24-epoch recipe on all 50,000 images.")
        else:
            print(f"profile: full ({cfg.epochs} epochs, batch {cfg.batch_size})")
        if cfg.max_lr != FIND_LR:
            source = "--max-lr" if cfg.max_lr is not None else f"the {cfg.recipe} recipe's default"
            print(describe_lr(cfg, source))
        result = fit(cfg, progress=not args.quiet)
    except CifarHelpersError as err:
        return report_error("cifar-train", err)
    except KeyboardInterrupt as err:
        return 143 if isinstance(err, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"final test accuracy: {100 * result.final_test_accuracy:.2f}% "
          f"({result.metrics['data']['test_images']:,} test images; with horizontal-flip TTA "
          f"{100 * result.final_test_accuracy_flip_tta:.2f}%)")
    print(f"wall time: {result.metrics['timings']['wall_seconds']:.1f} s; run folder: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
