"""Multi-resolution hash-grid encoding (Müller et al. 2022) + small MLP, in plain torch.

No custom CUDA kernels: the same code runs on CPU and GPU. Levels whose dense grid fits into the
table are indexed directly (no collisions); finer levels use the spatial hash
``xor_k(i_k · π_k) mod T`` with the primes of the original paper.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from .._base import Backbone

_PRIMES = (1, 2654435761, 805459861)


class HashGrid(Backbone):
    """Hash-grid backbone.

    Parameters
    ----------
    in_dim, out_dim
        Coordinate dimension (2 or 3) and output dimension.
    n_levels
        Number of resolution levels.
    features_per_level
        Feature channels stored per table entry.
    log2_hashmap_size
        Each level holds at most ``2**log2_hashmap_size`` entries.
    base_resolution, max_resolution
        Grid resolution (cells per unit of the ``[0, 1]`` cube) of the coarsest and finest level;
        the levels grow geometrically in between.
    width, depth
        Hidden width and number of hidden ReLU layers of the MLP after the encoding.

    Coordinates outside ``[-1, 1]`` are clamped to the border cell.
    """

    name = "hashgrid"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        n_levels: int = 16,
        features_per_level: int = 2,
        log2_hashmap_size: int = 15,
        base_resolution: int = 16,
        max_resolution: int = 512,
        width: int = 64,
        depth: int = 2,
    ) -> None:
        super().__init__(in_dim, out_dim)
        if in_dim > len(_PRIMES):
            raise ValueError(f"hash grid supports up to {len(_PRIMES)} dimensions, got {in_dim}")
        if n_levels < 1 or features_per_level < 1 or depth < 0 or width < 1:
            raise ValueError("n_levels, features_per_level and width must be >= 1, depth >= 0")
        if not 1 <= base_resolution <= max_resolution:
            raise ValueError(
                f"need 1 <= base_resolution <= max_resolution, got {base_resolution}, {max_resolution}"
            )
        self.hparams = {
            "n_levels": int(n_levels),
            "features_per_level": int(features_per_level),
            "log2_hashmap_size": int(log2_hashmap_size),
            "base_resolution": int(base_resolution),
            "max_resolution": int(max_resolution),
            "width": int(width),
            "depth": int(depth),
        }
        table_size = 2 ** int(log2_hashmap_size)
        growth = (
            math.exp((math.log(max_resolution) - math.log(base_resolution)) / (n_levels - 1))
            if n_levels > 1
            else 1.0
        )
        self.resolutions = [
            math.floor(base_resolution * growth**level) for level in range(n_levels)
        ]
        self.dense_level = [(r + 1) ** in_dim <= table_size for r in self.resolutions]
        self.table_size = table_size
        self.tables = nn.Parameter(torch.empty(n_levels, table_size, features_per_level))
        with torch.no_grad():
            self.tables.uniform_(-1e-4, 1e-4)
        corners = torch.tensor(list(itertools.product((0, 1), repeat=in_dim)), dtype=torch.long)
        self.register_buffer("corners", corners, persistent=False)
        self.register_buffer(
            "primes", torch.tensor(_PRIMES[:in_dim], dtype=torch.long), persistent=False
        )
        layers: list[nn.Module] = []
        dim = n_levels * features_per_level
        for _ in range(depth):
            layers += [nn.Linear(dim, width), nn.ReLU()]
            dim = width
        layers.append(nn.Linear(dim, out_dim))
        self.mlp = nn.Sequential(*layers)

    def _level_index(self, cells: torch.Tensor, level: int) -> torch.Tensor:
        res = self.resolutions[level]
        if self.dense_level[level]:
            strides = torch.tensor(
                [(res + 1) ** k for k in range(self.in_dim)], device=cells.device, dtype=torch.long
            )
            return (cells * strides).sum(-1)
        hashed = cells[..., 0] * self.primes[0]
        for k in range(1, self.in_dim):
            hashed = torch.bitwise_xor(hashed, cells[..., k] * self.primes[k])
        return torch.remainder(hashed, self.table_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated per-level interpolated features, shape ``(n, n_levels · features)``."""
        unit = ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        feats = []
        for level, res in enumerate(self.resolutions):
            pos = unit * res
            base = torch.floor(pos).long().clamp(0, res - 1)
            frac = pos - base.to(pos.dtype)  # (n, d)
            cells = base[:, None, :] + self.corners[None]  # (n, 2^d, d)
            weights = torch.where(
                self.corners[None].bool(), frac[:, None, :], 1.0 - frac[:, None, :]
            )
            weights = weights.prod(-1)  # (n, 2^d)
            values = self.tables[level][self._level_index(cells, level)]  # (n, 2^d, F)
            feats.append((weights[..., None] * values).sum(1))
        return torch.cat(feats, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encode(x))
