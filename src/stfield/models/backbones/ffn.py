"""Fourier feature network (FFN): Gaussian random Fourier features followed by an MLP."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._base import Backbone

_ACTIVATIONS = ("relu", "none")


class FourierFeatures(nn.Module):
    """``x -> [sin(2π xB), cos(2π xB)]`` with a fixed ``B ~ N(0, scale²)`` of shape (in, mapping).

    ``B`` is a buffer: it is drawn from torch's global generator at construction (seed first) and
    saved with the weights, so a reloaded model computes the same features.
    """

    def __init__(self, in_dim: int, mapping_size: int = 256, scale: float = 10.0) -> None:
        super().__init__()
        if mapping_size < 1:
            raise ValueError(f"mapping_size must be >= 1, got {mapping_size}")
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.register_buffer("B", torch.randn(in_dim, mapping_size) * float(scale))
        self.out_dim = 2 * mapping_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = (2.0 * math.pi) * (x @ self.B.to(x.dtype))
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class FFN(Backbone):
    """Gaussian Fourier features (Tancik et al. 2020) + MLP.

    Parameters
    ----------
    in_dim, out_dim
        Coordinate dimension (2 or 3) and output dimension (the embedding size).
    mapping_size
        Number of random frequencies; the features have ``2 * mapping_size`` channels.
    scale
        Standard deviation of the frequencies ``B`` (paper: 10). :class:`~stfield.models.SUICA`
        also accepts ``"auto"`` (see :func:`nyquist_scale`).
    width, depth
        Hidden width and number of hidden layers.
    activation
        ``"relu"`` between hidden layers, or ``"none"``: the published SUICA code stacks its hidden
        linear layers without activations (the network is then linear in the Fourier features).
    """

    name = "ffn"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        mapping_size: int = 256,
        scale: float = 10.0,
        width: int = 2048,
        depth: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__(in_dim, out_dim)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1, got {depth}, {width}")
        self.hparams = {
            "mapping_size": int(mapping_size),
            "scale": float(scale),
            "width": int(width),
            "depth": int(depth),
            "activation": activation,
        }
        self.features = FourierFeatures(in_dim, mapping_size, scale)
        layers: list[nn.Module] = []
        dim = self.features.out_dim
        for _ in range(depth):
            layers.append(nn.Linear(dim, width))
            if activation == "relu":
                layers.append(nn.ReLU())
            dim = width
        layers.append(nn.Linear(dim, out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(x))


def nyquist_scale(coords: np.ndarray, fraction: float = 0.25, max_points: int = 20000) -> float:
    """A data-aware Fourier scale: ``fraction`` × the sampling Nyquist frequency of the spots.

    ``coords`` are normalised coordinates (as the model sees them). With ``d`` the median distance
    from a spot to its nearest neighbour, spots sample frequencies up to ``1 / (2d)`` cycles per
    unit; frequencies ``B ~ N(0, scale²)`` far above that can only interpolate noise between
    spots. The paper's scale 10 suits dense slices (Stereo-seq, d ≈ 0.005); on a 10 µm Xenium
    bin grid (d ≈ 0.05) it sits at the Nyquist limit itself. A random subset of ``max_points``
    spots is used for the distance.
    """
    from sklearn.neighbors import NearestNeighbors

    pts = np.asarray(coords, dtype=np.float64)
    if pts.shape[0] < 2:
        return 10.0
    if pts.shape[0] > max_points:
        pts = pts[np.random.default_rng(0).choice(pts.shape[0], max_points, replace=False)]
    dist, _ = NearestNeighbors(n_neighbors=2).fit(pts).kneighbors(pts)
    positive = dist[:, 1][dist[:, 1] > 0]
    if positive.size == 0:
        return 10.0
    return float(fraction / (2.0 * np.median(positive)))
