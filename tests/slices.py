"""Seeded synthetic slices shared by tests (importable as ``from slices import ...``).

``conftest`` cannot be imported by name from test modules: every test folder may have its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def make_transcripts(n: int = 3000, seed: int = 0, extent: float = 128.0) -> pd.DataFrame:
    """A canonical transcripts table: 4 genes, uniform positions in ``[0, extent)`` µm, cells."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "gene": pd.Categorical(rng.choice(["ACTB", "EPCAM", "KRT8", "PTPRC"], size=n)),
            "x": rng.uniform(0, extent, n),
            "y": rng.uniform(0, extent, n),
            "cell_id": rng.integers(0, 40, n).astype(str),
        }
    )


def property_settings(default_examples: int):
    """Deterministic hypothesis settings shared by the property tests.

    ``STFIELD_PROPERTY_EXAMPLES=500`` raises the number of examples for a deeper search.
    """
    import os

    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get("STFIELD_PROPERTY_EXAMPLES", str(default_examples))),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
