"""Per-gene mean: the trivial baseline every model must beat."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._validate import check_coordinates


class GeneMean:
    """Predict every spot as the average profile of the fitted spots."""

    name = "mean"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed  # accepted for the common protocol; the method is deterministic

    def fit(self, X: np.ndarray | sp.spmatrix, coords: np.ndarray) -> GeneMean:
        check_coordinates(coords, "coords", n_rows=X.shape[0])
        self.mean_ = np.asarray(X.mean(axis=0), dtype=np.float32).ravel()
        return self

    def predict(self, coords: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        coords = check_coordinates(coords, "coords")
        return np.broadcast_to(self.mean_, (coords.shape[0], self.mean_.size)).copy()
