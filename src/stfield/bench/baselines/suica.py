"""SUICA and its ablations (paper Table 3) behind the baseline protocol.

``suica`` is stfield's default model (``SUICA()``: the ``"stfield"`` preset, issue #8: SIREN
field, an output that cannot kill genes while training, blend with kernel interpolation). ``suica-paper`` is the
published configuration (``SUICA(preset="paper")``); the paper's ablations each remove one
component from it:

* ``suica-noae`` — no autoencoder: the INR maps coordinates straight to genes, trained with
  SUICA's reconstruction loss (MSE over non-zeros + L1 + Dice);
* ``suica-nodice`` — λ = 0 in the decoder fine-tuning;
* ``suica-nograph`` — k = 1 (each spot its own only neighbour): the GCN becomes a plain MLP.

The steps from the published model to the default (issue #8), each one change: ``suica-siren``
(the published model with a SIREN backbone), ``suica-leaky`` (that, with the decoder output
leaky while training) and ``suica-knn`` (that, blended with neighbour interpolation).

Tasks follow :mod:`stfield.tl`: for denoising the model predicts each fitted spot from the field
alone (:func:`stfield.tl.denoise`), so a default model is fitted there without a blend.
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
        Training preset of :meth:`SUICA.fit` (``"stfield"``, ``"paper"`` or ``"fast"``;
        ``None``: the model preset's).
    model_preset
        Preset of the model itself (:class:`SUICA` ``preset``: architecture and training).
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
        preset: str | None = None,
        model_preset: str = "stfield",
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
        self.model_options = {"seed": seed, "preset": model_preset, **model_options}

    def set_task(self, task: str) -> None:
        """Called by the harness before ``fit``: denoising uses the field alone, as ``tl.denoise``."""
        self.task = task

    def fit(self, X: np.ndarray | sp.spmatrix, coords: np.ndarray) -> SUICAMethod:
        from ...models.suica import SUICA

        options = dict(self.model_options)
        if getattr(self, "task", None) == "denoise":
            options.setdefault("blend", "none")
        self.model_ = SUICA(**options)
        self.model_.fit(X, coords, preset=self.preset, progress=False, **self.fit_options)
        return self

    def predict(self, coords: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        # The field never reads a spot's own (degraded) values at prediction time; with
        # blend="knn" the interpolation part leaves the spot itself out too.
        interpolate = getattr(self, "task", None) != "denoise"
        return self.model_.predict(coords, exclude_self=exclude_self, interpolate=interpolate)


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
    "suica-paper": _variant(model_preset="paper"),
    "suica-nodice": _variant(model_preset="paper", dice_weight=0.0),
    "suica-nograph": _variant(model_preset="paper", n_neighbors=1),
    "suica-noae": _noae,
    # Issue #8, one change at a time from the published model towards the default: a SIREN
    # backbone; the decoder's output kept alive while training (leaky); the blend.
    "suica-siren": _variant(model_preset="paper", backbone="siren"),
    "suica-leaky": _variant(model_preset="paper", backbone="siren", decoder_activation="leaky"),
    "suica-knn": _variant(
        model_preset="paper", backbone="siren", decoder_activation="leaky", blend="knn"
    ),
}
