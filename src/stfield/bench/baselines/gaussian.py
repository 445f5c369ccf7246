"""Gaussian-kernel smoothing (Nadaraya-Watson), bandwidth chosen by leave-one-out on the fitted
spots.

``prediction(x) = Σ_j K_h(x - x_j) · X_j / Σ_j K_h(x - x_j)`` with ``K_h(d) = exp(-d² / 2h²)``
over the fitted spots within ``3h``. Where the kNN baseline chooses how *many* neighbours to
average, this chooses *how far*. It is written here rather than taken from scikit-learn because
``RadiusNeighborsRegressor`` needs a dense target (spots × genes), which an atlas slice cannot
afford: here the kernel weights are a sparse matrix per block of queries, multiplied into the
CSR counts. The neighbour search is scikit-learn's.

The bandwidth grid runs from narrower than the spot spacing to ``inf``, the limit where every
spot weighs the same: the per-gene mean. Where a slice has little spatial structure (cultured
cells) or heavy noise, leave-one-out picks a wide kernel or the mean itself, so the smoother is
never much worse than the per-gene mean; where structure is local, it picks about one spacing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from ..._errors import input_error
from ..._validate import check_coordinates

#: Candidate bandwidths, in units of the median distance between neighbouring fitted spots;
#: ``inf`` is the per-gene mean.
DEFAULT_BANDWIDTH_GRID = (0.35, 0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0, 8.0, 16.0, math.inf)
#: The kernel is cut at this many bandwidths (its weight there is exp(-4.5) ≈ 1% of the peak).
TRUNCATE = 3.0


class GaussianSmoother:
    """Nadaraya-Watson kernel regression of the fitted spots.

    Parameters
    ----------
    bandwidth
        ``h`` in coordinate units, or ``"cv"`` to choose it from ``bandwidth_grid`` by
        leave-one-out on the fitted spots (each predicted from the *other* spots; lowest MSE
        over non-zero entries wins, the criterion of the kNN baseline's ``k``).
    bandwidth_grid
        Candidates for ``"cv"``, as multiples of the median nearest-neighbour spacing (``inf``:
        the per-gene mean).
    max_neighbors
        Finite candidates whose kernel would hold more than this many spots on average (a
        seeded sample is counted) are skipped, so memory per block of queries stays bounded.
    cv_spots
        At most this many fitted spots (a seeded sample) are scored for the bandwidth choice;
        their neighbours are searched among all fitted spots.
    block_rows
        Queries are answered in blocks of this many rows (bounded memory).
    seed
        Seed of the ``cv_spots`` sample.

    Notes
    -----
    A query with no fitted spot within ``3h`` (far outside the tissue) is given the kernel
    average of the spots within ``3h`` of its *nearest* spot's distance, so it is never 0 / 0.
    """

    name = "gaussian"

    def __init__(
        self,
        bandwidth: float | str = "cv",
        bandwidth_grid: Sequence[float] = DEFAULT_BANDWIDTH_GRID,
        max_neighbors: int = 1024,
        cv_spots: int = 5000,
        block_rows: int = 4096,
        seed: int = 0,
    ) -> None:
        if not bandwidth_grid or min(bandwidth_grid) <= 0:
            raise input_error(
                f"bandwidth_grid must hold positive multiples, got {tuple(bandwidth_grid)}",
                "bandwidth_grid",
            )
        if bandwidth != "cv" and not (
            isinstance(bandwidth, int | float) and not math.isnan(bandwidth) and bandwidth > 0
        ):
            raise input_error(
                f"bandwidth must be a number > 0 (inf: the per-gene mean) or 'cv', got "
                f"{bandwidth!r}",
                "bandwidth",
            )
        if max_neighbors < 1:
            raise input_error(f"max_neighbors must be >= 1, got {max_neighbors}", "max_neighbors")
        self.bandwidth = bandwidth
        self.bandwidth_grid = tuple(float(b) for b in bandwidth_grid)
        self.max_neighbors = int(max_neighbors)
        self.cv_spots = int(cv_spots)
        self.block_rows = int(block_rows)
        self.seed = seed

    def fit(
        self, X: np.ndarray | sp.spmatrix, coords: np.ndarray, *, copy: bool = True
    ) -> GaussianSmoother:
        """Store the spots and choose the bandwidth (``copy=False`` keeps a float32 CSR ``X``)."""
        self.coords_ = check_coordinates(coords, "coords", n_rows=X.shape[0])
        n = self.coords_.shape[0]
        if n < 2:
            raise input_error("kernel smoothing needs at least 2 fitted spots", "gaussian")
        shared = not copy and sp.isspmatrix_csr(X) and X.dtype == np.float32
        self.X_ = X if shared else sp.csr_matrix(X, dtype=np.float32)
        self.total_ = np.asarray(self.X_.sum(axis=0), dtype=np.float64).ravel()
        self.nn_ = NearestNeighbors().fit(self.coords_)
        dist, _ = self.nn_.kneighbors(self.coords_, n_neighbors=2)
        positive = dist[:, 1][dist[:, 1] > 0]
        self.spacing_ = float(np.median(positive)) if positive.size else 1.0
        if self.bandwidth != "cv":
            self.bandwidth_ = float(self.bandwidth)
            return self
        rng = np.random.default_rng(self.seed)
        spots = np.arange(n)
        if n > self.cv_spots:
            spots = np.sort(rng.choice(n, size=self.cv_spots, replace=False))
        multiples = [b for b in self.bandwidth_grid if self._affordable(self.spacing_ * b, rng)]
        widths = [self.spacing_ * b for b in multiples]
        errors = np.array([self._loo_mse(h, spots) for h in widths])
        best = int(np.argmin(errors))  # first of equal errors: the narrowest
        self.cv_errors_ = dict(zip(multiples, errors.tolist(), strict=True))
        self.cv_mse_ = float(errors[best])
        self.bandwidth_ = widths[best]
        return self

    def _affordable(self, h: float, rng: np.random.Generator) -> bool:
        """Whether the kernel at ``h`` holds at most ``max_neighbors`` spots on average."""
        if math.isinf(h):
            return True  # the mean needs no kernel matrix
        n = self.coords_.shape[0]
        if n <= self.max_neighbors:
            return True
        probe = self.coords_[rng.choice(n, size=min(n, 256), replace=False)]
        hits = self.nn_.radius_neighbors(probe, radius=TRUNCATE * h, return_distance=False)
        return float(np.mean([len(x) for x in hits])) <= self.max_neighbors

    def _kernel(self, queries: np.ndarray, h: float, drop: np.ndarray | None) -> sp.csr_matrix:
        """Row-normalised kernel weights of ``queries`` on the fitted spots, as CSR.

        ``drop[i]`` is a fitted spot left out of row ``i`` (leave-one-out), or -1.
        """
        w = self.nn_.radius_neighbors_graph(queries, radius=TRUNCATE * h, mode="distance")
        w = w.tocsr()
        # Distance-0 neighbours are stored entries: the kernel makes them 1, never 0. Within 3h
        # no weight underflows, so the only zeros left are the dropped spots.
        w.data = np.exp(-(w.data**2) / (2.0 * h**2))
        if drop is not None:
            rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
            w.data[w.indices == drop[rows]] = 0.0
            w.eliminate_zeros()
        empty = np.flatnonzero(np.diff(w.indptr) == 0)
        if empty.size:
            w = _fill_far_rows(w, self.nn_, queries, empty, h, drop, self.X_.shape[0])
        sums = np.asarray(w.sum(axis=1)).ravel()
        # float32 like the counts: the product with X_ and its dense block stay float32, half
        # the transient memory of a float64 product and its copy.
        return (sp.diags(1.0 / sums) @ w).astype(np.float32)

    def _smooth(self, queries: np.ndarray, h: float, drop: np.ndarray | None) -> np.ndarray:
        if math.isinf(h):
            return self._mean(queries.shape[0], drop)
        return (self._kernel(queries, h, drop) @ self.X_).toarray()

    def _mean(self, n_rows: int, drop: np.ndarray | None) -> np.ndarray:
        """The ``h = inf`` limit: the mean of the fitted spots (without ``drop[i]`` in row i)."""
        n = self.X_.shape[0]
        out = np.broadcast_to(self.total_, (n_rows, self.total_.size)).copy()
        if drop is not None and (drop >= 0).any():
            rows = np.flatnonzero(drop >= 0)
            out[rows] -= self.X_[drop[rows]].toarray()
            counts = np.where(drop >= 0, n - 1, n)[:, None]
        else:
            counts = n
        return (out / counts).astype(np.float32)

    def _loo_mse(self, h: float, spots: np.ndarray) -> float:
        """Pooled MSE over the non-zero entries of ``spots``, each predicted without itself."""
        g = self.X_.shape[1]
        rows_per_block = max(1, min(self.block_rows, 2**20 // max(g, 1)))
        sq_err, n_scored = 0.0, 0
        for start in range(0, spots.size, rows_per_block):
            block = spots[start : start + rows_per_block]
            truth = self.X_[block].tocoo()
            if not truth.nnz:
                continue
            pred = self._smooth(self.coords_[block], h, drop=block)
            diff = (pred[truth.row, truth.col] - truth.data).astype(np.float64)
            sq_err += float(diff @ diff)
            n_scored += truth.nnz
        return sq_err / n_scored if n_scored else 0.0

    def predict(self, coords: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Kernel average at ``coords``; ``exclude_self`` leaves out a spot at the same place."""
        coords = check_coordinates(coords, "coords", dims=(self.coords_.shape[1],))
        out = np.empty((coords.shape[0], self.X_.shape[1]), dtype=np.float32)
        for start in range(0, coords.shape[0], self.block_rows):
            q = coords[start : start + self.block_rows]
            drop = None
            if exclude_self:
                dist, idx = self.nn_.kneighbors(q, n_neighbors=1)
                drop = np.where(dist[:, 0] <= 1e-12, idx[:, 0], -1)
            out[start : start + len(q)] = self._smooth(q, self.bandwidth_, drop)
        return out


def _fill_far_rows(
    w: sp.csr_matrix,
    nn: NearestNeighbors,
    queries: np.ndarray,
    rows: np.ndarray,
    h: float,
    drop: np.ndarray | None,
    n_spots: int,
) -> sp.csr_matrix:
    """Weights for queries with no spot within the cut-off: the kernel shifted to the nearest."""
    k = min(n_spots, 64)
    dist, idx = nn.kneighbors(queries[rows], n_neighbors=k)
    if drop is not None:
        dist = np.where(idx == drop[rows, None], np.inf, dist)
    nearest = dist.min(axis=1, keepdims=True)
    weight = np.exp(-(dist**2 - nearest**2) / (2.0 * h**2))
    weight[dist > nearest + TRUNCATE * h] = 0.0
    extra = sp.csr_matrix((weight.ravel(), (np.repeat(rows, k), idx.ravel())), shape=w.shape)
    extra.eliminate_zeros()
    return (w + extra).tocsr()
