"""The protocol every baseline follows: ``fit(X, coords)`` then ``predict(coords)``."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp


class Baseline(Protocol):
    """A method fitted on observed spots that predicts expression at any coordinates.

    ``X`` is the (possibly degraded) spots × genes matrix, CSR or dense; ``coords`` its
    ``(n, d)`` coordinates in µm. ``predict`` returns a dense ``(m, genes)`` float32 array.
    ``exclude_self`` asks for predictions at the fitted spots that do not use the spot's own
    (degraded) values — the gene-imputation and denoising protocols need it.
    """

    name: str

    def fit(self, X: np.ndarray | sp.spmatrix, coords: np.ndarray) -> Baseline: ...

    def predict(self, coords: np.ndarray, exclude_self: bool = False) -> np.ndarray: ...
