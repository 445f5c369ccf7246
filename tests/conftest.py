"""Shared, seeded synthetic fixtures (real-data fixtures live under tests/data/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData


def make_smooth_slice(
    n_side: int = 20, n_genes: int = 30, seed: int = 0, spacing: float = 10.0
) -> AnnData:
    """Spots on a grid; gene rates vary smoothly in space; Poisson counts, mostly zeros."""
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(n_side), np.arange(n_side))
    coords = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64) * spacing
    u = coords / (spacing * n_side)
    freq = rng.uniform(0.5, 2.0, size=(n_genes, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(n_genes, 2))
    rates = np.exp(
        1.2 * np.sin(2 * np.pi * u[:, :1] * freq[:, 0] + phase[:, 0])
        + 1.2 * np.cos(2 * np.pi * u[:, 1:] * freq[:, 1] + phase[:, 1])
        - 1.6
    )
    counts = rng.poisson(rates).astype(np.float32)
    adata = AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame(index=[f"spot{i}" for i in range(coords.shape[0])]),
        var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]),
    )
    adata.obsm["spatial"] = coords
    adata.uns["stfield"] = {"spatial_unit": "um"}
    return adata


@pytest.fixture
def smooth_slice() -> AnnData:
    return make_smooth_slice()


@pytest.fixture
def slice_factory():
    """``make_smooth_slice`` itself, for tests that need another size."""
    return make_smooth_slice


@pytest.fixture
def transcripts_table() -> pd.DataFrame:
    """A small canonical transcripts table with a hand-checkable layout."""
    rng = np.random.default_rng(1)
    n = 5000
    genes = rng.choice(["ACTB", "EPCAM", "KRT8", "BLANK_0001", "PTPRC"], size=n)
    return pd.DataFrame(
        {
            "gene": pd.Categorical(genes),
            "x": rng.uniform(0, 200, n),
            "y": rng.uniform(0, 100, n),
            "z": rng.uniform(0, 10, n),
            "cell_id": pd.array(rng.integers(0, 50, n).astype(str), dtype="string"),
        }
    )
