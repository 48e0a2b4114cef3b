"""``cifar-sweep``: the command line of :func:`cifarhelpers.sweep.runner.run_sweep`.

Run::

    cifar-sweep --grid max_lr=0.0005,0.002,0.01 --seeds 0 1 2          # Ray locally if installed
    cifar-sweep --grid max_lr=0.001,0.01 --grid weight_decay=0,5e-4 --model dilated_net --epochs 5
    cifar-sweep --random max_lr=loguniform:1e-4:1e-1 --num-samples 8 --seeds 0 1
    cifar-sweep --grid model=custom_resnet,dilated_net --backend sequential    # without Ray
    cifar-sweep --grid max_lr=0.001,0.01 --address auto --gpus-per-trial 0.5   # on a running Ray cluster
    cifar-sweep --resume runs/sweep-20261201-101500       # finish an interrupted sweep
    cifar-sweep --grid amp=true,false --no-compile        # a boolean field swept, another one set

Every other flag is ``cifar-train``'s (the base config of every trial; ``--profile`` as there, so
a CPU runs the short profile unless told otherwise), except ``--seed`` (use ``--seeds``) and
``--resume`` (here: a sweep folder); booleans are ``--x`` / ``--no-x`` as there. A ``--grid`` value
list is comma-separated (a boolean's values are ``true`` and ``false``); a ``--random``
distribution is ``loguniform:LOW:HIGH``, ``uniform:LOW:HIGH``, ``randint:LOW:HIGH`` or
``choice:A,B,C``.

Exit status: 0 every trial ended (completed or diverged), 1 a trial failed or the sweep could not
run (its reason is printed and in ``sweep.json``), 2 invalid settings, 130 interrupted (Ctrl-C;
continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cifarhelpers.errors import CifarHelpersError, ConfigError
from cifarhelpers.sweep import BACKENDS, SweepConfig, resume_sweep, run_sweep
from cifarhelpers.training import FIELD_NAMES, PROFILE_CHOICES, PROFILES, TrainConfig, resolve_device, resolve_profile

from .common import add_boolean, add_version, upgrade_old_booleans
from .train import _UNSET, add_config_flags, field_parser, given_fields, report_error

#: TrainConfig fields without a flag here: the sweep sets them (--seeds, --resume and --output-dir are the sweep's).
_NO_FLAG = ("seed", "resume", "output_dir")


def build_parser() -> argparse.ArgumentParser:
    """The ``cifar-sweep`` parser: the sweep's flags, then one flag per TrainConfig field."""
    parser = argparse.ArgumentParser(
        prog="cifar-sweep",
        description="Run a grid or random search over TrainConfig fields, times seeds: every trial an ordinary "
                    "run folder, and a results table (CSV and printed) and plot in a new sweep folder. Trials run "
                    "on Ray Tune when it is installed (pip install 'cifarhelpers[sweep]'), else one after another.")
    sweep = parser.add_argument_group("the sweep")
    sweep.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                       help="a swept field and its values (repeatable: every combination runs)")
    sweep.add_argument("--random", action="append", default=[], metavar="FIELD=KIND:A:B",
                       help="a randomly searched field: loguniform:LOW:HIGH, uniform:LOW:HIGH, randint:LOW:HIGH "
                            "or choice:A,B,C (repeatable)")
    sweep.add_argument("--num-samples", type=int, default=1, help="random draws per grid point (default: 1)")
    sweep.add_argument("--search-seed", type=int, default=0, help="seed of the random draws (default: 0)")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0], help="each config runs once per seed (default: 0)")
    sweep.add_argument("--backend", choices=BACKENDS, default=None,
                       help="auto (default): Ray Tune when installed, else sequential; ray; sequential")
    sweep.add_argument("--address", default=None,
                       help="an existing Ray cluster ('auto', 'ray://HOST:10001', 'HOST:6379'); default: Ray "
                            "starts here with this machine's cores and GPUs")
    sweep.add_argument("--cpus-per-trial", type=float, default=None, help="Ray CPUs per trial (default: 1)")
    sweep.add_argument("--gpus-per-trial", type=float, default=None,
                       help="Ray GPUs per trial, fractions share a GPU (default: 0.25 with CUDA, else 0)")
    sweep.add_argument("--max-concurrent-trials", type=int, default=None,
                       help="at most this many trials at once (default: no limit)")
    sweep.add_argument("--output-dir", default="runs", help="parent of the new sweep folder (default: runs)")
    sweep.add_argument("--resume", default=None, metavar="SWEEP_FOLDER",
                       help="continue this sweep: finished trials are skipped, interrupted ones resume")
    sweep.add_argument("--profile", choices=PROFILE_CHOICES, default="auto",
                       help="the base config's profile, as cifar-train's: auto (default): full on a CUDA GPU, "
                            "short elsewhere; " + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    add_boolean(sweep, "--quiet", default=False, help="no progress lines")
    add_version(parser)
    add_config_flags(parser.add_argument_group("the base config of every trial (cifar-train's flags)"),
                     skip=_NO_FLAG)
    return parser


def _parse(name: str, text: str) -> Any:
    if name not in FIELD_NAMES:
        return text  # SweepConfig names the unknown field and the valid ones
    try:
        return field_parser(name)(text)
    except argparse.ArgumentTypeError as err:
        raise ConfigError(f"{name}={text!r}: {err}") from None


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise ConfigError(f"{flag} {item!r} is not FIELD=VALUES, e.g. {flag} max_lr=0.001,0.01")
        out.append((name.strip().replace("-", "_"), values))
    return out


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["max_lr=0.001,0.01", ...]`` to ``{"max_lr": [0.001, 0.01]}``, each value of its field's type.

    Raises:
        ConfigError: not ``FIELD=V1,V2``, or a value of the wrong type (named).
    """
    return {name: [_parse(name, v.strip()) for v in values.split(",")] for name, values in _pairs(items, "--grid")}


def parse_random(items: list[str]) -> dict[str, tuple]:
    """``["max_lr=loguniform:1e-4:1e-1"]`` to ``{"max_lr": ("loguniform", 1e-4, 1e-1)}``.

    Raises:
        ConfigError: not ``FIELD=KIND:A:B`` or ``FIELD=choice:A,B``, or a bound that is not a number.
    """
    out = {}
    for name, text in _pairs(items, "--random"):
        kind, _, rest = text.partition(":")
        if kind == "choice":
            out[name] = ("choice", [_parse(name, v.strip()) for v in rest.split(",")])
            continue
        bounds = rest.split(":")
        try:
            out[name] = (kind, *(int(b) if kind == "randint" else float(b) for b in bounds))
        except ValueError:
            raise ConfigError(f"--random {name}={text!r}: the bounds of {kind!r} must be numbers, e.g. "
                              f"{name}=loguniform:1e-4:1e-1") from None
    return out


def _where(args: argparse.Namespace) -> dict[str, Any]:
    resources = {k: v for k, v in (("cpu", args.cpus_per_trial), ("gpu", args.gpus_per_trial)) if v is not None}
    where = {"backend": args.backend, "address": args.address, "max_concurrent_trials": args.max_concurrent_trials,
             "resources_per_trial": resources or None}
    return {k: v for k, v in where.items() if v is not None}


def spec_from_args(args: argparse.Namespace) -> SweepConfig:
    """The sweep of a new ``cifar-sweep``: base = the model's and recipe's own settings (``TrainConfig.preset``),
    then the profile, then the flags given.

    Raises:
        ConfigError: an invalid flag, grid, distribution or trial (named).
    """
    device = resolve_device(args.device if args.device is not _UNSET else "auto")
    base = TrainConfig.preset(**{**resolve_profile(args.profile, device.type).overrides,
                                 **given_fields(args, _NO_FLAG)})
    return SweepConfig(base=base, grid=parse_grid(args.grid), random=parse_random(args.random),
                       num_samples=args.num_samples, seeds=tuple(args.seeds), search_seed=args.search_seed,
                       output_dir=args.output_dir, **_where(args))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cifar-sweep`` and ``python -m cifarhelpers.cli.sweep``; returns the exit
    status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(upgrade_old_booleans(parser, argv))
    try:
        if args.resume:
            given = sorted(given_fields(args, _NO_FLAG)) + [f"--{k}" for k in ("grid", "random") if getattr(args, k)]
            if given:
                raise ConfigError(f"--resume continues a sweep as it was defined; drop {given} (only --backend, "
                                  "--address, --cpus-per-trial, --gpus-per-trial and --max-concurrent-trials may "
                                  "change)")
            result = resume_sweep(args.resume, progress=not args.quiet, **_where(args))
        else:
            result = run_sweep(spec_from_args(args), progress=not args.quiet)
    except CifarHelpersError as err:
        return report_error("cifar-sweep", err)
    except KeyboardInterrupt:
        print("cifar-sweep: interrupted; continue with cifar-sweep --resume SWEEP_FOLDER", file=sys.stderr)
        return 130
    if args.quiet:
        print(result.table_text)
    if result.status != "completed":  # Ray stopped by Ctrl-C returns instead of raising
        print(f"cifar-sweep: the sweep stopped before every trial ended; continue with cifar-sweep --resume "
              f"{result.sweep_dir}", file=sys.stderr)
        return 130
    failed = [t["name"] for t in result.trials if t["status"] == "failed"]
    if failed:
        print(f"cifar-sweep: {len(failed)} trial(s) failed: {failed}; reasons in {result.sweep_dir / 'sweep.json'}; "
              f"cifar-sweep --resume {result.sweep_dir} runs them again", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
