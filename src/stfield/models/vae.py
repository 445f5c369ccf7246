"""Plain convolutional VAE baseline for rasterised transcript tiles (paper §4, DESIGN §4.6).

A mirrored encoder-decoder with three convolutional blocks each (4x4 stride-2 convolutions,
BatchNorm, ReLU), a Gaussian latent map and a sigmoid output; trained on MSE + KL as in the paper.
It takes the same input tensors and returns the same :class:`~stfield.models.hvqvae.ModelOutput`
as :class:`~stfield.models.hvqvae.HVQVAE`, so the training loop and benchmark harness treat both
alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._errors import input_error
from .hvqvae import OUTPUT_BIAS, ModelOutput

KIND = "conv_vae"


@dataclass
class ConvVAEConfig:
    """Architecture of :class:`ConvVAE`."""

    in_channels: int
    out_channels: int
    hidden: int = 64
    latent: int = 16
    n_blocks: int = 3
    kl_weight: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "hidden", "latent", "n_blocks"):
            if int(getattr(self, name)) < 1:
                raise input_error(f"{name} must be >= 1, got {getattr(self, name)}", name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConvVAE(nn.Module):
    """Convolutional VAE: ``n_blocks`` stride-2 blocks down, a latent map, mirrored blocks up."""

    objective = "vae"

    def __init__(self, config: ConvVAEConfig) -> None:
        super().__init__()
        self.config = c = config
        enc: list[nn.Module] = [nn.Conv2d(c.in_channels, c.hidden, 1)]
        for _ in range(c.n_blocks):
            enc += [
                nn.Conv2d(c.hidden, c.hidden, 4, stride=2, padding=1),
                nn.BatchNorm2d(c.hidden),
                nn.ReLU(inplace=True),
            ]
        self.encoder = nn.Sequential(*enc)
        self.to_stats = nn.Conv2d(c.hidden, 2 * c.latent, 1)
        dec: list[nn.Module] = [nn.Conv2d(c.latent, c.hidden, 1)]
        for _ in range(c.n_blocks):
            dec += [
                nn.ConvTranspose2d(c.hidden, c.hidden, 4, stride=2, padding=1),
                nn.BatchNorm2d(c.hidden),
                nn.ReLU(inplace=True),
            ]
        out = nn.Conv2d(c.hidden, c.out_channels, 1)
        nn.init.constant_(out.bias, OUTPUT_BIAS)
        dec.append(out)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: Tensor) -> ModelOutput:
        side = 2**self.config.n_blocks
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[-1] % side:
            raise input_error(
                f"expected (B, {self.config.in_channels}, I, I) with I divisible by {side}, "
                f"got {tuple(x.shape)}",
                "ConvVAE input",
            )
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        logvar = logvar.clamp(-10.0, 10.0)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        recon = torch.sigmoid(self.decoder(z))
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        return ModelOutput(recon=recon, aux_loss=kl * self.config.kl_weight, codes=None)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
