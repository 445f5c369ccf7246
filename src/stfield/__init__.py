"""stfield: continuous and discrete representations of spatial transcriptomics.

Sub-packages follow scanpy's convention: ``io`` (readers), ``pp`` (preprocessing),
``tl`` (tools writing back into AnnData), ``pl`` (plots), plus ``models``, ``bench`` and
``datasets``. Torch-heavy modules (``models``, ``train``, ``tl``) are imported on first use so
that ``stfield info`` and the readers start quickly.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# OpenMP threads that spin while waiting make torch's CPU kernels collapse when the cores are
# shared with another busy process (measured on a 2-core machine with one other busy process:
# the SUICA demo fit took 153.6 s with the default policy, 7.4 s with PASSIVE). It only takes
# effect if set before torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
