"""SUICA and its ablations (paper Table 3) behind the baseline protocol.

``suica`` is the full model (``suica-siren``: the same with a SIREN backbone, which the paper
advises for sparser slices); each ablation removes one component:

* ``suica-noae`` — no autoencoder: the INR maps coordinates straight to genes, trained with
  SUICA's reconstruction loss (MSE over non-zeros + L1 + Dice);
* ``suica-nodice`` — λ = 0 in the decoder fine-tuning;
* ``suica-nograph`` — k = 1 (each spot its own only neighbour): the GCN becomes a plain MLP.

Beyond the paper (issue #8), both with SIREN: ``suica-leaky`` (decoder output leaky while
training, so no gene dies) and ``suica-knn`` (that, blended with kNN interpolation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp


class SUICAMethod:
    """Fit :class:`stfield.models.suica.SUICA` with ``fit(X, coords)``, predict anywhere.

    Parameters
    ----------
    preset
        Training preset of :meth:`SUICA.fit` (``"paper"`` or ``"fast"``).
    fit_options
        Extra :meth:`SUICA.fit` options (epochs, learning rates, batch sizes...).
    seed
        Seed of the model.
    **model_options
        :class:`SUICA` constructor options (backbone, dice_weight, n_neighbors...).
    """

    name = "suica"

    def __init__(
        self,
        preset: str = "paper",
        fit_options: dict[str, Any] | None = None,
        seed: int = 0,
        epochs_gae: int | None = None,
        epochs_inr: int | None = None,
        epochs_decoder: int | None = None,
        **model_options: Any,
    ) -> None:
        self.preset = preset
        self.fit_options = dict(fit_options or {})
        for key, value in (
            ("epochs_gae", epochs_gae),
            ("epochs_inr", epochs_inr),
            ("epochs_decoder", epochs_decoder),
        ):
            if value is not None:
                self.fit_options[key] = value
        self.model_options = {"seed": seed, **model_options}

    def fit(self, X: np.ndarray | sp.spmatrix, coords: np.ndarray) -> SUICAMethod:
        from ...models.suica import SUICA

        self.model_ = SUICA(**self.model_options)
        self.model_.fit(X, coords, preset=self.preset, progress=False, **self.fit_options)
        return self

    def predict(self, coords: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        # The field never reads a spot's own (degraded) values at prediction time; with
        # blend="knn" the interpolation part leaves the spot itself out too.
        return self.model_.predict(coords, exclude_self=exclude_self)


def _variant(**fixed: Any) -> Callable[..., SUICAMethod]:
    def factory(**kwargs: Any) -> SUICAMethod:
        return SUICAMethod(**{**kwargs, **fixed})

    return factory


def _noae(
    *,
    backbone: str = "ffn",
    epochs_inr: int | None = None,
    epochs_gae: int | None = None,
    epochs_decoder: int | None = None,
    preset: str | None = None,
    **kwargs: Any,
) -> Any:
    """SUICA without the autoencoder (stage options that do not apply are accepted, unused)."""
    from .inr import VanillaINR

    if epochs_inr is not None:
        kwargs["epochs"] = epochs_inr
    return VanillaINR(backbone, loss="suica", **kwargs)


#: Method name -> factory (keyword options: seed, preset, epochs_*, SUICA options).
SUICA_METHODS: dict[str, Callable[..., Any]] = {
    "suica": _variant(),
    "suica-siren": _variant(backbone="siren"),
    "suica-nodice": _variant(dice_weight=0.0),
    "suica-nograph": _variant(n_neighbors=1),
    "suica-noae": _noae,
    # Issue #8: the decoder's output ReLU kills genes; these keep it alive while training
    # (leaky), and additionally blend with kNN interpolation (weight chosen on held-out spots).
    "suica-leaky": _variant(backbone="siren", decoder_activation="leaky"),
    "suica-knn": _variant(backbone="siren", decoder_activation="leaky", blend="knn"),
}
