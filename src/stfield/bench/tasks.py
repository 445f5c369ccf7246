"""Degradation protocols: spatial split, gene muting, denoising.

Every protocol is seeded and returns an object that can be saved to and reloaded from ``.npz``
so any reported number can be reproduced on exactly the same spots and entries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._errors import StfieldFileNotFoundError, input_error
from .._utils import atomic_path


def _as_csr(X: np.ndarray | sp.spmatrix, where: str) -> sp.csr_matrix:
    if sp.issparse(X):
        return sp.csr_matrix(X)
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise input_error(f"expected a 2-D matrix, got shape {arr.shape}", where)
    return sp.csr_matrix(arr)


def _save_npz(path: str | os.PathLike[str], kind: str, **arrays: np.ndarray) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, protocol=np.array(kind), **arrays)
    return path


def _load_npz(path: str | os.PathLike[str], kind: str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise StfieldFileNotFoundError(f"{path}: protocol file does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise input_error(f"not a readable .npz file ({exc})", str(path)) from None
    found = str(arrays.get("protocol", "unknown"))
    if found != kind:
        raise input_error(
            f"this file holds a {found!r} protocol, expected {kind!r}",
            str(path),
            f"pass a file written by {kind}.save()",
        )
    return arrays


@dataclass(frozen=True)
class SpatialSplit:
    """Held-out spots for spatial imputation: fit on ``train``, score on ``test``."""

    train: np.ndarray
    test: np.ndarray
    seed: int

    @property
    def n_spots(self) -> int:
        return int(self.train.size + self.test.size)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the split to ``path`` (``.npz``), atomically."""
        return _save_npz(path, "spatial_split", train=self.train, test=self.test, seed=self.seed)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SpatialSplit:
        """Reload a split written by :meth:`save`."""
        a = _load_npz(path, "spatial_split")
        return cls(train=a["train"], test=a["test"], seed=int(a["seed"]))


def spatial_split(n_spots: int, test_fraction: float = 0.2, seed: int = 0) -> SpatialSplit:
    """Random split of spots (default 80/20), sorted indices, seeded.

    Parameters
    ----------
    n_spots
        Number of spots in the slice.
    test_fraction
        Fraction of spots held out (at least one spot on each side).
    seed
        Random seed.
    """
    if not 0 < test_fraction < 1:
        raise input_error(
            f"test_fraction must be in (0, 1), got {test_fraction}", "test_fraction", "use 0.2"
        )
    if n_spots < 2:
        raise input_error(f"cannot split {n_spots} spot(s)", "spatial_split", "need >= 2 spots")
    rng = np.random.default_rng(seed)
    n_test = min(max(1, round(test_fraction * n_spots)), n_spots - 1)
    perm = rng.permutation(n_spots)
    return SpatialSplit(train=np.sort(perm[n_test:]), test=np.sort(perm[:n_test]), seed=seed)


@dataclass(frozen=True)
class GeneMask:
    """Muted non-zero entries for gene imputation.

    ``X_input`` is the observed matrix with the muted entries removed (set to zero, dropped
    from the sparse structure); ``rows``/``cols`` index the muted entries, whose true values
    are the scoring target.
    """

    X_input: sp.csr_matrix
    rows: np.ndarray
    cols: np.ndarray
    seed: int

    def muted_mask(self) -> sp.csr_matrix:
        """Boolean CSR matrix marking the muted entries."""
        ones = np.ones(self.rows.size, dtype=bool)
        return sp.csr_matrix((ones, (self.rows, self.cols)), shape=self.X_input.shape)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the muted positions to ``path`` (``.npz``); ``X_input`` is rebuilt on load."""
        return _save_npz(
            path,
            "gene_mask",
            rows=self.rows,
            cols=self.cols,
            seed=self.seed,
            shape=np.array(self.X_input.shape),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], X: np.ndarray | sp.spmatrix) -> GeneMask:
        """Reload muted positions and re-apply them to the clean matrix ``X``."""
        a = _load_npz(path, "gene_mask")
        X = _as_csr(X, "X")
        if tuple(a["shape"]) != X.shape:
            raise input_error(
                f"mask was made for shape {tuple(a['shape'])}, matrix has {X.shape}",
                str(path),
                "load the mask with the same (filtered) matrix it was made from",
            )
        return cls(_remove_entries(X, a["rows"], a["cols"]), a["rows"], a["cols"], int(a["seed"]))


def _remove_entries(X: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
    drop = sp.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=X.shape)
    kept = X - X.multiply(drop.astype(X.dtype))
    kept = sp.csr_matrix(kept)
    kept.eliminate_zeros()
    return kept


def mute_entries(X: np.ndarray | sp.spmatrix, fraction: float = 0.7, seed: int = 0) -> GeneMask:
    """Mute a random ``fraction`` of the non-zero entries (SUICA's gene imputation: 70%).

    Zeros cannot be muted (they carry no signal to recover), so the fraction is taken over
    the non-zero entries; the returned ``X_input`` stays sparse.
    """
    if not 0 < fraction < 1:
        raise input_error(f"fraction must be in (0, 1), got {fraction}", "fraction", "use 0.7")
    X = _as_csr(X, "X")
    X.eliminate_zeros()
    coo = X.tocoo()
    if coo.nnz == 0:
        raise input_error("the matrix has no non-zero entry to mute", "mute_entries")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(coo.nnz, size=max(1, round(fraction * coo.nnz)), replace=False))
    rows, cols = coo.row[chosen].astype(np.int64), coo.col[chosen].astype(np.int64)
    return GeneMask(_remove_entries(X, rows, cols), rows, cols, seed)


def add_gaussian_noise(
    X: np.ndarray | sp.spmatrix,
    sigma: float = 1.0,
    seed: int = 0,
    block_rows: int = 4096,
) -> sp.csr_matrix:
    """Denoising input: add N(0, sigma²) noise to every entry, clip at 0 (SUICA's protocol).

    Noise touches zeros too, so the result is much denser than ``X``; it is built in blocks
    of ``block_rows`` rows so that only one dense block exists at a time. Each block draws
    from its own stream ``(seed, block index)``, so any block can be regenerated alone.
    """
    if sigma < 0 or not np.isfinite(sigma):
        raise input_error(f"sigma must be >= 0, got {sigma}", "sigma", "use 1.0")
    X = _as_csr(X, "X")
    blocks = []
    for b, start in enumerate(range(0, X.shape[0], block_rows)):
        dense = X[start : start + block_rows].toarray().astype(np.float32)
        rng = np.random.default_rng([seed, b])
        dense += rng.normal(0.0, sigma, size=dense.shape).astype(np.float32)
        np.maximum(dense, 0.0, out=dense)
        blocks.append(sp.csr_matrix(dense))
    return sp.vstack(blocks, format="csr") if blocks else X.copy()
