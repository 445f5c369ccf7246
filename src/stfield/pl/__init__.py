"""Plots that read what ``stfield.tl`` wrote."""

from .spatial import save_figure, spatial_genes

__all__ = ["save_figure", "spatial_genes"]
