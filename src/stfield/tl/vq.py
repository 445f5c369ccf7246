"""Discrete path: tokenise transcripts with the hierarchical VQ-VAE, then analyse the codes.

* :func:`vq_fit` — rasterise tiles and train (:mod:`stfield.train.vq`) → :class:`VQModel`.
* :func:`vq_encode` — per-tile code maps and a cell × gene AnnData (counts from the molecules)
  with the code under each cell centroid per branch in ``obs``, codebook usage and perplexity in
  ``uns["stfield"]["vq"]``.
* :func:`vq_neighbourhoods` — cells grouped by coarse-branch code, or by the code-frequency
  profile of their spatial neighbours.
* :func:`vq_svg` — spatially variable genes from code-frequency statistics.
* :func:`vq_gene_attribution` — one gene channel in, which codes come out.
* :func:`vq_de` — differential expression between neighbourhoods (``scanpy.tl.rank_genes_groups``).
* :func:`vq_demo` — a small end-to-end run for ``stfield demo``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from .._constants import SPATIAL_KEY, TX_CELL, TX_GENE, UNS_KEY
from .._errors import input_error
from .._utils import resolve_device, seed_everything
from .._validate import check_adata, check_memory, check_transcripts
from ..data.raster import RasterConfig, TileIndex, _assigned_mask
from ..models.hvqvae import HVQVAE, HVQVAEConfig, VQModel, perplexity
from ..train.vq import VQTrainConfig, train_model

logger = logging.getLogger(__name__)

#: ``adata.uns["stfield"]`` key holding everything the VQ tools write.
VQ_UNS = "vq"
#: ``adata.obs`` column of the code under the centroid at branch ``M`` (``-1``: not tokenised).
CODE_KEY = "vq_code_m{}"
#: ``adata.obs`` column of the tile holding the centroid.
TILE_KEY = "vq_tile"
#: Default ``adata.obs`` column written by :func:`vq_neighbourhoods`.
NEIGHBOURHOOD_KEY = "vq_neighbourhood"


def _vq_uns(adata: AnnData) -> dict[str, Any]:
    root = adata.uns.setdefault(UNS_KEY, {})
    return root.setdefault(VQ_UNS, {})


def _as_model(model: VQModel | str | os.PathLike[str], device: str = "cpu") -> VQModel:
    if isinstance(model, VQModel):
        return model
    if isinstance(model, str | os.PathLike):
        return VQModel.load(model, device=device)
    raise input_error(
        f"expected a VQModel or a model directory, got {type(model).__name__}",
        "model",
        "pass the result of stfield.tl.vq_fit or the folder it saved",
    )


def _coarse(branches: Sequence[int], branch: int | None) -> int:
    if branch is None:
        return max(branches)
    if branch not in branches:
        raise input_error(
            f"branch M={branch} not in the model's branches {list(branches)}",
            "branch",
            f"use one of {list(branches)}",
        )
    return int(branch)


# --------------------------------------------------------------------------------------- fit
def _check_vq_settings(
    index: TileIndex, tile: int, branches: Sequence[int], codebook_size: int, batch_size: int
) -> None:
    """Reject, before any training, codebooks that cannot be filled and batches that cannot fit."""
    deepest = max((int(m) for m in branches), default=0)
    positions = len(index) * (tile // 2**deepest) ** 2
    if codebook_size > positions:
        raise input_error(
            f"codebook_size={codebook_size} codes but the {len(index)} tile(s) give only "
            f"{positions} encoder positions at branch M={deepest}; most codes could never be used",
            "codebook_size",
            f"use codebook_size <= {positions}, more data, or larger tiles",
        )
    # A lower bound: one batch of input, reconstruction and target tiles in float32 (the
    # activations of every branch come on top), so a rejected setting cannot run.
    n_out = index.n_genes + 1
    estimate = 4.0 * batch_size * tile**2 * (index.n_channels + 2 * n_out)
    check_memory(
        estimate,
        f"one batch of {batch_size} tiles of {tile}x{tile} px x {index.n_channels} channels",
        "batch_size / tile",
        "lower batch_size or tile, or raise pixel_size",
    )


def vq_fit(
    transcripts: pd.DataFrame,
    *,
    cells: pd.DataFrame | None = None,
    pixel_size: float = 1.0,
    tile: int = 256,
    stride: int | None = None,
    by: str = "window",
    mode: str = "binary",
    n_freqs: int = 6,
    genes: Sequence[str] | None = None,
    min_molecules: int = 1,
    codebook_size: int = 8192,
    dim: int = 64,
    hidden: int = 64,
    branches: Sequence[int] = (0, 1, 3),
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 3e-4,
    val_fraction: float = 0.1,
    augment: bool = True,
    seed: int = 0,
    accelerator: str = "auto",
    checkpoint_every: int = 0,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
    max_elements: int = 2**24,
    resume: bool = False,
) -> VQModel:
    """Train a hierarchical VQ-VAE on tiles of a transcripts table.

    Parameters
    ----------
    transcripts
        Canonical transcripts table (``stfield.io.read_transcripts``), or a tile-shard store
        (:class:`~stfield.data.shards.ShardStore`, ``stfield shard``) for tables larger than
        memory.
    cells
        Optional cells table (``cell_id, x, y``); default: centroids estimated from molecules.
    pixel_size, tile, stride, by, mode, n_freqs, genes, min_molecules
        Tiling and rasterisation (:class:`~stfield.data.raster.TileIndex`).
    codebook_size, dim, hidden, branches, max_elements
        Architecture (:class:`~stfield.models.hvqvae.HVQVAEConfig`); paper: K 8192, D 64,
        branches (0, 1, 3).
    epochs, batch_size, lr, val_fraction, augment, seed, accelerator
        Training (:class:`~stfield.train.vq.VQTrainConfig`).
    checkpoint_every, out
        When ``out`` is given the model is saved there; with ``checkpoint_every`` > 0 a copy is
        saved every that many epochs under ``<out>_checkpoints/epoch_NNNN`` together with the
        optimizer and random state (``train_state.pt``).
    resume
        Continue an interrupted fit from ``<out>_checkpoints/train_state.pt`` (same input and
        options); on CPU it ends with the weights of an uninterrupted fit.
    """
    from ..data.shards import ShardStore

    if not isinstance(transcripts, ShardStore):
        check_transcripts(transcripts)
    deepest = max(int(m) for m in branches) if len(branches) else 0
    if int(tile) % 2**deepest or int(tile) // 2**deepest < 2:
        raise input_error(
            f"tile={tile} px does not fit {deepest} halvings (need a multiple of "
            f"{2**deepest} and at least {2 ** (deepest + 1)})",
            "tile",
            f"use e.g. tile={max(2 ** (deepest + 1), 32)}",
        )
    raster = RasterConfig(pixel_size=pixel_size, tile=int(tile), mode=mode, n_freqs=n_freqs)
    index = TileIndex(
        transcripts,
        raster,
        genes=genes,
        cells=cells,
        stride=stride,
        by=by,
        min_molecules=min_molecules,
    )
    if len(index) < 2 and val_fraction > 0:
        logger.warning("only %d tile(s): no held-out validation tiles", len(index))
    _check_vq_settings(index, int(tile), branches, int(codebook_size), int(batch_size))
    seed_everything(seed)
    net = HVQVAE(
        HVQVAEConfig(
            in_channels=index.n_channels,
            out_channels=index.n_genes + 1,
            codebook_size=codebook_size,
            dim=dim,
            hidden=hidden,
            branches=tuple(branches),
            max_elements=max_elements,
        )
    )
    ckpt_dir = None
    if out is not None and (checkpoint_every or resume):
        ckpt_dir = str(Path(out).parent / f"{Path(out).name}_checkpoints")
    elif resume:
        raise input_error("resume needs the output path", "resume", "pass out=")
    tcfg = VQTrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        augment=augment,
        seed=seed,
        checkpoint_every=checkpoint_every,
        checkpoint_dir=ckpt_dir,
        resume=resume,
        progress=progress,
        accelerator=accelerator,
    )
    info: dict[str, Any] = {
        "tiles": index.summary(),
        "train": tcfg.to_dict(),
        "stride": index.stride,
        "by": by,
    }

    def _checkpoint(path: Path, epoch: int) -> None:
        VQModel(net, raster, index.genes, None, {**info, "epoch": epoch}).save(path)

    t0 = time.perf_counter()
    res = train_model(net, index, tcfg, checkpoint_fn=_checkpoint)
    info.update(
        {
            "train_tiles": res["train_tiles"],
            "val_tiles": res["val_tiles"],
            "ssim": res["ssim"],
            "fit_seconds": time.perf_counter() - t0,
        }
    )
    if "distributed" in res:  # data-parallel run (torchrun / --devices): record its layout
        info["distributed"] = res["distributed"]
    net.to("cpu").eval()
    model = VQModel(net, raster, index.genes, res["history"], info)
    from ..train.distributed import is_main_process

    # every rank ends with the same model; one writes it
    if out is not None and is_main_process():
        model.save(out)
        logger.info("saved the VQ model to %s", out)
    return model


# ------------------------------------------------------------------------------------ encode
def _cell_by_gene(
    transcripts: pd.DataFrame, cell_ids: np.ndarray
) -> tuple[sp.csr_matrix, list[str]]:
    """Counts of assigned molecules per (cell, gene), rows in ``cell_ids`` order."""
    gene_col = transcripts[TX_GENE]
    if isinstance(gene_col.dtype, pd.CategoricalDtype):
        present = set(gene_col.unique().astype(str))
        genes = [str(g) for g in gene_col.cat.categories if str(g) in present]
    else:
        genes = sorted(map(str, pd.unique(gene_col.astype(str))))
    n_cells = len(cell_ids)
    if TX_CELL not in transcripts.columns or n_cells == 0:
        return sp.csr_matrix((n_cells, len(genes)), dtype=np.float32), genes
    assigned = _assigned_mask(transcripts[TX_CELL])
    rows = pd.Index(cell_ids.astype(str)).get_indexer(
        transcripts.loc[assigned, TX_CELL].astype(str).to_numpy()
    )
    cols = pd.Index(genes).get_indexer(gene_col[assigned].astype(str).to_numpy())
    ok = (rows >= 0) & (cols >= 0)
    X = sp.coo_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (rows[ok], cols[ok])),
        shape=(n_cells, len(genes)),
    ).tocsr()
    X.sum_duplicates()
    return X, genes


def vq_encode(
    model: VQModel | str | os.PathLike[str],
    transcripts: pd.DataFrame,
    *,
    cells: pd.DataFrame | None = None,
    batch_size: int = 8,
    accelerator: str = "auto",
    code_maps: bool = True,
    progress: bool = False,
) -> AnnData:
    """Tokenise a transcripts table with a fitted model.

    Returns
    -------
    AnnData
        Cells × genes (raw counts of the molecules assigned to each cell, CSR) with
        ``obsm["spatial"]`` = centroids (µm); ``obs["vq_code_m{M}"]`` = the code under the
        centroid at each branch (``-1`` when the centroid lies in no tile) and ``obs["vq_tile"]``;
        ``uns["stfield"]["vq"]`` holds per-branch ``usage`` (code histograms over all code-map
        positions), ``perplexity``, ``n_codes_used``, the model settings, throughput and (with
        ``code_maps=True``) the per-tile ``code_maps`` with ``tile_origins`` (µm).
    """
    from tqdm.auto import tqdm

    device = resolve_device(accelerator)
    model = _as_model(model, device)
    check_transcripts(transcripts)
    net = model.network.to(device).eval()
    index = model.tile_index(transcripts, cells=cells)
    k = model.codebook_size
    n_tiles, side = len(index), model.raster.tile
    dtype = np.int16 if k <= np.iinfo(np.int16).max else np.int32
    maps = {m: np.zeros((n_tiles, side >> m, side >> m), dtype=dtype) for m in model.branches}
    usage = {m: np.zeros(k, dtype=np.int64) for m in model.branches}

    cent = index.centroids
    n_cells = len(cent)
    pos = pd.Index(cent.index.astype(str))
    cell_codes = {m: np.full(n_cells, -1, dtype=np.int64) for m in model.branches}
    cell_tile = np.full(n_cells, -1, dtype=np.int64)

    t0 = time.perf_counter()
    order = np.arange(n_tiles)
    with torch.no_grad():
        starts = range(0, n_tiles, batch_size)
        for s in tqdm(starts, desc="vq encode", disable=not progress, unit="batch"):
            ids = order[s : s + batch_size]
            x = torch.from_numpy(np.stack([index.rasterise(int(i)) for i in ids])).to(device)
            codes = net.encode(x)
            for m, c in zip(model.branches, codes, strict=True):
                c = c.cpu().numpy()
                maps[m][ids] = c
                usage[m] += np.bincount(c.ravel(), minlength=k)
            for j, i in enumerate(ids):
                cid, row, col = index.cells(int(i))
                if not len(cid):
                    continue
                rows = pos.get_indexer(cid.astype(str))
                cell_tile[rows] = i
                for m, c in zip(model.branches, codes, strict=True):
                    cell_codes[m][rows] = c[j].cpu().numpy()[row >> m, col >> m]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0

    X, genes = _cell_by_gene(transcripts, cent.index.to_numpy())
    obs = pd.DataFrame(index=pd.Index(cent.index.astype(str), name=None))
    for m in model.branches:
        obs[CODE_KEY.format(m)] = cell_codes[m]
    obs[TILE_KEY] = cell_tile
    if "source" in cent.columns:
        obs["centroid_source"] = pd.Categorical(cent["source"].astype(str).to_numpy())
    adata = AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
    adata.obsm[SPATIAL_KEY] = cent[["x", "y"]].to_numpy(np.float64)
    uns = _vq_uns(adata)
    uns.update(
        {
            "branches": [int(m) for m in model.branches],
            "codebook_size": int(k),
            "dim": int(net.config.dim),
            "pixel_size": float(model.raster.pixel_size),
            "tile": int(side),
            "tile_size_um": float(model.raster.tile_um),
            "usage": {f"m{m}": usage[m] for m in model.branches},
            "perplexity": {f"m{m}": perplexity(usage[m]) for m in model.branches},
            "n_codes_used": {f"m{m}": int((usage[m] > 0).sum()) for m in model.branches},
            "n_tiles": int(n_tiles),
            "seconds": float(seconds),
            "tiles_per_s": float(n_tiles / max(seconds, 1e-9)),
            "cells_per_s": float(n_cells / max(seconds, 1e-9)),
            "model_genes_missing": int(sum(g not in set(genes) for g in model.genes)),
        }
    )
    if code_maps:
        uns["code_maps"] = {f"m{m}": maps[m] for m in model.branches}
        uns["tile_origins"] = index.origins.copy()
    adata.uns[UNS_KEY]["spatial_unit"] = "um"
    logger.info(
        "vq_encode: %d cells, %d tiles; added obs %s and uns[%r][%r]",
        n_cells,
        n_tiles,
        [CODE_KEY.format(m) for m in model.branches],
        UNS_KEY,
        VQ_UNS,
    )
    return adata


# ------------------------------------------------------------------------------ downstream
def _code_column(adata: AnnData, branch: int | None) -> tuple[str, int]:
    uns = adata.uns.get(UNS_KEY, {}).get(VQ_UNS, {})
    branches = uns.get("branches")
    if branches is None:
        branches = sorted(
            int(c[len("vq_code_m") :]) for c in adata.obs.columns if c.startswith("vq_code_m")
        )
    if not len(branches):
        raise input_error(
            "no VQ codes found in obs",
            "adata",
            "run stfield.tl.vq_encode(model, transcripts) first",
        )
    m = _coarse(list(branches), branch)
    col = CODE_KEY.format(m)
    if col not in adata.obs:
        raise input_error(f"obs[{col!r}] is missing", "adata", "run stfield.tl.vq_encode first")
    return col, m


def vq_neighbourhoods(
    adata: AnnData,
    *,
    method: str = "code",
    branch: int | None = None,
    n_neighbourhoods: int = 8,
    n_neighbors: int = 15,
    min_cells: int = 5,
    key_added: str = NEIGHBOURHOOD_KEY,
    seed: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Group cells into neighbourhoods from their codes.

    Parameters
    ----------
    method
        ``"code"``: a neighbourhood is a code of the coarse branch (the paper); the
        ``n_neighbourhoods`` most frequent codes with >= ``min_cells`` cells are kept and the rest
        pooled as ``"other"``. ``"profile"``: each cell's code-frequency profile over its
        ``n_neighbors`` nearest cells (itself included) at that branch, clustered by k-means into
        ``n_neighbourhoods`` groups.
    branch
        Branch depth ``M`` (default: the coarsest).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.neighbors import NearestNeighbors

    adata = adata.copy() if copy else adata
    col, m = _code_column(adata, branch)
    codes = adata.obs[col].to_numpy(np.int64)
    valid = codes >= 0
    if not valid.any():
        raise input_error("no cell has a code", f"obs[{col!r}]", "check vq_encode's tiles")
    labels = np.full(adata.n_obs, "none", dtype=object)
    if method == "code":
        vals, counts = np.unique(codes[valid], return_counts=True)
        keep = vals[np.argsort(-counts, kind="stable")]
        keep = [v for v in keep if counts[np.searchsorted(vals, v)] >= min_cells]
        keep = keep[: max(int(n_neighbourhoods), 1)]
        names = {int(v): f"c{int(v)}" for v in keep}
        labels[valid] = [names.get(int(c), "other") for c in codes[valid]]
        categories = [names[int(v)] for v in keep] + (
            ["other"] if (labels == "other").any() else []
        )
    elif method == "profile":
        if SPATIAL_KEY not in adata.obsm:
            raise input_error(f"obsm[{SPATIAL_KEY!r}] missing", "adata", "run vq_encode first")
        xy = np.asarray(adata.obsm[SPATIAL_KEY])[valid]
        cv = codes[valid]
        k = min(int(n_neighbors), len(cv))
        nn_idx = NearestNeighbors(n_neighbors=k).fit(xy).kneighbors(xy, return_distance=False)
        uniq, inv = np.unique(cv, return_inverse=True)
        rows = np.repeat(np.arange(len(cv)), k)
        prof = sp.csr_matrix(
            (np.full(rows.size, 1.0 / k), (rows, inv[nn_idx.ravel()])), shape=(len(cv), len(uniq))
        )
        n_clusters = int(min(max(n_neighbourhoods, 1), len(cv)))
        feats: Any = prof
        if prof.shape[1] > 50 and prof.shape[0] > 50:
            feats = TruncatedSVD(n_components=30, random_state=seed).fit_transform(prof)
        elif sp.issparse(feats):
            feats = feats.toarray()
        km = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(feats)
        # name clusters by size, largest first
        sizes = np.bincount(km.labels_, minlength=n_clusters)
        rank = np.empty(n_clusters, dtype=np.int64)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(n_clusters)
        labels[valid] = [f"n{r}" for r in rank[km.labels_]]
        categories = [f"n{r}" for r in range(n_clusters) if (rank == r).any()]
    else:
        raise input_error(f"unknown method {method!r}", "method", "use 'code' or 'profile'")
    if (~valid).any():
        categories = [*categories, "none"]
    adata.obs[key_added] = pd.Categorical(labels, categories=categories)
    _vq_uns(adata)["neighbourhoods"] = {
        "key": key_added,
        "method": method,
        "branch": int(m),
        "n_neighbourhoods": len(categories),
        "n_neighbors": int(n_neighbors),
    }
    logger.info("vq_neighbourhoods: added obs[%r] (%d groups)", key_added, len(categories))
    return adata if copy else None


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values."""
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.clip(q, 0, 1)
    return out


def vq_svg(
    adata: AnnData,
    *,
    groupby: str | None = None,
    branch: int | None = None,
    min_cells: int = 5,
    min_counts: int = 10,
    key_added: str = "vq_svg",
) -> pd.DataFrame:
    """Spatially variable genes from code-frequency statistics.

    Each gene's molecules are distributed over the codes (or neighbourhoods, ``groupby``) of the
    cells holding them; a gene whose distribution departs from the background distribution of all
    molecules is spatially variable. Per gene: Jensen-Shannon divergence (bits, the score), a
    chi-square test against the background (p and BH q value) and the most enriched group. The
    groups x genes log2 enrichment ``log2((observed + 1) / (expected + 1))`` is stored in
    ``uns["stfield"]["vq"][key_added]`` for :func:`stfield.pl.vq.vq_top_genes`.

    Returns
    -------
    DataFrame indexed by gene, sorted by score (also written to ``var[f"{key_added}_*"]``).
    """
    from scipy.stats import chi2

    check_adata(adata, "adata", require_spatial=False)
    if groupby is None:
        groupby, _ = _code_column(adata, branch)
    if groupby not in adata.obs:
        raise input_error(f"obs[{groupby!r}] not found", "groupby", "run vq_neighbourhoods first")
    labels = adata.obs[groupby].astype(str).to_numpy()
    bad = np.isin(labels, ["-1", "none", "nan"])
    uniq, inv = np.unique(labels[~bad], return_inverse=True)
    sizes = np.bincount(inv, minlength=len(uniq))
    keep_group = sizes >= min_cells
    if keep_group.sum() < 2:
        raise input_error(
            f"fewer than 2 groups in obs[{groupby!r}] with >= {min_cells} cells",
            "vq_svg",
            "lower min_cells or use a coarser grouping (vq_neighbourhoods)",
        )
    rows = np.nonzero(~bad)[0]
    sel = keep_group[inv]
    rows, ginv = rows[sel], np.searchsorted(np.nonzero(keep_group)[0], inv[sel])
    groups = uniq[keep_group]
    ind = sp.csr_matrix((np.ones(rows.size), (ginv, rows)), shape=(len(groups), adata.n_obs))
    X = adata.X if sp.issparse(adata.X) else sp.csr_matrix(adata.X)
    obs_gc = np.asarray((ind @ X).todense(), dtype=np.float64)  # groups x genes
    n_g = obs_gc.sum(0)
    n_c = obs_gc.sum(1)
    total = n_c.sum()
    expected = np.outer(n_c / max(total, 1e-12), n_g)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.where(expected > 0, (obs_gc - expected) ** 2 / expected, 0.0).sum(0)
        pval = chi2.sf(chi, df=len(groups) - 1)
        p_g = obs_gc / n_g  # p(group | gene)
        q = n_c / total  # background p(group)
        mix = 0.5 * (p_g + q[:, None])

        def _kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.where(a > 0, a * np.log2(a / b), 0.0).sum(0)

        js = 0.5 * _kl(p_g, mix) + 0.5 * _kl(np.broadcast_to(q[:, None], p_g.shape), mix)
    enrich = np.log2((obs_gc + 1.0) / (expected + 1.0))
    ok = n_g >= min_counts
    score = np.where(ok, js, np.nan)
    pval = np.where(ok, pval, np.nan)
    qval = np.full_like(pval, np.nan)
    if ok.any():
        qval[ok] = _bh(pval[ok])
    df = pd.DataFrame(
        {
            "score": score,
            "pval": pval,
            "qval": qval,
            "top_group": groups[np.argmax(enrich, axis=0)],
            "top_log2_enrichment": enrich.max(0),
            "n_counts": n_g,
        },
        index=adata.var_names.copy(),
    )
    df = df.sort_values("score", ascending=False, na_position="last")
    df["rank"] = np.arange(1, len(df) + 1)
    for c in ("score", "pval", "qval", "top_group", "rank"):
        adata.var[f"{key_added}_{c}"] = df[c].reindex(adata.var_names).to_numpy()
    _vq_uns(adata)[key_added] = {
        "groupby": groupby,
        "groups": np.asarray(groups, dtype=str),
        "genes": np.asarray(adata.var_names, dtype=str),
        "log2_enrichment": enrich.astype(np.float32),
        "group_sizes": sizes[keep_group].astype(np.int64),
    }
    logger.info(
        "vq_svg: added var[%r_*] and uns[%r][%r][%r]", key_added, UNS_KEY, VQ_UNS, key_added
    )
    return df


def vq_gene_attribution(
    model: VQModel | str | os.PathLike[str],
    transcripts: pd.DataFrame,
    *,
    genes: Sequence[str] | None = None,
    branch: int | None = None,
    max_tiles: int = 4,
    batch_size: int = 16,
    top: int = 5,
    accelerator: str = "auto",
    adata: AnnData | None = None,
    return_matrix: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Which codes each gene maps to when it is the only channel fed to the model (paper Fig. 4).

    For each gene, every other gene channel (and the centroid channels) is zeroed in the
    ``max_tiles`` tiles holding most molecules; the codes at the branch-``M`` positions covering
    that gene's molecules are counted.

    Returns
    -------
    A long table ``gene, rank, code, fraction`` of each gene's ``top`` codes; with
    ``return_matrix`` also the genes × codes fraction matrix. With ``adata`` the matrix is stored
    in ``adata.uns["stfield"]["vq"]["attribution"]``.
    """
    device = resolve_device(accelerator)
    model = _as_model(model, device)
    m = _coarse(model.branches, branch)
    bpos = list(model.branches).index(m)
    net = model.network.to(device).eval()
    index = model.tile_index(transcripts)
    if genes is None:
        genes = model.genes
    gidx = pd.Index(model.genes).get_indexer([str(g) for g in genes])
    if (gidx < 0).any():
        missing = [g for g, i in zip(genes, gidx, strict=True) if i < 0]
        raise input_error(
            f"{len(missing)} gene(s) not in the model, e.g. {missing[:3]}",
            "genes",
            "pick genes from model.genes",
        )
    tiles = np.argsort(-index.tile_molecules, kind="stable")[: max(int(max_tiles), 1)]
    k = model.codebook_size
    counts = np.zeros((len(gidx), k), dtype=np.int64)
    with torch.no_grad():
        for i in tiles:
            base = index.rasterise(int(i))
            present = base[: len(model.genes)].reshape(len(model.genes), -1).any(1)
            for s in range(0, len(gidx), batch_size):
                chunk = [(r, g) for r, g in enumerate(gidx[s : s + batch_size], start=s)]
                chunk = [(r, g) for r, g in chunk if present[g]]
                if not chunk:
                    continue
                x = np.zeros((len(chunk), *base.shape), dtype=np.float32)
                for j, (_, g) in enumerate(chunk):
                    x[j, g] = base[g]
                codes = net.encode(torch.from_numpy(x).to(device))[bpos].cpu().numpy()
                for j, (r, g) in enumerate(chunk):
                    rr, cc = np.nonzero(base[g])
                    sub = codes[j][rr >> m, cc >> m]
                    counts[r] += np.bincount(sub, minlength=k)
    names = [str(g) for g in genes]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = counts / counts.sum(1, keepdims=True)
    matrix = pd.DataFrame(frac, index=pd.Index(names, name="gene"))
    rows = []
    for r, g in enumerate(names):
        if counts[r].sum() == 0:
            continue
        best = np.argsort(-counts[r], kind="stable")[:top]
        for rank, c in enumerate(best, start=1):
            if counts[r, c] == 0:
                break
            rows.append((g, rank, int(c), float(frac[r, c])))
    long = pd.DataFrame(rows, columns=["gene", "rank", "code", "fraction"])
    if adata is not None:
        _vq_uns(adata)["attribution"] = {
            "branch": int(m),
            "genes": np.asarray(names, dtype=str),
            "counts": counts,
        }
    return (long, matrix) if return_matrix else long


def vq_de(
    adata: AnnData,
    groupby: str = NEIGHBOURHOOD_KEY,
    *,
    method: str = "wilcoxon",
    min_cells: int = 3,
    key_added: str = "vq_rank_genes_groups",
    n_genes: int | None = None,
) -> pd.DataFrame:
    """Differential expression between neighbourhoods with ``scanpy.tl.rank_genes_groups``.

    Counts are library-size normalised and log1p-transformed on a copy (``adata.X`` is not
    changed); groups with fewer than ``min_cells`` cells (and ``"none"``) are left out. The scanpy
    result is stored in ``adata.uns[key_added]``; returns ``scanpy.get.rank_genes_groups_df``.
    """
    import scanpy as sc

    check_adata(adata, "adata", require_spatial=False)
    if groupby not in adata.obs:
        raise input_error(
            f"obs[{groupby!r}] not found", "groupby", "run stfield.tl.vq_neighbourhoods first"
        )
    labels = adata.obs[groupby].astype(str)
    counts = labels.value_counts()
    groups = [g for g, n in counts.items() if n >= min_cells and g not in ("none", "nan")]
    if len(groups) < 2:
        raise input_error(
            f"fewer than 2 groups in obs[{groupby!r}] with >= {min_cells} cells",
            "vq_de",
            "lower min_cells or use fewer, larger neighbourhoods",
        )
    keep = labels.isin(groups).to_numpy()
    tmp = AnnData(
        X=adata.X[keep].copy() if sp.issparse(adata.X) else np.asarray(adata.X[keep], np.float32),
        obs=pd.DataFrame({groupby: pd.Categorical(labels[keep])}, index=adata.obs_names[keep]),
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    tmp.X = tmp.X.astype(np.float32)
    sc.pp.normalize_total(tmp, target_sum=1e4)
    sc.pp.log1p(tmp)
    sc.tl.rank_genes_groups(
        tmp, groupby, method=method, key_added=key_added, n_genes=n_genes, use_raw=False
    )
    adata.uns[key_added] = tmp.uns[key_added]
    logger.info("vq_de: added uns[%r]", key_added)
    return sc.get.rank_genes_groups_df(tmp, group=None, key=key_added)


# -------------------------------------------------------------------------------------- demo
def vq_demo(
    transcripts: pd.DataFrame | None = None,
    out_dir: str | os.PathLike[str] = "vq_demo",
    *,
    codebook_size: int = 64,
    dim: int = 16,
    hidden: int = 32,
    epochs: int = 12,
    pixel_size: float = 2.0,
    tile: int = 32,
    n_neighbourhoods: int = 6,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
    accelerator: str = "cpu",
    threads: int | None = 1,
) -> dict[str, Any]:
    """Tokenise a transcripts table end to end (default: the bundled Xenium crop).

    Fits a small hierarchical VQ-VAE, encodes every cell, groups cells into neighbourhoods by
    code-frequency profile, ranks spatially variable genes and writes ``neighbourhoods.png`` and
    ``code_map.png`` to ``out_dir``. Returns summary figures (perplexity and usage per branch,
    number of neighbourhoods, held-out reconstruction MSE / SSIM, timings, paths).

    ``threads`` caps torch's intra-op threads for the run (restored afterwards): the demo's
    model is tiny, and on a busy machine extra threads slow it down several-fold.
    """
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return _demo(
            transcripts,
            out_dir,
            codebook_size=codebook_size,
            dim=dim,
            hidden=hidden,
            epochs=epochs,
            pixel_size=pixel_size,
            tile=tile,
            n_neighbourhoods=n_neighbourhoods,
            lr=lr,
            seed=seed,
            progress=progress,
            accelerator=accelerator,
        )
    finally:
        torch.set_num_threads(before)


def _demo(
    transcripts: pd.DataFrame | None,
    out_dir: str | os.PathLike[str],
    *,
    codebook_size: int,
    dim: int,
    hidden: int,
    epochs: int,
    pixel_size: float,
    tile: int,
    n_neighbourhoods: int,
    lr: float,
    seed: int,
    progress: bool,
    accelerator: str,
) -> dict[str, Any]:
    from ..pl.vq import vq_code_map, vq_neighbourhood_map

    t0 = time.perf_counter()
    if transcripts is None:
        from ..datasets import xenium_breast

        transcripts = xenium_breast()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = vq_fit(
        transcripts,
        pixel_size=pixel_size,
        tile=tile,
        codebook_size=codebook_size,
        dim=dim,
        hidden=hidden,
        epochs=epochs,
        lr=lr,
        seed=seed,
        progress=progress,
        accelerator=accelerator,
    )
    fit_s = time.perf_counter() - t0
    last = model.history[-1] if model.history else {}
    adata = vq_encode(model, transcripts, accelerator=accelerator)
    vq_neighbourhoods(adata, method="profile", n_neighbourhoods=n_neighbourhoods, seed=seed)
    labels = adata.obs[NEIGHBOURHOOD_KEY].astype(str)
    n_nbh = int(labels[labels != "none"].nunique())
    svg = vq_svg(adata, groupby=NEIGHBOURHOOD_KEY)
    nb_png = out / "neighbourhoods.png"
    cm_png = out / "code_map.png"
    vq_neighbourhood_map(adata, save=nb_png)
    vq_code_map(adata, save=cm_png)
    uns = adata.uns[UNS_KEY][VQ_UNS]
    return {
        "n_cells": int(adata.n_obs),
        "n_tiles": int(uns["n_tiles"]),
        "codebook_size": int(codebook_size),
        "perplexity": {k: round(float(v), 3) for k, v in uns["perplexity"].items()},
        "codes_used": dict(uns["n_codes_used"]),
        "n_neighbourhoods": n_nbh,
        "val_mse": float(last.get("val_mse", np.nan)),
        "val_ssim": float(last.get("val_ssim", np.nan)),
        "top_svg": list(svg.index[:5]),
        "fit_seconds": round(fit_s, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "neighbourhoods_png": str(nb_png),
        "code_map_png": str(cm_png),
    }


__all__ = [
    "CODE_KEY",
    "NEIGHBOURHOOD_KEY",
    "VQModel",
    "vq_de",
    "vq_demo",
    "vq_encode",
    "vq_fit",
    "vq_gene_attribution",
    "vq_neighbourhoods",
    "vq_svg",
]
