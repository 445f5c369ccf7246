"""Tools: scanpy-style functions that take an AnnData and write results back into it.

Continuous field (SUICA): :func:`fit_suica`, :func:`impute_spots`, :func:`impute_genes`,
:func:`denoise`. Discrete codes (hierarchical VQ-VAE): :func:`vq_fit`, :func:`vq_encode`,
:func:`vq_neighbourhoods`, :func:`vq_svg`, :func:`vq_gene_attribution`, :func:`vq_de`.
"""

from .spatial import morans_i
from .suica import denoise, fit_suica, impute_genes, impute_spots
from .vq import (
    vq_de,
    vq_demo,
    vq_encode,
    vq_fit,
    vq_gene_attribution,
    vq_neighbourhoods,
    vq_svg,
)

__all__ = [
    "denoise",
    "fit_suica",
    "impute_genes",
    "impute_spots",
    "morans_i",
    "vq_de",
    "vq_demo",
    "vq_encode",
    "vq_fit",
    "vq_gene_attribution",
    "vq_neighbourhoods",
    "vq_svg",
]
