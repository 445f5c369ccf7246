"""Plots of what :mod:`stfield.tl.vq` wrote: code map, neighbourhood map, top genes per code.

Each function builds a :class:`matplotlib.figure.Figure` without pyplot (no global state, no
display needed), returns it, and writes it atomically when ``save`` is given.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from anndata import AnnData
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .._constants import SPATIAL_KEY, UNS_KEY
from .._errors import input_error
from .._utils import atomic_path

_VQ = "vq"


def _save(fig: Figure, save: str | os.PathLike[str] | None, dpi: int = 120) -> None:
    if save is None:
        return
    fmt = os.path.splitext(str(save))[1].lstrip(".") or "png"
    with atomic_path(save) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt, bbox_inches="tight")


def _uns(adata: AnnData) -> dict[str, Any]:
    uns = adata.uns.get(UNS_KEY, {}).get(_VQ)
    if uns is None:
        raise input_error(
            f"uns[{UNS_KEY!r}][{_VQ!r}] is missing",
            "adata",
            "run stfield.tl.vq_encode(model, transcripts) first",
        )
    return uns


def _code_colours(k: int, seed: int = 0) -> ListedColormap:
    """``k`` distinct-looking colours in a fixed random order (neighbouring codes differ)."""
    rng = np.random.default_rng(seed)
    hsv = np.stack(
        [rng.permutation(np.linspace(0, 1, k, endpoint=False)), rng.uniform(0.45, 0.9, k)], 1
    )
    from matplotlib.colors import hsv_to_rgb

    rgb = hsv_to_rgb(np.column_stack([hsv[:, 0], hsv[:, 1], rng.uniform(0.6, 0.95, k)]))
    return ListedColormap(rgb)


def vq_code_map(
    adata: AnnData,
    branch: int | None = None,
    *,
    save: str | os.PathLike[str] | None = None,
    figsize: tuple[float, float] = (6.0, 5.5),
    title: str | None = None,
) -> Figure:
    """The code maps of every tile at branch ``M`` (default: coarsest), placed on the tissue."""
    uns = _uns(adata)
    maps = uns.get("code_maps")
    if maps is None:
        raise input_error(
            "no code maps stored", "adata", "run stfield.tl.vq_encode(..., code_maps=True)"
        )
    branches = [int(b) for b in uns["branches"]]
    m = max(branches) if branch is None else int(branch)
    if f"m{m}" not in maps:
        raise input_error(f"no code map for branch M={m}", "branch", f"use one of {branches}")
    cm = np.asarray(maps[f"m{m}"])
    origins = np.asarray(uns["tile_origins"], dtype=np.float64)
    size = float(uns["tile_size_um"])
    k = int(uns["codebook_size"])
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(1, 1, 1)
    cmap = _code_colours(k)
    for (x0, y0), img in zip(origins, cm, strict=True):
        ax.imshow(
            img,
            extent=(x0, x0 + size, y0 + size, y0),
            origin="upper",
            cmap=cmap,
            vmin=-0.5,
            vmax=k - 0.5,
            interpolation="nearest",
        )
    ax.set_xlim(origins[:, 0].min(), origins[:, 0].max() + size)
    ax.set_ylim(origins[:, 1].max() + size, origins[:, 1].min())  # image convention: y down
    ax.set_aspect("equal")
    used = int(np.unique(cm).size)
    ax.set_title(title or f"codes at branch M={m} ({used} of {k} used)")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    _save(fig, save)
    return fig


def vq_neighbourhood_map(
    adata: AnnData,
    key: str = "vq_neighbourhood",
    *,
    save: str | os.PathLike[str] | None = None,
    figsize: tuple[float, float] = (6.5, 5.5),
    point_size: float = 8.0,
    title: str | None = None,
) -> Figure:
    """Cell centroids coloured by neighbourhood (``obs[key]``)."""
    if key not in adata.obs:
        raise input_error(
            f"obs[{key!r}] not found", "key", "run stfield.tl.vq_neighbourhoods first"
        )
    if SPATIAL_KEY not in adata.obsm:
        raise input_error(f"obsm[{SPATIAL_KEY!r}] missing", "adata", "run vq_encode first")
    xy = np.asarray(adata.obsm[SPATIAL_KEY])
    lab = adata.obs[key].astype("category")
    cats = list(lab.cat.categories)
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(1, 1, 1)
    palette = _palette(len(cats))
    for i, c in enumerate(cats):
        sel = (lab == c).to_numpy()
        if not sel.any():
            continue
        colour = (0.8, 0.8, 0.8) if c in ("none", "other") else palette[i]
        ax.scatter(xy[sel, 0], xy[sel, 1], s=point_size, color=colour, label=f"{c} ({sel.sum()})")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    ax.set_title(title or f"neighbourhoods ({key})")
    _save(fig, save)
    return fig


def _palette(n: int) -> list[tuple[float, float, float]]:
    from matplotlib import colormaps

    base = colormaps["tab20" if n > 10 else "tab10"]
    return [tuple(base(i % base.N)[:3]) for i in range(n)]


def vq_top_genes(
    adata: AnnData,
    key: str = "vq_svg",
    *,
    n_groups: int = 6,
    n_genes: int = 5,
    save: str | os.PathLike[str] | None = None,
    panel_size: tuple[float, float] = (2.6, 2.2),
) -> Figure:
    """Top enriched genes per code (or neighbourhood) from :func:`stfield.tl.vq.vq_svg`.

    One bar panel per group (the ``n_groups`` largest), bars = log2 enrichment of the
    ``n_genes`` most enriched genes.
    """
    uns = _uns(adata)
    if key not in uns:
        raise input_error(
            f"uns[{UNS_KEY!r}][{_VQ!r}][{key!r}] missing", "adata", "run vq_svg first"
        )
    res = uns[key]
    groups = np.asarray(res["groups"]).astype(str)
    genes = np.asarray(res["genes"]).astype(str)
    enrich = np.asarray(res["log2_enrichment"], dtype=np.float64)
    sizes = np.asarray(res["group_sizes"])
    order = np.argsort(-sizes, kind="stable")[: max(int(n_groups), 1)]
    ncol = min(3, len(order))
    nrow = int(np.ceil(len(order) / ncol))
    fig = Figure(figsize=(panel_size[0] * ncol, panel_size[1] * nrow))
    for p, gi in enumerate(order):
        ax = fig.add_subplot(nrow, ncol, p + 1)
        top = np.argsort(-enrich[gi], kind="stable")[:n_genes]
        ax.barh(np.arange(len(top))[::-1], enrich[gi, top], color="tab:blue")
        ax.set_yticks(np.arange(len(top))[::-1], genes[top], fontsize=7)
        ax.set_title(f"{groups[gi]} ({sizes[gi]} cells)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.axvline(0, color="k", lw=0.5)
    fig.supxlabel("log2 enrichment (observed / expected)", fontsize=8)
    fig.tight_layout()
    _save(fig, save)
    return fig
