"""STAGE (Li et al., NAR 2024), re-implemented: an autoencoder whose 2-D latent is supervised to
equal the spot coordinates, so its decoder generates expression at any new coordinate.

Encoder genes → 1000 → 500 → 50 → 10 → 2 (BatchNorm + ReLU between), mirrored decoder with ReLU
output; the encoder reads ``log1p`` of the input, the decoder outputs the input's scale. Loss:
reconstruction MSE + L1, latent-to-coordinate L1 + sliced-Wasserstein distance
between the latent and coordinate point clouds. Adam 1e-3, batch 512.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._torch import TorchBaseline


def _mlp(dims: Sequence[int], final_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(b), nn.ReLU()]
    if final_relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def sliced_wasserstein(
    a: torch.Tensor,
    b: torch.Tensor,
    n_projections: int = 64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Squared sliced-Wasserstein distance between two equal-size point clouds.

    Written here because it is five lines of torch; the libraries that offer it (POT) would be
    a heavy dependency for one function.
    """
    theta = torch.randn(a.shape[1], n_projections, generator=generator, device="cpu").to(a)
    theta = theta / theta.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ theta, dim=0)
    pb, _ = torch.sort(b @ theta, dim=0)
    return torch.mean((pa - pb) ** 2)


class _STAGENet(nn.Module):
    def __init__(self, n_genes: int, hidden: Sequence[int], coord_dim: int) -> None:
        super().__init__()
        dims = [n_genes, *hidden, coord_dim]
        self.encoder = _mlp(dims, final_relu=False)
        self.decoder = _mlp(dims[::-1], final_relu=True)


class STAGE(TorchBaseline):
    """STAGE baseline.

    Parameters
    ----------
    hidden
        Encoder widths between genes and the 2-D latent (reference: 1000, 500, 50, 10).
    latent_weight
        Weight of the latent-to-coordinate losses relative to reconstruction.
    n_projections
        Random directions of the sliced-Wasserstein term.
    epochs, lr, batch_size, seed, accelerator, progress
        See :class:`~stfield.bench.baselines._torch.TorchBaseline` (reference: Adam 1e-3,
        batch 512; STAGE trains "until convergence": 1,000 epochs by default).
    """

    name = "stage"

    def __init__(
        self,
        hidden: Sequence[int] = (1000, 500, 50, 10),
        latent_weight: float = 1.0,
        n_projections: int = 64,
        epochs: int = 1000,
        lr: float = 1e-3,
        batch_size: int | None = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(epochs=epochs, lr=lr, batch_size=batch_size, **kwargs)
        self.hidden = tuple(hidden)
        self.latent_weight = latent_weight
        self.n_projections = n_projections

    def _build(self, n_genes: int, coord_dim: int) -> nn.Module:
        self._gen = torch.Generator().manual_seed(self.seed)
        return _STAGENet(n_genes, self.hidden, coord_dim)

    def _loss(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        net: _STAGENet = self.net_  # type: ignore[assignment]
        z = net.encoder(torch.log1p(x))
        recon = net.decoder(z)
        loss_rec = nn.functional.mse_loss(recon, x) + nn.functional.l1_loss(recon, x)
        loss_lat = nn.functional.l1_loss(z, c) + sliced_wasserstein(
            z, c, self.n_projections, self._gen
        )
        return loss_rec + self.latent_weight * loss_lat

    def _forward_coords(self, c: torch.Tensor) -> torch.Tensor:
        return self.net_.decoder(c)  # type: ignore[union-attr,operator]
