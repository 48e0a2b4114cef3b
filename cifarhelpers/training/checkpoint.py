"""Checkpoints that survive a kill, and loading that never runs code from a file.

* :func:`save_checkpoint` writes ``checkpoint.pt`` in the run folder after every epoch: model,
  optimizer, scheduler, epoch, history, config, data hash and RNG states, atomically (temp file,
  fsync, rename), so the last good checkpoint is never replaced by a partial one.
* :func:`load_checkpoint` and :func:`load_weights` use ``torch.load(weights_only=True)``: a file
  that needs arbitrary pickled objects (which could run code while loading) is refused with a
  clear error; a checkpoint or weights file of another model names the mismatch, not every missing key.
* :func:`check_resumable` refuses to resume with another config (listing every differing field)
  or another copy of the data, so a resumed run computes exactly what the original would have.

Example::

    ckpt = load_checkpoint("runs/20261122-101500-custom_resnet/checkpoint.pt")
    ckpt["epoch"], ckpt["history"][-1]["test_accuracy"]
    load_weights(model, "runs/.../model.pt")      # CheckpointError if it is another model's
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cifarhelpers.errors import CheckpointError
from cifarhelpers.files import atomic_write
from cifarhelpers.models import MODELS, build_model, registry_name

from .reproducibility import restore_rng_states, rng_states

CHECKPOINT_FILE = "checkpoint.pt"
#: A run folder's metrics and final weights (written by :class:`cifarhelpers.training.run_folder.RunFolder`; read here).
METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.pt"
FORMAT = "cifarhelpers-checkpoint-v1"
#: Config fields that may differ when resuming: where things are, not what is computed.
RESUMABLE_CHANGES = frozenset({"resume", "output_dir", "data_root", "download", "device", "compile"})


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format tag) to ``run_dir/checkpoint.pt`` atomically.

    Args:
        run_dir: the run folder (must exist).
        state: dict of tensors, state dicts and plain Python values only (what
            ``torch.load(weights_only=True)`` reads back): ``epoch`` (int, epochs finished),
            ``model``, ``optimizer``, ``scheduler`` (state dicts), ``scaler`` (a GradScaler's state
            dict or None), ``history`` (list of per-epoch dicts), ``config`` (``TrainConfig.to_dict()``),
            ``data_sha256`` (str) and ``rng`` (:func:`~cifarhelpers.training.reproducibility.rng_states` plus
            ``"loader"``, the train loader generator's state).

    Returns:
        The path of the checkpoint.

    Raises:
        RunWriteError: the write failed (disk full, read-only folder); the previous checkpoint is
            intact and no temp file is left behind.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def training_state(*, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, schedule,
                   scaler: torch.amp.GradScaler | None, config: dict[str, Any], data_sha256: str,
                   loader_generator: torch.Generator) -> dict[str, Any]:
    """What :func:`save_checkpoint` keeps after ``epoch`` epochs (the history is added by the run
    folder): weights, optimizer, scheduler, GradScaler (None without fp16), config, data hash, and
    the global and train-loader RNG states. :func:`restore_training_state` puts them back."""
    return {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
            "config": config, "data_sha256": data_sha256,
            "rng": {**rng_states(), "loader": loader_generator.get_state()}}


def restore_training_state(state: dict[str, Any], optimizer: torch.optim.Optimizer, schedule,
                           scaler: torch.amp.GradScaler | None) -> None:
    """Load a checkpoint's optimizer, scheduler, GradScaler (when both sides have one: a run
    resumed on a GPU of another precision starts a fresh scaler) and global RNG states. The model's
    weights are loaded separately (:func:`load_weights`), before the model moves to its device."""
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])  # the loss scale reached, not a fresh 65536
    if state.get("rng"):
        restore_rng_states(state["rng"])  # each epoch reseeds anyway; this keeps the streams whole


def safe_load(path: str | os.PathLike, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong and what to do.

    ``weights_only=True`` restricts unpickling to tensors, state dicts and plain Python values
    (dict, list, tuple, str, int, float, bool, None), so no code from the file ever runs.

    Args:
        path: the file.
        what: what the file is, for messages (``"checkpoint"``, ``"weights file"``).
        map_location: passed to ``torch.load``; ``"cpu"`` by default, so a GPU checkpoint loads anywhere.

    Raises:
        CheckpointError: the file is missing, empty, truncated or not a torch file, or it needs
            arbitrary pickled objects (refused without unpickling them: that could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist: check the path (a run folder holds "
                              f"{CHECKPOINT_FILE} and, once finished, model.pt)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the pickle protocol of files it then refuses
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(path, what, err) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError,
            TypeError) as err:
        first = str(err).splitlines()[0] if str(err) else "the file ended early"
        raise CheckpointError(f"{what} {str(path)!r} cannot be read ({type(err).__name__}: {first}): it is "
                              "truncated, empty or not a torch file. Use an earlier checkpoint or train "
                              "again.") from err


def _refusal(path: Path, what: str, err: Exception) -> CheckpointError:
    """The error for a file ``torch.load(weights_only=True)`` refused to unpickle."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    culprit = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line),
                   lines[0] if lines else "no details")
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        head = b""
    if head != b"PK" and head[:1] != b"\x80":  # neither torch's zip format nor a pickle
        return CheckpointError(f"{what} {str(path)!r} is not a torch file (torch.save writes a zip archive or a "
                               "pickle; this is neither): check the path, or use an earlier checkpoint.")
    return CheckpointError(
        f"refused to load {what} {str(path)!r}: it contains pickled Python objects other than tensors and "
        f"plain values, and unpickling them could run arbitrary code, so it was refused before any of "
        f"them was built ({culprit}). Only files written by cifarhelpers and plain state_dicts are loaded: if the file "
        f"is your own, save model.state_dict() with torch.save and load that."
    )


#: What every checkpoint written by :func:`save_checkpoint` from :func:`~cifarhelpers.training.train.fit` holds.
REQUIRED_KEYS = ("epoch", "model", "optimizer", "scheduler", "history", "config", "data_sha256")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (a run folder is accepted too).

    Args:
        path: ``checkpoint.pt`` or the run folder holding it.
        map_location: where tensors go (default the CPU).

    Returns:
        The checkpoint dict: ``epoch`` (int, epochs finished), ``model``/``optimizer``/``scheduler``
        state dicts, ``history`` (list of per-epoch dicts), ``config`` (dict), ``data_sha256``,
        ``rng`` and ``format``.

    Raises:
        CheckpointError: missing, unreadable or unsafe file, or not a complete cifarhelpers checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_FILE).is_file():
            raise CheckpointError(f"run folder {str(path)!r} has no {CHECKPOINT_FILE}: no epoch finished there (its "
                                  "metrics.json says why the run stopped), so there is nothing to resume. Start a "
                                  "new run.")
        path = path / CHECKPOINT_FILE
    state = safe_load(path, "checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a cifarhelpers checkpoint (no '{FORMAT}' tag): resume from a "
                              "run folder written by cifar-train, or load plain weights with load_weights()")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing or not isinstance(state.get("epoch"), int) or not isinstance(state.get("history"), list):
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete (missing {missing or 'a valid epoch/history'}): "
                              "it was not written by this version of cifarhelpers. Start a new run.")
    return state


#: Recipe -> the config field whose absence marks a checkpoint from before the recipe's schedule changed
#: (``onecycle_sgd`` was OneCycleLR until it became cifar10-fast's piecewise-linear schedule, with logit_scale).
RECIPES_CHANGED_SINCE = {"onecycle_sgd": "logit_scale"}


def check_resumable(state: dict[str, Any], config: dict[str, Any], data_sha256: str | None = None, *,
                    defaults: dict[str, Any] | None = None) -> None:
    """Raise CheckpointError unless ``config`` (and the data, when ``data_sha256`` is given) are
    those the checkpoint was made with, up to :data:`RESUMABLE_CHANGES`, so a resumed run computes
    exactly what the original would have.

    Args:
        state: a checkpoint from :func:`load_checkpoint`.
        config: ``TrainConfig.to_dict()`` of the run that would resume.
        data_sha256: the content hash of the data the resumed run loaded; None skips that check
            (so the config can be checked before any data is read).
        defaults: every field's default (``TrainConfig().to_dict()``): a field added after the checkpoint
            was written counts as its default there (each new field's default keeps the earlier behaviour).

    Raises:
        CheckpointError: the message lists every differing field with both values, or the two hashes;
            or the checkpoint comes from a recipe whose schedule has changed since (:data:`RECIPES_CHANGED_SINCE`).
    """
    written = state.get("config", {})
    marker = RECIPES_CHANGED_SINCE.get(written.get("recipe"))
    if marker is not None and marker not in written:
        raise CheckpointError(f"cannot resume: this checkpoint was made by the earlier {written['recipe']!r} recipe, "
                              "whose schedule has changed since; start a new run")
    saved = {**(defaults or {}), **written}
    changed = sorted(k for k in set(saved) | set(config)
                     if k not in RESUMABLE_CHANGES and saved.get(k) != config.get(k))
    if changed:
        detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {config.get(k)!r}" for k in changed)
        raise CheckpointError(f"cannot resume: {len(changed)} config field(s) differ from the checkpoint's "
                              f"({detail}). Resume with the original settings (cifar-train --resume FOLDER "
                              "alone reuses them), or start a new run.")
    if data_sha256 is not None and state.get("data_sha256") != data_sha256:
        raise CheckpointError(f"cannot resume: the data differs from the checkpoint's (sha256 "
                              f"{str(state.get('data_sha256'))[:12]}... vs now {data_sha256[:12]}...). Point "
                              "data_root at the copy the run started with.")


#: Prefixes that wrappers add to every key: torch.compile's module and (Distributed)DataParallel.
WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def load_weights(model: nn.Module, source: str | os.PathLike | dict[str, torch.Tensor]) -> nn.Module:
    """Load a ``state_dict`` (a ``model.pt``, a checkpoint, a run folder, or a dict) into ``model``.

    Files are read with ``torch.load(weights_only=True)`` (see :func:`safe_load`). Keys saved from
    a ``torch.compile``-d or ``DataParallel`` model (prefixed ``_orig_mod.`` or ``module.``) are
    accepted.

    Returns:
        ``model``, with the weights loaded (in place, same device and dtype as before).

    Raises:
        CheckpointError: unsafe or unreadable file, or weights that do not fit ``model``: the
            message first names the model the weights come from (recorded in the checkpoint or
            the run folder's ``metrics.json``, else recognized from the keys and shapes), then
            counts missing and unexpected keys and shape mismatches with a few examples.
    """
    saved_from = None
    if isinstance(source, dict):
        state, where = source, "the given state_dict"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / (WEIGHTS_FILE if (path / WEIGHTS_FILE).is_file() else CHECKPOINT_FILE)
        state, where = safe_load(path, "weights file"), repr(str(path))
        saved_from = _model_name_beside(path)
        if isinstance(state, dict) and state.get("format") == FORMAT:
            saved_from = state.get("config", {}).get("model", saved_from)
            state = state["model"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where} does not hold a state_dict (a non-empty dict of parameter name -> tensor) "
                              f"but {type(state).__name__}: save model.state_dict(), or point at a run folder")
    state = _strip_prefixes(state)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        this = registry_name(model) or type(model).__name__
        saved_from = saved_from or _guess_model(state)
        if saved_from and saved_from != this:
            head = (f"weights in {where} are from model {saved_from!r}, not {this!r}: build that model "
                    f"(build_model({saved_from!r})) to load them, or pick the file of a {this!r} run.")
        else:
            head = (f"weights in {where} do not fit model {this!r}"
                    + (f" although they were saved from {saved_from!r} (another version of the model?)." if saved_from
                       else ", and they match no registered model: build the model they were saved from."))
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (e.g. {shapes[:2]})")
        raise CheckpointError(head + " Details: " + "; ".join(parts) + ".")
    model.load_state_dict(state)
    return model


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _guess_model(state: dict[str, torch.Tensor]) -> str | None:
    """The registered model whose state_dict has exactly these keys and shapes (built on the
    meta device: no memory, no initialization cost), else None."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name, cls in MODELS.items():
        try:
            with torch.device("meta"):
                candidate = cls()
        except Exception:  # noqa: BLE001 - a model that cannot be built on meta is just not a match
            continue
        if {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == shapes:
            return name
    return None


def load_run_model(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """The trained model of a finished run folder and its ``metrics.json``.

    Builds the model named in ``metrics.json``, loads ``model.pt`` (``weights_only=True``), moves it
    to ``device`` and sets eval mode.

    Raises:
        CheckpointError: the folder has no metrics.json (not a run folder) or no model.pt (its training
            did not finish: the message says how to resume it), metrics.json is unreadable or names no
            model, or the weights do not fit that model.
    """
    run_dir = Path(run_dir)
    if not (run_dir / METRICS_FILE).is_file():
        raise CheckpointError(f"{str(run_dir)!r} is not a run folder: it has no metrics.json. Pass a folder written "
                              "by cifar-train or notebook 04.")
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise CheckpointError(
            f"run folder {str(run_dir)!r} has no model.pt: its training did not finish. Run notebook 04 to the end "
            f"(or continue it there with resume={str(run_dir)!r}) or, for a cifar-train run, resume it with "
            f"cifar-train --resume {run_dir}. Finish the run first: model.pt is written after the last epoch, and "
            "the folder's metrics.json says why it stopped.")
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        name = metrics["config"]["model"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{str(run_dir)!r} is not a finished run folder: its metrics.json is unreadable "
                              f"({err}). Point at a folder written by cifar-train or notebook 04.") from err
    scale = metrics["config"].get("logit_scale", 1.0)  # runs from before TrainConfig.logit_scale: unscaled
    model = load_weights(build_model(name, logit_scale=scale), run_dir / WEIGHTS_FILE)
    return model.to(device).eval(), metrics


def _model_name_beside(path: Path) -> str | None:
    metrics = path.parent / METRICS_FILE
    try:
        return json.loads(metrics.read_text())["config"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
