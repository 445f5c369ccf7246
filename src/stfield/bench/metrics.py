"""Reconstruction metrics for spatial transcriptomics predictions.

Naming follows the SUICA reference definitions, made explicit:

* ``mae``, ``mse``, ``cosine``, ``pearson``, ``spearman`` — computed over the **non-zero
  ground-truth entries** only, per spot (across genes, then averaged over spots; the default,
  ``axis="spot"``) or per gene (across spots, averaged over genes; ``axis="gene"``, reported with
  the suffix ``_gene``), or over all those entries flattened (``axis=None``).
* ``mae_all``, ``mse_all`` — over every entry, zeros included.
* ``zero_iou`` — intersection over union of the exact-zero maps of truth and prediction.
* ``ari`` — adjusted Rand index of clusters of the prediction against labels.

Every metric depends on the prediction only at the truth's non-zero positions plus a few sums
over all entries, so everything is computed in O(nnz) memory plus one pass over ``pred``
(dense blocks or sparse): a whole slice is never densified.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from .._errors import input_error

Axis = Literal["spot", "gene"] | None
Matrix = np.ndarray | sp.spmatrix

#: Metrics reported by :func:`evaluate` (per spot; each also exists with suffix ``_gene``).
NONZERO_METRICS = ("mae", "mse", "cosine", "pearson", "spearman")


class _Paired:
    """Truth non-zeros and the prediction at the same positions."""

    def __init__(self, truth: Matrix, pred: Matrix) -> None:
        if truth.shape != pred.shape:
            raise input_error(
                f"truth has shape {truth.shape} but prediction {pred.shape}",
                "metrics",
                "predict exactly the spots and genes of the ground truth, in the same order",
            )
        t = sp.csr_matrix(truth) if not sp.issparse(truth) else truth.tocsr()
        t = t.copy()
        t.data = np.where(t.data > 0, t.data, 0)  # only positive entries count as "non-zero"
        t.eliminate_zeros()
        coo = t.tocoo()
        self.shape = truth.shape
        self.rows, self.cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        self.t = coo.data.astype(np.float64)
        self.p = _gather(pred, self.rows, self.cols)
        if not np.isfinite(self.p).all():
            raise input_error(
                "prediction contains NaN/inf", "metrics", "check the model fit (loss history)"
            )
        self.pred = pred

    def groups(self, axis: Axis) -> tuple[np.ndarray, int]:
        if axis == "spot":
            return self.rows, self.shape[0]
        if axis == "gene":
            return self.cols, self.shape[1]
        if axis is None:
            return np.zeros(self.t.size, dtype=np.int64), 1
        raise input_error(f"unknown axis {axis!r}", "metrics", "use 'spot', 'gene' or None")


def _gather(pred: Matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if sp.issparse(pred):
        return np.asarray(pred.tocsr()[rows, cols], dtype=np.float64).ravel()
    return np.asarray(pred)[rows, cols].astype(np.float64)


def _row_blocks(pred: Matrix, block_rows: int = 8192):
    for start in range(0, pred.shape[0], block_rows):
        block = pred[start : start + block_rows]
        yield block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float64)


def _group_mean(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(groups, minlength=n)
    sums = np.bincount(groups, weights=values, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _average(per_group: np.ndarray) -> float:
    finite = per_group[np.isfinite(per_group)]
    return float(finite.mean()) if finite.size else float("nan")


def _correlation(t: np.ndarray, p: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Pearson correlation per group; NaN where a group has < 2 entries or no variance."""
    counts = np.bincount(groups, minlength=n)
    mt, mp = _group_mean(t, groups, n), _group_mean(p, groups, n)
    dt, dp = t - mt[groups], p - mp[groups]
    cov = np.bincount(groups, weights=dt * dp, minlength=n)
    vt = np.bincount(groups, weights=dt * dt, minlength=n)
    vp = np.bincount(groups, weights=dp * dp, minlength=n)
    # Relative tolerance: a constant prediction leaves only rounding noise in vp.
    tol_t = 1e-12 * np.maximum(np.bincount(groups, weights=t * t, minlength=n), 1e-300)
    tol_p = 1e-12 * np.maximum(np.bincount(groups, weights=p * p, minlength=n), 1e-300)
    ok = (counts >= 2) & (vt > tol_t) & (vp > tol_p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, cov / np.sqrt(vt * vp), np.nan)


def _ranks(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    # pandas ranks within groups in one vectorised pass, averaging ties (Spearman's convention).
    return pd.Series(values).groupby(groups).rank(method="average").to_numpy(dtype=np.float64)


def mae(truth: Matrix, pred: Matrix, axis: Axis = "spot") -> float:
    """Mean absolute error over non-zero truth entries, averaged per ``axis``."""
    pr = _Paired(truth, pred)
    g, n = pr.groups(axis)
    return _average(_group_mean(np.abs(pr.p - pr.t), g, n))


def mse(truth: Matrix, pred: Matrix, axis: Axis = "spot") -> float:
    """Mean squared error over non-zero truth entries, averaged per ``axis``."""
    pr = _Paired(truth, pred)
    g, n = pr.groups(axis)
    return _average(_group_mean((pr.p - pr.t) ** 2, g, n))


def cosine(truth: Matrix, pred: Matrix, axis: Axis = "spot") -> float:
    """Cosine similarity over non-zero truth entries; 0 where the prediction there is all 0."""
    pr = _Paired(truth, pred)
    g, n = pr.groups(axis)
    return _average(_cosine(pr, g, n))


def _cosine(pr: _Paired, g: np.ndarray, n: int) -> np.ndarray:
    return _cosine_values(pr.t, pr.p, g, n)


def _cosine_values(t: np.ndarray, p: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(g, minlength=n)
    dot = np.bincount(g, weights=t * p, minlength=n)
    nt = np.sqrt(np.bincount(g, weights=t**2, minlength=n))
    npred = np.sqrt(np.bincount(g, weights=p**2, minlength=n))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(npred > 0, dot / (nt * npred), 0.0)
    return np.where(counts > 0, cos, np.nan)


def pearson(truth: Matrix, pred: Matrix, axis: Axis = "spot") -> float:
    """Pearson correlation over non-zero truth entries, averaged over groups where defined."""
    pr = _Paired(truth, pred)
    g, n = pr.groups(axis)
    return _average(_correlation(pr.t, pr.p, g, n))


def spearman(truth: Matrix, pred: Matrix, axis: Axis = "spot") -> float:
    """Spearman rank correlation over non-zero truth entries, averaged where defined."""
    pr = _Paired(truth, pred)
    g, n = pr.groups(axis)
    return _average(_correlation(_ranks(pr.t, g), _ranks(pr.p, g), g, n))


def zero_iou(truth: Matrix, pred: Matrix) -> float:
    """IoU of the exact-zero maps: |Z_true ∩ Z_pred| / |Z_true ∪ Z_pred| (1 if both empty)."""
    pr = _Paired(truth, pred)
    return _zero_iou(pr, _count_zeros(pred))


def _count_zeros(pred: Matrix) -> int:
    if sp.issparse(pred):
        csr = pred.tocsr()
        return int(np.prod(csr.shape) - np.count_nonzero(csr.data))
    return int(sum(np.count_nonzero(b == 0) for b in _row_blocks(pred)))


def _zero_iou(pr: _Paired, pred_zeros: int) -> float:
    truth_zeros = int(np.prod(pr.shape)) - pr.t.size
    # Zeros of pred at truth non-zeros are outside Z_true; the rest of pred's zeros are inside.
    inter = pred_zeros - int(np.count_nonzero(pr.p == 0))
    union = truth_zeros + pred_zeros - inter
    return 1.0 if union == 0 else inter / union


def _all_entry_errors(pr: _Paired) -> tuple[float, float]:
    """(MAE, MSE) over every entry, from one streaming pass over the prediction."""
    sum_abs_p = sum_sq_p = 0.0
    for block in _row_blocks(pr.pred):
        sum_abs_p += float(np.abs(block).sum())
        sum_sq_p += float(np.square(block, dtype=np.float64).sum())
    n = float(np.prod(pr.shape))
    abs_err = sum_abs_p - np.abs(pr.p).sum() + np.abs(pr.p - pr.t).sum()
    sq_err = sum_sq_p + np.square(pr.t).sum() - 2.0 * np.dot(pr.p, pr.t)
    return abs_err / n, max(sq_err, 0.0) / n


def cluster(
    X: Matrix,
    n_clusters: int,
    method: Literal["kmeans", "leiden"] = "kmeans",
    seed: int = 0,
    n_pcs: int = 30,
) -> np.ndarray:
    """Cluster spots: log1p → PCA → KMeans (``n_clusters``) or Leiden (30 neighbours, res. 1)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA, TruncatedSVD

    logged = X.log1p() if sp.issparse(X) else np.log1p(np.maximum(np.asarray(X), 0))
    n_comp = max(1, min(n_pcs, min(X.shape) - 1))
    if sp.issparse(logged):
        emb = TruncatedSVD(n_components=n_comp, random_state=seed).fit_transform(logged)
    else:
        emb = PCA(n_components=n_comp, random_state=seed).fit_transform(logged)
    if method == "kmeans":
        return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(emb)
    if method == "leiden":
        import anndata as ad
        import scanpy as sc

        tmp = ad.AnnData(np.zeros((emb.shape[0], 1), dtype=np.float32))
        tmp.obsm["X_emb"] = emb
        sc.pp.neighbors(tmp, n_neighbors=30, use_rep="X_emb", random_state=seed)
        sc.tl.leiden(tmp, resolution=1.0, random_state=seed, flavor="igraph", n_iterations=2)
        return tmp.obs["leiden"].astype(int).to_numpy()
    raise input_error(f"unknown clustering {method!r}", "cluster", "use 'kmeans' or 'leiden'")


def ari(
    labels: np.ndarray,
    pred: Matrix,
    method: Literal["kmeans", "leiden"] = "kmeans",
    seed: int = 0,
) -> float:
    """ARI between ``labels`` and clusters of ``pred`` (KMeans with the label count)."""
    labels = np.asarray(labels)
    if labels.shape[0] != pred.shape[0]:
        raise input_error(
            f"{labels.shape[0]} labels for {pred.shape[0]} predicted spots",
            "labels",
            "give one label per scored spot",
        )
    n_clusters = int(pd.unique(labels).size)
    return float(adjusted_rand_score(labels, cluster(pred, n_clusters, method, seed)))


def nonzero_scores(
    rows: np.ndarray,
    cols: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    shape: tuple[int, int],
) -> dict[str, float]:
    """``cosine``, ``mse``, ``pearson`` (per spot) and ``pearson_gene`` from gathered values.

    ``t`` and ``p`` are the truth's positive entries at ``(rows, cols)`` and the prediction
    there: the same numbers :func:`evaluate` gives, without a dense prediction (used to score
    many candidate predictions that differ only at those entries).
    """
    t, p = np.asarray(t, dtype=np.float64), np.asarray(p, dtype=np.float64)
    out = {}
    for groups, n, suffix in ((rows, shape[0], ""), (cols, shape[1], "_gene")):
        g = np.asarray(groups, dtype=np.int64)
        if not suffix:
            out["cosine"] = _average(_cosine_values(t, p, g, n))
            out["mse"] = _average(_group_mean((p - t) ** 2, g, n))
        out[f"pearson{suffix}"] = _average(_correlation(t, p, g, n))
    return out


def evaluate(
    truth: Matrix,
    pred: Matrix,
    labels: np.ndarray | None = None,
    cluster_method: Literal["kmeans", "leiden"] = "kmeans",
    seed: int = 0,
) -> dict[str, float]:
    """All metrics at once (one gather of the prediction at truth's non-zeros).

    Returns a dict with ``mae, mse, cosine, pearson, spearman`` (per spot), the same with
    suffix ``_gene`` (per gene), ``cosine_flat`` (flattened non-zeros), ``mae_all``,
    ``mse_all``, ``iou`` and ``ari`` (NaN without ``labels``).
    """
    pr = _Paired(truth, pred)
    out: dict[str, float] = {}
    for axis, suffix in (("spot", ""), ("gene", "_gene")):
        g, n = pr.groups(axis)
        out[f"mae{suffix}"] = _average(_group_mean(np.abs(pr.p - pr.t), g, n))
        out[f"mse{suffix}"] = _average(_group_mean((pr.p - pr.t) ** 2, g, n))
        out[f"cosine{suffix}"] = _average(_cosine(pr, g, n))
        out[f"pearson{suffix}"] = _average(_correlation(pr.t, pr.p, g, n))
        rt, rp = _ranks(pr.t, g), _ranks(pr.p, g)
        out[f"spearman{suffix}"] = _average(_correlation(rt, rp, g, n))
    g0, n0 = pr.groups(None)
    out["cosine_flat"] = _average(_cosine(pr, g0, n0))
    out["mae_all"], out["mse_all"] = _all_entry_errors(pr)
    out["iou"] = _zero_iou(pr, _count_zeros(pred))
    out["ari"] = float("nan") if labels is None else ari(labels, pred, cluster_method, seed)
    return out
