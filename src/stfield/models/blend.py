"""A neural field blended with kernel interpolation of the fitted spots.

The interpolation is Gaussian-kernel smoothing (:class:`~stfield.bench.baselines.gaussian.
GaussianSmoother`), smooth everywhere (inverse-distance weights spike at the fitted spots, which
shows as dots on a denser grid), with its bandwidth chosen by leave-one-out on the fitted spots:
about one spot spacing on tissue, up to the per-gene mean where a slice has no local structure.

``prediction = (1 - w) · field(x) + w · interpolation(x)``. The two make different errors: neighbour
interpolation keeps each spot's gene profile (high per-spot correlation) but blurs spatial
patterns; the field learns per-gene spatial structure (high per-gene correlation) but its
profiles are noisier. ``w`` is chosen on spots held out from the field's training, as the value
that improves the weakest of four agreement measures (per-spot cosine, MSE, per-spot and
per-gene Pearson over non-zero entries) most relative to interpolation alone. ``w = 1`` is pure
interpolation, so on those held-out spots the blend never scores below it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._errors import input_error
from ..bench.baselines.gaussian import GaussianSmoother

logger = logging.getLogger(__name__)

#: Candidate weights of the interpolation.
WEIGHT_GRID = tuple(round(0.05 * i, 2) for i in range(21))
#: Measures the weight is chosen on, with ``+1`` if larger is better.
CRITERIA = {"cosine": 1, "mse": -1, "pearson": 1, "pearson_gene": 1}


def choose_weight(
    truth: sp.spmatrix,
    field: np.ndarray,
    interpolated: np.ndarray,
    grid: tuple[float, ...] = WEIGHT_GRID,
) -> tuple[float, dict[float, dict[str, float]]]:
    """Weight of ``interpolated`` that maximises the smallest relative gain over it.

    Parameters
    ----------
    truth
        Held-out spots × genes (sparse).
    field, interpolated
        The field's and the interpolation's predictions of those spots (dense).

    Returns
    -------
    The chosen weight and the scores of every candidate.
    """
    coo = sp.coo_matrix(truth)
    keep = coo.data > 0
    rows, cols = coo.row[keep], coo.col[keep]
    return choose_weight_gathered(
        rows,
        cols,
        coo.data[keep],
        np.asarray(field)[rows, cols],
        np.asarray(interpolated)[rows, cols],
        truth.shape,
        grid,
    )


def choose_weight_gathered(
    rows: np.ndarray,
    cols: np.ndarray,
    truth: np.ndarray,
    field: np.ndarray,
    interpolated: np.ndarray,
    shape: tuple[int, int],
    grid: tuple[float, ...] = WEIGHT_GRID,
) -> tuple[float, dict[float, dict[str, float]]]:
    """:func:`choose_weight` from the values at the truth's positive entries only.

    Every criterion is measured over those entries, so the candidates never need a dense
    prediction: memory is O(non-zeros of the held-out spots).
    """
    from ..bench.metrics import nonzero_scores

    scores = {}
    for w in grid:
        m = nonzero_scores(rows, cols, truth, (1.0 - w) * field + w * interpolated, shape)
        scores[w] = {k: float(m[k]) for k in CRITERIA}
    ref = scores[1.0] if 1.0 in scores else scores[max(scores)]

    def worst_gain(s: dict[str, float]) -> float:
        gains = []
        for key, sign in CRITERIA.items():
            if not (np.isfinite(s[key]) and np.isfinite(ref[key])):
                continue
            gains.append(sign * (s[key] - ref[key]) / max(abs(ref[key]), 1e-3))
        # Rounded so that float noise in scale-free measures does not break ties.
        return round(min(gains), 6) if gains else 0.0

    # Ties (e.g. no gain anywhere) go to the larger interpolation weight: the safer choice.
    best = max(sorted(grid, reverse=True), key=lambda w: worst_gain(scores[w]))
    return float(best), scores


class InterpolationBlend:
    """Interpolation of stored spots, mixed into a field's predictions.

    Parameters
    ----------
    interpolator
        A fitted :class:`~stfield.bench.baselines.gaussian.GaussianSmoother` (or, in model
        folders written before it, a Gaussian / inverse-distance ``KNNInterpolator``): its spots
        and expression are what the model stores.
    weight
        Weight ``w`` of the interpolation in ``(1 - w) · field + w · interpolation``.
    normalized
        The spots are stored in the model's normalised coordinate frame (queries are converted
        by the model); ``False`` for model folders written before, which stored µm.
    """

    def __init__(self, interpolator: Any, weight: float, normalized: bool = False) -> None:
        if not 0.0 <= weight <= 1.0:
            raise input_error(f"blend weight must be in [0, 1], got {weight}", "blend_weight")
        self.weight = float(weight)
        self.interpolator = interpolator
        self.normalized = bool(normalized)

    @property
    def X(self) -> sp.csr_matrix:
        return self.interpolator.X_

    @property
    def coords(self) -> np.ndarray:
        return self.interpolator.coords_

    def mix(self, field: np.ndarray, coords: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Blend a block of field predictions at ``coords``.

        ``exclude_self`` leaves a query's own spot out of the interpolation when it coincides
        with a fitted spot (denoising and gene imputation predict the fitted spots themselves).
        """
        if self.weight == 0.0:
            return field
        interpolated = self.interpolator.predict(coords, exclude_self=exclude_self)
        return (1.0 - self.weight) * field + self.weight * interpolated

    def to_arrays(self) -> dict[str, np.ndarray]:
        X = self.X
        return {
            "blend_data": X.data.astype(np.float32),
            "blend_indices": X.indices.astype(np.int32),
            "blend_indptr": X.indptr.astype(np.int64),
            "blend_shape": np.asarray(X.shape, dtype=np.int64),
            "blend_coords": self.coords.astype(np.float64),
        }

    def config(self) -> dict[str, Any]:
        it = self.interpolator
        if isinstance(it, GaussianSmoother):
            # JSON has no infinity: the per-gene-mean limit is written as the string "inf".
            h = it.bandwidth_
            return {
                "weight": self.weight,
                "kernel": "nadaraya-watson",
                "bandwidth": "inf" if math.isinf(h) else h,
                "normalized": self.normalized,
            }
        return {
            "weight": self.weight,
            "k": int(it.k_),
            "kernel": it.kernel,
            "bandwidth": it.bandwidth_ if it.kernel == "gaussian" else None,
            "normalized": self.normalized,
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], config: dict[str, Any]
    ) -> InterpolationBlend:
        X = sp.csr_matrix(
            (arrays["blend_data"], arrays["blend_indices"], arrays["blend_indptr"]),
            shape=tuple(int(v) for v in arrays["blend_shape"]),
        )
        kernel = config.get("kernel", "idw")  # folders written before the kernel option: IDW
        if kernel == "nadaraya-watson":
            interpolator: Any = GaussianSmoother(bandwidth=float(config["bandwidth"]))
        else:
            from ..bench.baselines.knn import KNNInterpolator

            bandwidth = config.get("bandwidth") if kernel == "gaussian" else "auto"
            interpolator = KNNInterpolator(k=int(config["k"]), kernel=kernel, bandwidth=bandwidth)
        interpolator.fit(X, arrays["blend_coords"])
        return cls(interpolator, float(config["weight"]), bool(config.get("normalized", False)))


__all__ = [
    "CRITERIA",
    "WEIGHT_GRID",
    "InterpolationBlend",
    "choose_weight",
    "choose_weight_gathered",
]
