"""Preprocessing: binning transcripts, QC, normalisation, spatial graphs."""

from .binning import bin_transcripts
from .graph import spatial_neighbors
from .normalize import auto_min_spot_counts, control_genes, filter_slice, normalize_suica

__all__ = [
    "auto_min_spot_counts",
    "bin_transcripts",
    "control_genes",
    "filter_slice",
    "normalize_suica",
    "spatial_neighbors",
]
