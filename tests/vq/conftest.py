"""Seeded synthetic transcript tables for the VQ-VAE tests (no files, no network)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch


def make_transcripts(
    n_cells: int = 40,
    n_genes: int = 6,
    extent: float = 64.0,
    per_cell: int = 30,
    background: int = 60,
    seed: int = 0,
) -> pd.DataFrame:
    """Cells of two types (left/right half) whose molecules scatter around their centroid."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    cx = rng.uniform(2, extent - 2, n_cells)
    cy = rng.uniform(2, extent - 2, n_cells)
    kind = (cx > extent / 2).astype(int)
    half = n_genes // 2
    rows = []
    for c in range(n_cells):
        probs = np.full(n_genes, 0.2 / n_genes)
        sl = slice(0, half) if kind[c] == 0 else slice(half, n_genes)
        probs[sl] += 0.8 / half
        g = rng.choice(n_genes, per_cell, p=probs / probs.sum())
        r = rng.normal(0, 1.5, (per_cell, 2))
        nuc = np.hypot(r[:, 0], r[:, 1]) < 1.2
        for k in range(per_cell):
            rows.append((genes[g[k]], cx[c] + r[k, 0], cy[c] + r[k, 1], f"cell{c}", int(nuc[k])))
    for _ in range(background):
        rows.append(
            (
                genes[rng.integers(n_genes)],
                rng.uniform(0, extent),
                rng.uniform(0, extent),
                None,
                0,
            )
        )
    df = pd.DataFrame(rows, columns=["gene", "x", "y", "cell_id", "overlaps_nucleus"])
    df["x"] = df["x"].clip(0, extent - 1e-6)
    df["y"] = df["y"].clip(0, extent - 1e-6)
    df["z"] = 0.0
    df["gene"] = pd.Categorical(df["gene"], categories=genes)
    df["cell_id"] = df["cell_id"].astype("string")
    df["overlaps_nucleus"] = df["overlaps_nucleus"].astype(bool)
    return df[["gene", "x", "y", "z", "cell_id", "overlaps_nucleus"]]


@pytest.fixture(scope="session")
def transcripts() -> pd.DataFrame:
    return make_transcripts()


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is fastest, and the test machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
