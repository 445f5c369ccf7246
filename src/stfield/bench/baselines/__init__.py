"""Baselines, one file each; add a new one with one line in ``BASELINES``.

Every entry is a factory taking keyword options (``seed``, ``epochs``...; the non-neural ones
ignore what they do not use) and returning an unfitted object with ``fit(X, coords)`` and
``predict(coords, exclude_self=False)`` (see :class:`Baseline`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Baseline
from .gaussian import GaussianSmoother
from .knn import KNNInterpolator
from .mean import GeneMean

Factory = Callable[..., Baseline]


def _lazy(module: str, name: str) -> Factory:
    # Torch-based baselines import torch only when used.
    def factory(**kwargs: Any) -> Baseline:
        import importlib

        return getattr(importlib.import_module(f".{module}", __name__), name)(**kwargs)

    factory.__name__ = name
    return factory


#: name -> factory of an unfitted baseline.
BASELINES: dict[str, Factory] = {
    "knn": KNNInterpolator,
    "gaussian": GaussianSmoother,
    "mean": GeneMean,
    "ffn": _lazy("inr", "ffn"),
    "siren": _lazy("inr", "siren"),
    "hashgrid": _lazy("inr", "hashgrid"),
    "stage": _lazy("stage", "STAGE"),
}

__all__ = ["BASELINES", "Baseline", "GaussianSmoother", "GeneMean", "KNNInterpolator"]
