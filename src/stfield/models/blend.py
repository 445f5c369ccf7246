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
per-gene Pearson over non-zero entries) most relative to interpolation alone, then the next
weakest. ``w = 1`` is pure interpolation, so on those held-out spots the blend never scores below
it. Each candidate is also tried rescaled, spot by spot, to the field's predicted total: the
field learns each spot's level, the kernel's mean of neighbours does not.
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
    rescale: bool = True,
) -> tuple[float, bool, dict[tuple[float, bool], dict[str, float]]]:
    """Blend that maximises the smallest relative gain over the interpolation alone (leximin).

    Parameters
    ----------
    truth
        Held-out spots × genes (sparse).
    field, interpolated
        The field's and the interpolation's predictions of those spots (dense).
    grid
        Candidate weights of the interpolation.
    rescale
        Also try each weight with the blend rescaled, spot by spot, to the field's total
        (:func:`rescale_to_field`).

    Returns
    -------
    The chosen weight, whether it is rescaled, and the scores of every candidate
    ``(weight, rescaled)``.
    """
    coo = sp.coo_matrix(truth)
    keep = coo.data > 0
    rows, cols = coo.row[keep], coo.col[keep]
    field, interpolated = np.asarray(field), np.asarray(interpolated)
    totals = (field.sum(axis=1), interpolated.sum(axis=1)) if rescale else None
    return choose_weight_gathered(
        rows,
        cols,
        coo.data[keep],
        field[rows, cols],
        interpolated[rows, cols],
        truth.shape,
        grid,
        totals=totals,
    )


def rescale_factor(field_total: np.ndarray, blended_total: np.ndarray) -> np.ndarray:
    """Per-row factor that brings a mix's total to the field's (1 where the mix sums to 0)."""
    blended_total = np.asarray(blended_total, dtype=np.float64)
    ok = blended_total > 1e-12
    return np.where(
        ok, np.asarray(field_total, dtype=np.float64) / np.where(ok, blended_total, 1), 1
    )


def rescale_to_field(
    blended: np.ndarray, field_total: np.ndarray, blended_total: np.ndarray
) -> np.ndarray:
    """Scale each row of ``blended`` so that its total is the field's.

    The interpolation averages neighbours' values, zeros included, so its level at a spot is
    below the field's (which the decoder fits on the non-zero entries); mixing it in lowers the
    level of the whole profile. Rescaling keeps the mix's profile (per-spot cosine and Pearson
    are unchanged) at the field's level. A row whose mix sums to 0 is left as it is.
    """
    factor = rescale_factor(field_total, blended_total)
    return (blended * factor[:, None]).astype(blended.dtype, copy=False)


def choose_weight_gathered(
    rows: np.ndarray,
    cols: np.ndarray,
    truth: np.ndarray,
    field: np.ndarray,
    interpolated: np.ndarray,
    shape: tuple[int, int],
    grid: tuple[float, ...] = WEIGHT_GRID,
    totals: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, bool, dict[tuple[float, bool], dict[str, float]]]:
    """:func:`choose_weight` from the values at the truth's positive entries only.

    Every criterion is measured over those entries, so the candidates never need a dense
    prediction: memory is O(non-zeros of the held-out spots). ``totals`` (the field's and the
    interpolation's row sums over *all* genes, one per held-out spot) adds the rescaled
    candidates; without it only plain mixes are tried.
    """
    from ..bench.metrics import nonzero_scores

    candidates = [(float(w), False) for w in sorted(grid, reverse=True)]
    if totals is not None:
        # Plain before rescaled at equal weight, so that ties keep the plain mix.
        candidates = [c for w, _ in candidates for c in ((w, False), (w, True))]
    scores: dict[tuple[float, bool], dict[str, float]] = {}
    for w, rescaled in candidates:
        values = (1.0 - w) * field + w * interpolated
        if rescaled:
            field_total, interp_total = (np.asarray(t, dtype=np.float64) for t in totals)
            factor = rescale_factor(field_total, (1.0 - w) * field_total + w * interp_total)
            values = values * factor[rows]
        m = nonzero_scores(rows, cols, truth, values, shape)
        scores[(w, rescaled)] = {k: float(m[k]) for k in CRITERIA}
    reference = (1.0, False) if (1.0, False) in scores else candidates[0]
    ref = scores[reference]

    def sorted_gains(s: dict[str, float]) -> tuple[float, ...]:
        gains = []
        for key, sign in CRITERIA.items():
            if not (np.isfinite(s[key]) and np.isfinite(ref[key])):
                continue
            gains.append(sign * (s[key] - ref[key]) / max(abs(ref[key]), 1e-3))
        # Rounded so that float noise in scale-free measures does not break ties.
        return tuple(sorted(round(g, 6) for g in gains)) or (0.0,)

    # Leximin: the smallest relative gain decides, then the next smallest. Rescaling a spot
    # leaves its cosine and Pearson unchanged, so a rescaled mix ties the plain one on those and
    # wins only if it gains on the others. Full ties (e.g. no gain anywhere) go to the earlier
    # candidate: the larger interpolation weight, plain before rescaled (the safer choice).
    best = max(candidates, key=lambda c: sorted_gains(scores[c]))
    return best[0], best[1], scores


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
    rescale
        Scale each blended spot to the field's total (:func:`rescale_to_field`); ``False`` for
        model folders written before.
    """

    def __init__(
        self, interpolator: Any, weight: float, normalized: bool = False, rescale: bool = False
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise input_error(f"blend weight must be in [0, 1], got {weight}", "blend_weight")
        self.weight = float(weight)
        self.interpolator = interpolator
        self.normalized = bool(normalized)
        self.rescale = bool(rescale)

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
        blended = (1.0 - self.weight) * field + self.weight * interpolated
        if self.rescale:
            blended = rescale_to_field(blended, field.sum(axis=1), blended.sum(axis=1))
        return blended

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
                "rescale": self.rescale,
            }
        return {
            "weight": self.weight,
            "k": int(it.k_),
            "kernel": it.kernel,
            "bandwidth": it.bandwidth_ if it.kernel == "gaussian" else None,
            "normalized": self.normalized,
            "rescale": self.rescale,
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
        return cls(
            interpolator,
            float(config["weight"]),
            normalized=bool(config.get("normalized", False)),
            rescale=bool(config.get("rescale", False)),
        )


__all__ = [
    "CRITERIA",
    "WEIGHT_GRID",
    "InterpolationBlend",
    "choose_weight",
    "choose_weight_gathered",
    "rescale_factor",
    "rescale_to_field",
]
