"""Small shared utilities: seeding, device choice, atomic file writes."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ._errors import input_error


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if imported) torch; return a NumPy generator for local use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries (e.g. sklearn) may use the global RNG
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(accelerator: str = "auto") -> str:
    """Map ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` to a torch device string."""
    import torch

    acc = accelerator.lower()
    if acc == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if acc.startswith("cuda"):
        if not torch.cuda.is_available():
            raise input_error(
                f"accelerator={accelerator!r} but CUDA is not available",
                "accelerator",
                "use accelerator='auto' or 'cpu'",
            )
        return acc
    if acc == "mps":
        if not torch.backends.mps.is_available():
            raise input_error("MPS is not available", "accelerator", "use accelerator='cpu'")
        return acc
    if acc == "cpu":
        return acc
    raise input_error(
        f"unknown accelerator {accelerator!r}", "accelerator", "use 'auto', 'cpu' or 'cuda'"
    )


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    Works for files and directories: whatever the caller creates at the yielded path replaces
    ``target`` in one rename, so a failure midway never leaves a half-written output behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written for {target}")
        if target.is_dir() and not target.is_symlink():
            backup = tmp_dir / (target.name + ".old")
            target.rename(backup)
            tmp.rename(target)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_h5ad(adata, path: str | os.PathLike[str]) -> Path:
    """Write ``adata`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return path
