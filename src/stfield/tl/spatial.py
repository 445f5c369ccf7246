"""Spatial statistics that need no model (and no torch)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import GRAPH_KEY, SPATIAL_KEY, UNS_KEY
from .._validate import check_adata

logger = logging.getLogger(__name__)


def morans_i(
    adata: AnnData,
    layer: str | None = None,
    graph_key: str = GRAPH_KEY,
    block_genes: int = 512,
    key_added: str | None = "stfield_morans_i",
) -> pd.Series:
    """Moran's I of every gene on the spatial graph (higher: more spatially structured).

    Uses ``obsp[graph_key]`` (from :func:`stfield.pp.spatial_neighbors`; if missing, the
    default graph is built for this call without being stored) with the diagonal removed. Genes are processed in dense
    blocks of ``block_genes`` columns, so the slice is never densified at once. The result is
    returned and written to ``var[key_added]`` (``key_added=None``: not written).
    """
    check_adata(adata)
    if graph_key in adata.obsp:
        W = sp.csr_matrix(adata.obsp[graph_key], dtype=np.float64)
    else:  # build the default graph for this computation only; nothing is written to obsp
        from ..pp import spatial_neighbors

        W = spatial_neighbors(np.asarray(adata.obsm[SPATIAL_KEY])).astype(np.float64)
    W.setdiag(0.0)
    W.eliminate_zeros()
    w_sum = W.sum()
    X = adata.X if layer is None else adata.layers[layer]
    n = adata.n_obs
    values = np.full(adata.n_vars, np.nan)
    for start in range(0, adata.n_vars, block_genes):
        block = X[:, start : start + block_genes]
        Z = np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float64)
        Z -= Z.mean(axis=0)
        num = np.einsum("ij,ij->j", Z, W @ Z)
        den = np.einsum("ij,ij->j", Z, Z)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[start : start + Z.shape[1]] = np.where(den > 0, n / w_sum * num / den, np.nan)
    result = pd.Series(values, index=adata.var_names, name=key_added or "morans_i")
    if key_added is not None:
        adata.var[key_added] = result
        adata.uns.setdefault(UNS_KEY, {})["morans_i"] = {"graph_key": graph_key, "layer": layer}
        logger.info("added var[%r]", key_added)
    return result
