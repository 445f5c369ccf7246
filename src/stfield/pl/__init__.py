"""Plots that read what ``stfield.tl`` wrote."""

from .spatial import save_figure, spatial_genes
from .vq import vq_code_map, vq_neighbourhood_map, vq_top_genes

__all__ = ["save_figure", "spatial_genes", "vq_code_map", "vq_neighbourhood_map", "vq_top_genes"]
