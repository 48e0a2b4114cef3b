"""Checkpoints that survive a kill, and loading that never runs code from a file.

* :func:`save_checkpoint` writes ``checkpoint.pt`` in the run folder after every epoch: model,
  optimizer, scheduler, epoch, history, config, data hash and RNG states, atomically (temp file,
  fsync, rename), so the last good checkpoint is never replaced by a partial one.
* :func:`load_checkpoint` and :func:`load_weights` use ``torch.load(weights_only=True)``: a file
  that needs arbitrary pickled objects (which could run code while loading) is refused with a
  clear error, and a checkpoint or weights file from another model names the mismatch instead of
  listing every missing key.

Example::

    ckpt = load_checkpoint("runs/20261122-101500-custom_resnet/checkpoint.pt")
    ckpt["epoch"], ckpt["history"][-1]["test_accuracy"]
    load_weights(model, "runs/.../model.pt")      # CheckpointError if it is another model's
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .runs import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "cifarhelpers-checkpoint-v1"
#: Config fields that may differ when resuming: where things are, not what is computed.
RESUMABLE_CHANGES = frozenset({"resume", "output_dir", "data_root", "download", "device", "compile"})


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format tag) to ``run_dir/checkpoint.pt`` atomically.

    Args:
        run_dir: the run folder.
        state: dict of tensors, state dicts and plain Python values only (what
            ``torch.load(weights_only=True)`` reads back): ``epoch``, ``model``, ``optimizer``,
            ``scheduler``, ``history``, ``config``, ``data_sha256``, ``rng``...

    Raises:
        RunWriteError: the write failed; the previous checkpoint is intact.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def safe_load(path: str | os.PathLike, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong and what to do.

    Raises:
        CheckpointError: the file is missing, truncated or not a torch file, or it needs arbitrary
            pickled objects (refused: unpickling them could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist: check the path (a run folder holds "
                              f"{CHECKPOINT_FILE} and model.pt)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refused to load {what} {str(path)!r}: it contains Python objects other than tensors and plain "
            f"values, and unpickling them could run arbitrary code. Only files written by cifarhelpers "
            f"(or plain state_dicts) are loaded. Details: {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{what} {str(path)!r} cannot be read ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'empty'}): it is truncated or not a "
                              "torch file. Use an earlier checkpoint or train again.") from err


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (a run folder is accepted too).

    Raises:
        CheckpointError: missing, unreadable or unsafe file, or not a cifarhelpers checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    state = safe_load(path, "checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a cifarhelpers checkpoint (no '{FORMAT}' tag): resume from a "
                              "run folder written by cifar-train, or load plain weights with load_weights()")
    return state


def check_resumable(state: dict[str, Any], config: dict[str, Any], data_sha256: str) -> None:
    """Raise CheckpointError unless ``config`` and the data are those the checkpoint was made with
    (up to :data:`RESUMABLE_CHANGES`), so a resumed run computes what the original would have."""
    saved = state.get("config", {})
    changed = sorted(k for k in set(saved) | set(config)
                     if k not in RESUMABLE_CHANGES and saved.get(k) != config.get(k))
    if changed:
        detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {config.get(k)!r}" for k in changed)
        raise CheckpointError(f"cannot resume: the config differs from the checkpoint's ({detail}). Resume with "
                              "the original settings, or start a new run.")
    if state.get("data_sha256") != data_sha256:
        raise CheckpointError(f"cannot resume: the data differs from the checkpoint's (sha256 "
                              f"{str(state.get('data_sha256'))[:12]}... vs now {data_sha256[:12]}...). Point "
                              "data_root at the copy the run started with.")


def load_weights(model: nn.Module, source: str | os.PathLike | dict[str, torch.Tensor]) -> nn.Module:
    """Load a ``state_dict`` (a ``model.pt``, a checkpoint, a run folder, or a dict) into ``model``.

    Returns:
        ``model``, with the weights loaded.

    Raises:
        CheckpointError: unsafe or unreadable file, or weights that do not fit ``model``: the
            message counts missing and unexpected keys and shape mismatches, gives examples, and
            names the model the file was saved from when the run folder records it.
    """
    saved_from = None
    if isinstance(source, dict):
        state, where = source, "state_dict"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / ("model.pt" if (path / "model.pt").is_file() else CHECKPOINT_FILE)
        state, where = safe_load(path, "weights file"), repr(str(path))
        saved_from = _model_name_beside(path)
        if isinstance(state, dict) and state.get("format") == FORMAT:
            saved_from = state.get("config", {}).get("model", saved_from)
            state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where} does not hold a state_dict (a dict of tensors)")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (e.g. {shapes[:2]})")
        hint = (f" The file was saved from model {saved_from!r}: build that model (build_model({saved_from!r}))."
                if saved_from else " Build the model the file was saved from.")
        raise CheckpointError(f"weights in {where} do not fit {type(model).__name__}: " + "; ".join(parts) + "." + hint)
    model.load_state_dict(state)
    return model


def load_run_model(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """The trained model of a finished run folder and its ``metrics.json``.

    Builds the model named in ``metrics.json``, loads ``model.pt`` (``weights_only=True``), moves it
    to ``device`` and sets eval mode.

    Raises:
        CheckpointError: the folder lacks metrics.json or model.pt, or they do not fit together.
    """
    from .models import build_model

    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        name = metrics["config"]["model"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{str(run_dir)!r} is not a finished run folder: its metrics.json is missing or "
                              f"unreadable ({err}). Point at a folder written by cifar-train or notebook 04.") from err
    model = load_weights(build_model(name), run_dir / "model.pt")
    return model.to(device).eval(), metrics


def _model_name_beside(path: Path) -> str | None:
    metrics = path.parent / "metrics.json"
    try:
        return json.loads(metrics.read_text())["config"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
