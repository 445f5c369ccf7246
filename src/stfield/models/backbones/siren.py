"""SIREN: sine-activated MLP with the initialisation of Sitzmann et al. (2020)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._base import Backbone


class SineLayer(nn.Module):
    """``sin(w0 · (Wx + b))`` with Sitzmann's uniform initialisation.

    First layer: ``W ~ U(-1/in, 1/in)``; later layers: ``W ~ U(-sqrt(6/in)/w0, sqrt(6/in)/w0)``,
    which keeps pre-activations of ``w0 · Wx`` distributed like those of the first layer.
    """

    def __init__(self, in_dim: int, out_dim: int, w0: float, is_first: bool) -> None:
        super().__init__()
        self.w0 = float(w0)
        self.linear = nn.Linear(in_dim, out_dim)
        bound = 1.0 / in_dim if is_first else math.sqrt(6.0 / in_dim) / self.w0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * self.linear(x))


class SIREN(Backbone):
    """Sinusoidal representation network.

    Parameters
    ----------
    in_dim, out_dim
        Coordinate dimension and output dimension.
    width, depth
        Hidden width and number of hidden sine layers (the first sine layer included).
    w0
        Angular frequency of the first layer (30 in the paper and in Sitzmann et al.).
    w0_hidden
        Frequency factor of later layers (30, as Sitzmann et al.).
    """

    name = "siren"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 256,
        depth: int = 3,
        w0: float = 30.0,
        w0_hidden: float = 30.0,
    ) -> None:
        super().__init__(in_dim, out_dim)
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1, got {depth}, {width}")
        self.hparams = {
            "width": int(width),
            "depth": int(depth),
            "w0": float(w0),
            "w0_hidden": float(w0_hidden),
        }
        layers: list[nn.Module] = [SineLayer(in_dim, width, w0, is_first=True)]
        for _ in range(depth - 1):
            layers.append(SineLayer(width, width, w0_hidden, is_first=False))
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(width, out_dim)
        bound = math.sqrt(6.0 / width) / float(w0_hidden)
        with torch.no_grad():
            self.head.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))
