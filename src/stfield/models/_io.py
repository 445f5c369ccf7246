"""Versioned model directories: ``config.json`` + ``weights.safetensors`` (+ extra arrays).

Shared by every model family. A directory is written to a temporary name and renamed, so a
failed save never leaves a half-written model; loading checks the format version and the kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._errors import StfieldFileNotFoundError, input_error
from .._utils import atomic_path

#: Bumped whenever the on-disk layout changes incompatibly.
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
ARRAYS_FILE = "arrays.npz"


def save_model_dir(
    path: str | os.PathLike[str],
    kind: str,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Save a model directory atomically.

    Parameters
    ----------
    path
        Target directory (replaced if it exists).
    kind
        Model family, e.g. ``"suica"`` or ``"hvqvae"``; checked on load.
    config
        JSON-serialisable constructor arguments and metadata (gene names, normalisation...).
    state_dict
        Tensors to store in ``weights.safetensors``.
    arrays
        Optional NumPy arrays (e.g. coordinate normalisation) stored in ``arrays.npz``.
    """
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "config": config}
    with atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        if arrays:
            np.savez(tmp / ARRAYS_FILE, **arrays)
    return Path(path)


def load_model_dir(
    path: str | os.PathLike[str], kind: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Load ``(config, state_dict, arrays)`` from a directory written by :func:`save_model_dir`."""
    path = Path(path)
    if not path.exists():
        raise StfieldFileNotFoundError(f"{path}: model directory does not exist")
    if not path.is_dir():
        raise input_error(
            "not a model directory (it is a file)", str(path), "pass the folder written by fit"
        )
    config_file = path / CONFIG_FILE
    if not config_file.exists():
        raise input_error(
            f"no {CONFIG_FILE} found (files: {sorted(p.name for p in path.iterdir())[:8]})",
            str(path),
            "pass a model directory written by stfield",
        )
    try:
        meta = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise input_error(
            f"{CONFIG_FILE} is not valid JSON ({exc})", str(path), "re-save the model"
        ) from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise input_error(
            f"{CONFIG_FILE} has no format_version: not an stfield model",
            str(path),
            "pass a model directory written by stfield",
        )
    if meta["format_version"] != FORMAT_VERSION:
        raise input_error(
            f"model format version {meta['format_version']} is not supported "
            f"(this stfield reads version {FORMAT_VERSION})",
            str(path),
            "re-fit the model with this version of stfield",
        )
    if meta.get("kind") != kind:
        raise input_error(
            f"this is a {meta.get('kind')!r} model, expected {kind!r}",
            str(path),
            f"pass a {kind} model directory",
        )
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise input_error(
            f"{WEIGHTS_FILE} is missing or corrupt ({exc})", str(path), "re-save the model"
        ) from None
    arrays: dict[str, np.ndarray] = {}
    if (path / ARRAYS_FILE).exists():
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta["config"], state, arrays


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
