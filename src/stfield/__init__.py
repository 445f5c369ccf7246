"""stfield: continuous and discrete representations of spatial transcriptomics.

Sub-packages follow scanpy's convention: ``io`` (readers), ``pp`` (preprocessing),
``tl`` (tools writing back into AnnData), ``pl`` (plots), plus ``models``, ``bench`` and
``datasets``. Torch-heavy modules (``models``, ``train``, ``tl``) are imported on first use so
that ``stfield info`` and the readers start quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import bench, datasets, io, pl, pp

__version__ = "0.1.0"

_LAZY = ("models", "train", "tl", "data")

__all__ = ["__version__", "bench", "data", "datasets", "io", "models", "pl", "pp", "tl", "train"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'stfield' has no attribute {name!r}")
