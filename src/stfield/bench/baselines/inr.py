"""Vanilla INRs straight to genes: FFN, SIREN and hash grid map coordinates to expression.

No autoencoder, no graph, no Dice — the baselines SUICA's paper compares against (and its
"vanilla INR" ablation). Same backbones as SUICA (``stfield.models.backbones``), ReLU output,
MSE on the expression.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..._errors import input_error
from ...models.backbones import make_backbone
from ...train.losses import suica_decoder_loss
from ._torch import TorchBaseline


class VanillaINR(TorchBaseline):
    """Coordinates → genes with one backbone.

    Parameters
    ----------
    backbone
        ``"ffn"``, ``"siren"`` or ``"hashgrid"`` (any name in ``BACKBONES``).
    backbone_kwargs
        Options of the backbone (width, depth, scale...); its defaults otherwise, the same
        defaults SUICA uses.
    loss
        ``"mse"`` (vanilla) or ``"suica"``: MSE over non-zeros + L1 + ``dice_weight``·Dice —
        SUICA without its autoencoder (the ``suica-noae`` ablation).
    epochs, lr, batch_size, seed, accelerator, progress
        See :class:`~stfield.bench.baselines._torch.TorchBaseline`. Defaults follow SUICA's INR
        stage (full-batch steps, 1,000 epochs) with Adam at ``lr``.
    """

    def __init__(
        self,
        backbone: str = "ffn",
        backbone_kwargs: dict[str, Any] | None = None,
        epochs: int = 1000,
        lr: float = 1e-3,
        batch_size: int | None = None,
        loss: str = "mse",
        dice_weight: float = 0.01,
        **kwargs: Any,
    ) -> None:
        self.name = backbone
        super().__init__(epochs=epochs, lr=lr, batch_size=batch_size, **kwargs)
        if loss not in ("mse", "suica"):
            raise input_error(f"unknown loss {loss!r}", "loss", "use 'mse' or 'suica'")
        self.backbone = backbone
        self.backbone_kwargs = dict(backbone_kwargs or {})
        self.loss = loss
        self.dice_weight = dice_weight

    def _build(self, n_genes: int, coord_dim: int) -> nn.Module:
        return nn.Sequential(
            make_backbone(self.backbone, coord_dim, n_genes, **self.backbone_kwargs), nn.ReLU()
        )

    def _loss(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.loss == "suica":  # SUICA's reconstruction loss without its autoencoder
            return suica_decoder_loss(self.net_(c), x, self.dice_weight)
        return nn.functional.mse_loss(self.net_(c), x)

    def _forward_coords(self, c: torch.Tensor) -> torch.Tensor:
        return self.net_(c)


def ffn(**kwargs: Any) -> VanillaINR:
    """FFN (Gaussian Fourier features + MLP) → genes."""
    return VanillaINR("ffn", **kwargs)


def siren(**kwargs: Any) -> VanillaINR:
    """SIREN (sine activations, w0 = 30) → genes."""
    return VanillaINR("siren", **kwargs)


def hashgrid(**kwargs: Any) -> VanillaINR:
    """Multi-resolution hash grid (NGP-style, pure torch) → genes."""
    return VanillaINR("hashgrid", **kwargs)
