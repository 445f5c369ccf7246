"""Fixtures of the SUICA tests (scoped to tests/suica).

Torch is limited to one thread while these tests run (and restored afterwards): the development
machines are shared.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from anndata import AnnData
from suica_helpers import QUICK_FIT, TINY, make_field


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def field() -> tuple[AnnData, np.ndarray]:
    return make_field()


@pytest.fixture(scope="session")
def split(field) -> tuple[np.ndarray, np.ndarray]:
    adata, _ = field
    perm = np.random.default_rng(1).permutation(adata.n_obs)
    return np.sort(perm[80:]), np.sort(perm[:80])


@pytest.fixture(scope="session")
def fitted(field, split):
    """A SUICA fitted on the training spots (shared by several tests; do not mutate)."""
    from stfield.models.suica import SUICA

    adata, _ = field
    train, _ = split
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = SUICA("ffn", seed=0, **TINY)
        model.fit(
            adata.X[train],
            adata.obsm["spatial"][train],
            gene_names=list(adata.var_names),
            progress=False,
            **QUICK_FIT,
        )
    finally:
        torch.set_num_threads(before)
    return model
