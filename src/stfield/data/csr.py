"""Mini-batching of CSR expression matrices: rows are densified one batch at a time.

Nothing here ever densifies a whole slice. :class:`CSRRows` turns a set of row indices into a
dense tensor; :func:`batch_indices` shuffles reproducibly; :class:`GraphBatcher` cuts, for a
batch of target spots, the rectangular block of the adjacency matrix over the spots they aggregate
from, and forms ``Â[batch] · log1p(X)`` sparse, so a one-hop graph convolution on the batch is
exact and only the batch itself (not its neighbours) is ever dense. :class:`CSRBuilder` collects dense output blocks
into one CSR matrix without holding a second copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset


def as_csr(X: np.ndarray | sp.spmatrix | sp.sparray, dtype: type = np.float32) -> sp.csr_matrix:
    """Return ``X`` as a canonical float CSR matrix (copying only when needed)."""
    from .._validate import check_counts

    if not sp.issparse(X) and np.asarray(X).dtype == object:
        check_counts(X, "X", allow_negative=True)  # clear error for strings in the matrix
    if sp.issparse(X):
        out = sp.csr_matrix(X, dtype=dtype)
    else:
        out = sp.csr_matrix(np.asarray(X, dtype=dtype))
    if not out.has_canonical_format:
        out = out.copy()
        out.sum_duplicates()
    return out


def dense_rows(
    X: sp.csr_matrix, rows: np.ndarray, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Densify ``X[rows]`` into a float32 tensor on ``device``."""
    block = X[np.asarray(rows)]
    return torch.from_numpy(np.asarray(block.toarray(), dtype=np.float32)).to(device)


class CSRBuilder:
    """Assemble a CSR matrix from dense row blocks appended in order, holding only the result.

    ``scipy.sparse.vstack`` of per-batch matrices keeps every block *and* the stacked copy alive
    (twice the output). Here the non-zeros go straight into growing ``data``/``indices`` buffers
    (grown in place by ``realloc``, so large buffers are remapped, not copied), and
    :meth:`finish` wraps them without a copy: memory is the output plus one block.
    """

    def __init__(self, n_cols: int, dtype: type = np.float32, expected_rows: int = 0) -> None:
        self.n_cols = int(n_cols)
        self.dtype = np.dtype(dtype)
        self.expected_rows = int(expected_rows)
        self._data = np.empty(0, dtype=self.dtype)
        self._indices = np.empty(0, dtype=np.int32 if n_cols < 2**31 else np.int64)
        self._row_nnz: list[np.ndarray] = []
        self.nnz = 0
        self.n_rows = 0

    def _reserve(self, extra: int, block_rows: int) -> None:
        need = self.nnz + extra
        if need <= self._data.size:
            return
        # First guess from the density so far over the expected rows, then grow by half.
        rows_seen = self.n_rows + block_rows
        guess = need * max(self.expected_rows, rows_seen) // max(rows_seen, 1)
        capacity = max(need, int(guess * 1.05) + 1024, int(self._data.size * 1.5))
        # ndarray.resize reallocates in place (no second reference to these private buffers).
        self._data.resize(capacity, refcheck=False)
        self._indices.resize(capacity, refcheck=False)

    def append_dense(self, block: np.ndarray) -> None:
        """Append the rows of a dense ``(rows, n_cols)`` block (its non-zeros only)."""
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != self.n_cols:
            raise ValueError(f"block of shape {block.shape}, expected (rows, {self.n_cols})")
        mask = block != 0
        row_nnz = np.count_nonzero(mask, axis=1)
        k = int(row_nnz.sum())
        self._reserve(k, block.shape[0])
        cols = np.nonzero(mask)[1]
        self._indices[self.nnz : self.nnz + k] = cols
        self._data[self.nnz : self.nnz + k] = block[mask]
        self._row_nnz.append(row_nnz)
        self.nnz += k
        self.n_rows += block.shape[0]

    def finish(self) -> sp.csr_matrix:
        """The assembled matrix (the builder is emptied)."""
        self._data.resize(self.nnz, refcheck=False)
        self._indices.resize(self.nnz, refcheck=False)
        index_dtype = np.int32 if self.nnz < 2**31 and self.n_cols < 2**31 else np.int64
        indptr = np.zeros(self.n_rows + 1, dtype=index_dtype)
        if self._row_nnz:
            np.cumsum(np.concatenate(self._row_nnz), out=indptr[1:])
        indices = self._indices.astype(index_dtype, copy=False)
        out = sp.csr_matrix(
            (self._data, indices, indptr), shape=(self.n_rows, self.n_cols), copy=False
        )
        self._data = np.empty(0, dtype=self.dtype)
        self._indices = np.empty(0, dtype=self._indices.dtype)
        self._row_nnz, self.nnz, self.n_rows = [], 0, 0
        return out


def batch_indices(
    indices: np.ndarray,
    batch_size: int | None,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    min_last: int = 2,
) -> list[np.ndarray]:
    """Split ``indices`` into batches (shuffled with ``rng`` when ``shuffle``).

    ``batch_size=None`` gives one full batch. A trailing batch smaller than ``min_last`` is merged
    into the previous one (BatchNorm cannot train on a single row).
    """
    idx = np.asarray(indices)
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs an rng (np.random.Generator) for reproducibility")
        idx = idx[rng.permutation(idx.size)]
    if batch_size is None or batch_size >= idx.size:
        return [idx]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [idx[i : i + batch_size] for i in range(0, idx.size, batch_size)]
    if len(batches) > 1 and batches[-1].size < min_last:
        tail = batches.pop()
        batches[-1] = np.concatenate([batches[-1], tail])
    return batches


class CSRRows(Dataset):
    """A torch ``Dataset`` over the rows of a CSR matrix (optionally with per-row coordinates).

    ``ds[i]`` or ``ds[array_of_rows]`` returns ``(x, coords)`` as dense float32 tensors, so the
    dataset works with a ``BatchSampler`` (``DataLoader(ds, sampler=..., batch_size=None)``) or
    directly with :meth:`batches`.
    """

    def __init__(
        self,
        X: np.ndarray | sp.spmatrix,
        coords: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.X = as_csr(X)
        self.coords = None if coords is None else np.asarray(coords, dtype=np.float32)
        if self.coords is not None and self.coords.shape[0] != self.X.shape[0]:
            raise ValueError(f"{self.coords.shape[0]} coordinate rows for {self.X.shape[0]} rows")
        self.device = device

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, rows: int | np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows_arr = np.atleast_1d(np.asarray(rows))
        x = dense_rows(self.X, rows_arr, self.device)
        c = None
        if self.coords is not None:
            c = torch.from_numpy(self.coords[rows_arr]).to(self.device)
        if np.ndim(rows) == 0:
            return x[0], None if c is None else c[0]
        return x, c

    def batches(
        self,
        batch_size: int | None,
        shuffle: bool = True,
        rng: np.random.Generator | None = None,
        indices: np.ndarray | None = None,
    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor | None]]:
        """Yield ``(rows, x_dense, coords)`` per mini-batch over ``indices`` (default all rows)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        for rows in batch_indices(idx, batch_size, shuffle, rng):
            x, c = self[rows]
            yield rows, x, c


class GraphBatcher:
    """Cut the sub-graph of a batch's neighbours out of a (normalised) CSR adjacency matrix."""

    def __init__(self, adjacency: sp.spmatrix, device: str | torch.device = "cpu") -> None:
        A = as_csr(adjacency)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"adjacency must be square, got {A.shape}")
        self.A = A
        self.device = device

    def block(self, targets: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
        """``(nodes, Â[targets][:, nodes])``: the sorted spots the targets aggregate from, and the
        ``(len(targets), len(nodes))`` block with columns relabelled to positions in ``nodes``.

        Costs O(edges of the targets): nothing of size ``n_spots`` is allocated per batch.
        """
        block = self.A[np.asarray(targets, dtype=np.int64)]
        nodes = np.unique(block.indices).astype(np.int64)
        cols = np.searchsorted(nodes, block.indices)
        sub = sp.csr_matrix(
            (block.data, cols, block.indptr), shape=(block.shape[0], nodes.size), copy=False
        )
        return nodes, sub

    def aggregate(
        self,
        X: sp.csr_matrix,
        targets: np.ndarray,
        transform: Callable[[np.ndarray], np.ndarray] | None = np.log1p,
    ) -> torch.Tensor:
        """Dense ``Â[targets] @ transform(X)`` as a float32 tensor on ``device``.

        ``transform`` is applied to the non-zero values (it must map 0 to 0, as ``log1p`` does).
        The product is taken sparse × sparse on the rows of ``X`` the targets reach, so neither
        ``X`` nor the neighbours' features are densified: only the ``(len(targets), n_genes)``
        result is. This is the input of a graph convolution's weight matrix, ``(ÂX)W = Â(XW)``,
        at the cost of one dense ``targets × genes`` product instead of ``nodes × genes``.
        """
        nodes, sub = self.block(targets)
        Xn = X[nodes]
        data = Xn.data if transform is None else transform(Xn.data).astype(np.float32, copy=False)
        Xn = sp.csr_matrix((data, Xn.indices, Xn.indptr), shape=Xn.shape, copy=False)
        out = (sub @ Xn).toarray()
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(self.device)
