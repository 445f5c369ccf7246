"""Shared helpers of the SUICA tests: a seeded zero-inflated smooth field, tiny settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

#: Tiny architecture used by the tests (the paper's widths are the library defaults).
TINY = {
    "gae_hidden": (128, 64, 32),
    "latent_dim": 16,
    "backbone_kwargs": {"width": 128, "depth": 2, "scale": 1.0},
    "accelerator": "cpu",
}
#: Short training for the tests.
QUICK_FIT = {"preset": "fast", "epochs_gae": 100, "epochs_inr": 300, "epochs_decoder": 300}


def make_field(n_side: int = 20, n_genes: int = 30, seed: int = 0) -> tuple[AnnData, np.ndarray]:
    """Spots on a 10 µm grid; each gene is "on" in smooth regions, Poisson counts, ~67% zeros.

    Returns the slice and the true rates.
    """
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(n_side), np.arange(n_side))
    coords = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64) * 10.0
    u = coords / coords.max()
    freq = rng.uniform(0.4, 1.2, (n_genes, 2))
    phase = rng.uniform(0, 2 * np.pi, (n_genes, 2))
    field = np.sin(2 * np.pi * u[:, None, 0] * freq[:, 0] + phase[:, 0]) + np.cos(
        2 * np.pi * u[:, None, 1] * freq[:, 1] + phase[:, 1]
    )
    rate = 0.05 + 4.0 / (1.0 + np.exp(-4.0 * (field - 1.1)))
    counts = rng.poisson(rate).astype(np.float32)
    adata = AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame(index=[f"spot{i}" for i in range(coords.shape[0])]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )
    adata.obsm["spatial"] = coords
    return adata, rate
