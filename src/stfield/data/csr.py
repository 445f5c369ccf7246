"""Mini-batching of CSR expression matrices: rows are densified one batch at a time.

Nothing here ever densifies a whole slice. :class:`CSRRows` turns a set of row indices into a
dense tensor; :func:`batch_indices` shuffles reproducibly; :class:`GraphBatcher` returns, for a
batch of target spots, the spots they aggregate from (the batch first, then its neighbours) and the
rectangular block of the adjacency matrix, so a one-hop graph convolution on the batch is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset


def as_csr(X: np.ndarray | sp.spmatrix | sp.sparray, dtype: type = np.float32) -> sp.csr_matrix:
    """Return ``X`` as a canonical float CSR matrix (copying only when needed)."""
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


@dataclass
class GraphBatch:
    """A batch of target spots with everything a one-hop graph convolution needs.

    ``nodes`` lists the spots whose features enter the convolution: the targets first (so
    ``nodes[:n_targets]`` are the batch itself), then their neighbours. ``adj`` is the
    ``(n_targets, len(nodes))`` block of the normalised adjacency as a sparse torch tensor.
    """

    nodes: np.ndarray
    n_targets: int
    adj: torch.Tensor


class GraphBatcher:
    """Cut the sub-graph of a batch's neighbours out of a (normalised) CSR adjacency matrix."""

    def __init__(self, adjacency: sp.spmatrix, device: str | torch.device = "cpu") -> None:
        A = as_csr(adjacency)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"adjacency must be square, got {A.shape}")
        self.A = A
        self.device = device

    def __call__(self, targets: np.ndarray) -> GraphBatch:
        targets = np.asarray(targets, dtype=np.int64)
        block = self.A[targets]
        neighbours = np.setdiff1d(np.unique(block.indices), targets, assume_unique=False)
        nodes = np.concatenate([targets, neighbours]).astype(np.int64)
        # Column j of the block refers to spot j; relabel to positions in ``nodes``.
        position = np.empty(self.A.shape[0], dtype=np.int64)
        position[nodes] = np.arange(nodes.size)
        coo = block.tocoo()
        index = torch.from_numpy(np.vstack([coo.row.astype(np.int64), position[coo.col]]))
        values = torch.from_numpy(coo.data.astype(np.float32))
        adj = torch.sparse_coo_tensor(
            index, values, (targets.size, nodes.size), check_invariants=False
        ).coalesce()
        return GraphBatch(nodes=nodes, n_targets=int(targets.size), adj=adj.to(self.device))
