"""Baselines, one file each; add a new one with one line in ``BASELINES``."""

from __future__ import annotations

from collections.abc import Callable

from ._base import Baseline
from .knn import KNNInterpolator
from .mean import GeneMean

#: name -> factory of an unfitted baseline.
BASELINES: dict[str, Callable[[], Baseline]] = {
    "knn": KNNInterpolator,
    "mean": GeneMean,
}

__all__ = ["BASELINES", "Baseline", "GeneMean", "KNNInterpolator"]
