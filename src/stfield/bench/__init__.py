"""Benchmarks: degradation protocols, metrics, baselines and reports."""

from . import metrics, tasks
from .metrics import evaluate
from .tasks import GeneMask, SpatialSplit, add_gaussian_noise, mute_entries, spatial_split

__all__ = [
    "GeneMask",
    "SpatialSplit",
    "add_gaussian_noise",
    "evaluate",
    "metrics",
    "mute_entries",
    "spatial_split",
    "tasks",
]
