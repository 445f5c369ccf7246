"""Spatial gene maps: measured, predicted, side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)  # headless by default; an interactive backend set earlier wins
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from .._constants import SPATIAL_KEY, UNS_KEY
from .._errors import input_error
from .._utils import atomic_path


def _gene_values(adata: AnnData, gene: str, layer: str | None) -> np.ndarray:
    if gene not in adata.var_names:
        raise input_error(
            f"gene {gene!r} not found ({adata.n_vars} genes, e.g. {list(adata.var_names[:5])})",
            "genes",
            "pick genes from adata.var_names",
        )
    X = adata.X if layer is None else adata.layers[layer]
    col = X[:, adata.var_names.get_loc(gene)]
    return np.asarray(col.toarray() if sp.issparse(col) else col, dtype=np.float64).ravel()


def _spot_size(adata: AnnData) -> float | None:
    """Side of one spot in µm: a rendered grid's step, else the binning size, else unknown."""
    uns = adata.uns.get(UNS_KEY, {})
    return uns.get("grid", {}).get("step_um") or uns.get("bin_size_um")


def _draw(
    ax: plt.Axes,
    coords: np.ndarray,
    values: np.ndarray,
    size_um: float | None,
    vmax: float,
    cmap: str,
) -> matplotlib.cm.ScalarMappable:
    ax.set_aspect("equal")
    pad = size_um or 0.0
    ax.set_xlim(coords[:, 0].min() - pad, coords[:, 0].max() + pad)
    ax.set_ylim(coords[:, 1].max() + pad, coords[:, 1].min() - pad)  # image convention: y down
    ax.set_xticks([])
    ax.set_yticks([])
    if size_um is None:  # unknown spot size: plain dots
        return ax.scatter(
            coords[:, 0], coords[:, 1], c=values, s=6, cmap=cmap, vmin=0, vmax=vmax, linewidths=0
        )
    # Squares in data units tile a binned slice or a rendered grid exactly at any figure size.
    half = size_um / 2
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    polys = PolyCollection(
        coords[:, None, :2] + corners[None],
        array=values,
        cmap=cmap,
        linewidths=0,
        antialiaseds=False,
    )
    polys.set_clim(0, vmax)
    ax.add_collection(polys)
    return polys


def spatial_genes(
    panels: Mapping[str, tuple[AnnData, str | None]] | AnnData,
    genes: Sequence[str],
    save: str | os.PathLike[str] | None = None,
    cmap: str = "magma",
    panel_size: float = 3.0,
) -> Figure:
    """Grid of spatial maps: one row per panel (measured, predicted...), one column per gene.

    Parameters
    ----------
    panels
        ``{"measured": (adata, None), "SUICA": (pred_adata, "stfield_imputed")}`` — each value
        an AnnData and the layer to plot (``None``: ``X``) — or a single AnnData.
    genes
        Genes to show; each column shares one colour scale (the measured 99th percentile).
    save
        Write the figure to this path (PNG/PDF by extension), atomically.
    """
    if isinstance(panels, AnnData):
        panels = {"measured": (panels, None)}
    if not genes:
        raise input_error("no genes given", "genes", "pass at least one gene name")
    n_rows, n_cols = len(panels), len(genes)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(panel_size * n_cols, panel_size * n_rows),
        squeeze=False,
        layout="constrained",
    )
    first = next(iter(panels.values()))
    for j, gene in enumerate(genes):
        ref = _gene_values(first[0], gene, first[1])
        vmax = float(np.percentile(ref, 99)) if ref.size else 1.0
        vmax = vmax if vmax > 0 else max(float(ref.max(initial=0.0)), 1.0)
        for i, (label, (adata, layer)) in enumerate(panels.items()):
            if SPATIAL_KEY not in adata.obsm:
                raise input_error(f"panel {label!r} has no obsm['spatial']", "pl.spatial_genes")
            coords = np.asarray(adata.obsm[SPATIAL_KEY], dtype=np.float64)
            sc = _draw(
                axes[i, j], coords, _gene_values(adata, gene, layer), _spot_size(adata), vmax, cmap
            )
            if i == 0:
                axes[i, j].set_title(gene)
            if j == 0:
                axes[i, j].set_ylabel(label)
        fig.colorbar(sc, ax=axes[:, j], shrink=0.6, location="bottom")
    if save is not None:
        save_figure(fig, save)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save ``fig`` atomically (temporary file + rename) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=os.path.splitext(str(path))[1].lstrip(".") or "png")
    plt.close(fig)
