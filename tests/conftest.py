"""Shared, seeded synthetic fixtures (real-data fixtures live under tests/data/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from slices import make_smooth_slice


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
