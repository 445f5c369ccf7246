"""Loss functions of the SUICA stages (named precisely; all return a scalar tensor)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l1_mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean|pred − target| + mean(pred − target)²`` (the reference's stage-2 embedding loss)."""
    diff = pred - target
    return diff.abs().mean() + diff.pow(2).mean()


def mse_nonzero_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``target > 0`` (0 when there are none)."""
    mask = target > 0
    n = mask.sum()
    if int(n) == 0:
        return pred.sum() * 0.0
    return ((pred - target).pow(2) * mask).sum() / n


def dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss between ``s = tanh(pred)`` and the non-zero map ``[target > 0]``.

    ``1 − (2 Σ s·[y>0] + eps) / (Σ s + Σ [y>0] + eps)``, as in the SUICA paper (eq. 3). With a
    ReLU output, ``s`` lies in ``[0, 1)`` and acts as a pseudo-probability of being non-zero.
    """
    s = torch.tanh(pred)
    y = (target > 0).to(s.dtype)
    return 1.0 - (2.0 * (s * y).sum() + eps) / (s.sum() + y.sum() + eps)


def suica_decoder_loss(
    pred: torch.Tensor, target: torch.Tensor, dice_weight: float = 0.01
) -> torch.Tensor:
    """Stage-3 loss: MSE over non-zero targets + L1 over all entries + ``dice_weight`` · Dice."""
    loss = mse_nonzero_loss(pred, target) + F.l1_loss(pred, target)
    if dice_weight:
        loss = loss + dice_weight * dice_loss(pred, target)
    return loss


__all__ = ["dice_loss", "l1_mse_loss", "mse_nonzero_loss", "suica_decoder_loss"]
