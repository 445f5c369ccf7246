"""Spatial kNN graph, sparse from end to end (no N × N dense matrix is ever built)."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from sklearn.neighbors import NearestNeighbors

from .._constants import GRAPH_KEY, SPATIAL_KEY, UNS_KEY
from .._errors import input_error
from .._validate import check_adata, check_coordinates

logger = logging.getLogger(__name__)


def spatial_neighbors(
    data: AnnData | np.ndarray,
    k: int = 5,
    include_self: bool = True,
    normalization: Literal["gcn", "reference"] = "gcn",
    key_added: str = GRAPH_KEY,
) -> sp.csr_matrix:
    """Build the k-nearest-neighbour graph on spot coordinates.

    Parameters
    ----------
    data
        AnnData with ``obsm["spatial"]`` (the graph is also written to ``obsp[key_added]``),
        or an ``(n, d)`` coordinate array.
    k
        Neighbours per spot, counting the spot itself when ``include_self`` (SUICA: k = 5).
    include_self
        Whether the spot is one of its own ``k`` neighbours.
    normalization
        ``"gcn"``: symmetrised binary adjacency with self loops, scaled ``D^-1/2 A D^-1/2``
        (Kipf & Welling, as the SUICA paper describes). ``"reference"``: the authors' code —
        binary, directed (row i marks i's k neighbours), not normalised.
    key_added
        ``obsp`` key written when ``data`` is an AnnData.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n × n`` float32 sparse matrix with at most ``n·k`` (directed) or ``2·n·k`` entries.
    """
    if isinstance(data, AnnData):
        check_adata(data, require_spatial=True)
        coords = np.asarray(data.obsm[SPATIAL_KEY], dtype=np.float64)
    else:
        coords = check_coordinates(data, "coordinates")
    n = coords.shape[0]
    if k < 1:
        raise input_error(f"k must be >= 1, got {k}", "k", "use k=5 (SUICA's default)")
    n_query = k if include_self else k + 1
    if n < n_query:
        raise input_error(
            f"{n} spot(s) but k={k} neighbours requested",
            "spatial_neighbors",
            f"use k <= {max(n - (0 if include_self else 1), 1)} or more spots",
        )
    if normalization not in ("gcn", "reference"):
        raise input_error(
            f"unknown normalization {normalization!r}",
            "normalization",
            "use 'gcn' or 'reference'",
        )
    # KD-tree queries: O(n log n), memory O(n k); works for millions of points.
    nn = NearestNeighbors(n_neighbors=n_query, algorithm="kd_tree").fit(coords)
    _, idx = nn.kneighbors(coords)
    if not include_self:
        idx = _drop_self(idx, k)
    rows = np.repeat(np.arange(n, dtype=np.int64), idx.shape[1])
    adj = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, idx.ravel())), shape=(n, n))
    adj.data[:] = 1.0  # duplicates (exact coordinate ties) collapse to a single edge
    if normalization == "gcn":
        adj = adj.maximum(adj.T).tocsr()
        adj.setdiag(1.0)
        deg = np.asarray(adj.sum(axis=1)).ravel()
        inv_sqrt = sp.diags(1.0 / np.sqrt(deg)).astype(np.float32)
        adj = (inv_sqrt @ adj @ inv_sqrt).tocsr()
    adj.sort_indices()
    adj = adj.astype(np.float32)
    if isinstance(data, AnnData):
        data.obsp[key_added] = adj
        data.uns.setdefault(UNS_KEY, {})["spatial_neighbors"] = {
            "k": int(k),
            "include_self": bool(include_self),
            "normalization": normalization,
            "key": key_added,
        }
        logger.info("added obsp[%r] (%d × %d, %d edges)", key_added, n, n, adj.nnz)
    return adj


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index (not always in column 0 when points coincide)."""
    is_self = idx == np.arange(idx.shape[0])[:, None]
    # A stable sort on the boolean mask moves the self entry last, keeping distance order.
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)[:, :k]
