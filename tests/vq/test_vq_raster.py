"""Tiles, rasteriser, centroids and augmentation (issue 5, item 1)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch

from stfield.data.raster import (
    RasterConfig,
    TileDataset,
    TileIndex,
    estimate_centroids,
    positional_encoding,
)


def _table(rows, cell=None):
    df = pd.DataFrame(rows, columns=["gene", "x", "y"])
    df["gene"] = pd.Categorical(df["gene"], categories=["A", "B", "C"])
    df["z"] = 0.0
    df["cell_id"] = pd.array(cell if cell is not None else [None] * len(df), dtype="string")
    return df


def test_molecules_land_on_the_right_pixels():
    # pixel 0.5 µm, tile 8 px = 4 µm; the anchor at (0, 0) fixes the first tile's origin
    rows = [
        ("A", 0.0, 0.0),  # row 0, col 0
        ("B", 2.6, 0.1),  # row 0, col 5
        ("A", 1.1, 3.4),  # row 6, col 2
        ("C", 3.9, 3.99),  # row 7, col 7
        ("B", 4.2, 0.3),  # second tile (x >= 4), row 0, col 0
    ]
    idx = TileIndex(_table(rows), RasterConfig(pixel_size=0.5, tile=8, n_freqs=0))
    assert len(idx) == 2
    np.testing.assert_allclose(idx.origins, [[0.0, 0.0], [4.0, 0.0]])
    img = idx.rasterise(0)
    assert img.shape == (3 + 1 + 2, 8, 8)
    expect = np.zeros((3, 8, 8), np.float32)
    expect[0, 0, 0] = expect[1, 0, 5] = expect[0, 6, 2] = expect[2, 7, 7] = 1
    np.testing.assert_array_equal(img[:3], expect)
    assert img[3:].sum() == 0  # no cells, no centroid channels
    img1 = idx.rasterise(1)
    assert img1[1, 0, 0] == 1 and img1[:3].sum() == 1


def test_counts_mode_caps_and_scales():
    rows = [("A", 0.1, 0.1)] * 3 + [("B", 1.2, 1.2)] * 7
    idx = TileIndex(_table(rows), RasterConfig(pixel_size=1, tile=4, mode="counts", count_cap=4))
    img = idx.rasterise(0)
    assert img[0, 0, 0] == pytest.approx(0.75)
    assert img[1, 1, 1] == pytest.approx(1.0)  # 7 molecules, capped at 4 -> 1
    assert img[:3].sum() == pytest.approx(1.75)


def test_encodings_only_at_centroid_pixels():
    rows = [("A", 0.0, 0.0), ("B", 7.9, 7.9), ("C", 3.0, 5.0)]
    cells = pd.DataFrame({"cell_id": ["c1", "c2"], "x": [1.25, 6.5], "y": [2.75, 0.5]})
    cfg = RasterConfig(pixel_size=1.0, tile=8, n_freqs=6)
    idx = TileIndex(_table(rows), cfg, cells=cells)
    img = idx.rasterise(0)
    t = 3
    mask = img[t]
    assert mask.sum() == 2 and mask[2, 1] == 1 and mask[0, 6] == 1
    extra = img[t + 1 :]
    assert extra.shape[0] == 2 + 4 * 6
    off = np.abs(extra).sum(0) * (mask == 0)
    assert off.sum() == 0, "encodings must be zero away from centroids"
    p = np.array([[2 * 1.25 / 8 - 1, 2 * 2.75 / 8 - 1], [2 * 6.5 / 8 - 1, 2 * 0.5 / 8 - 1]])
    np.testing.assert_allclose(extra[:2, 2, 1], p[0], atol=1e-6)
    np.testing.assert_allclose(extra[:2, 0, 6], p[1], atol=1e-6)
    pe = positional_encoding(p, 6)
    np.testing.assert_allclose(extra[2:, 2, 1], pe[0], atol=1e-6)
    np.testing.assert_allclose(extra[2:, 0, 6], pe[1], atol=1e-6)
    # paper eq. 2 ordering for the first frequency: sin x, sin y, cos x, cos y
    np.testing.assert_allclose(pe[0, :4], np.r_[np.sin(np.pi * p[0]), np.cos(np.pi * p[0])])


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_augmentation_is_consistent_across_channels(transcripts, flip, k):
    cfg = RasterConfig(pixel_size=1.0, tile=32, n_freqs=3)
    idx = TileIndex(transcripts, cfg)
    t = idx.n_genes
    i = int(np.argmax([idx.cells(j)[0].size for j in range(len(idx))]))
    base = torch.from_numpy(idx.rasterise(i))
    aug = torch.from_numpy(idx.rasterise(i, flip=flip, k=k))
    ref = torch.flip(base, dims=[-1]) if flip else base
    ref = torch.rot90(ref, k, dims=(-2, -1))
    # genes and centroid mask move exactly like an image
    torch.testing.assert_close(aug[: t + 1], ref[: t + 1])
    mask = aug[t] > 0
    assert mask.sum() > 0
    # encodings are present only at the (moved) centroids
    assert torch.count_nonzero(aug[t + 1 :, ~mask]) == 0
    # ... and describe the moved coordinates: flip negates x, a quarter turn maps (x, y) -> (y, -x)
    p_ref = ref[t + 1 : t + 3, mask].T.numpy()
    p_aug = aug[t + 1 : t + 3, mask].T.numpy()
    p = np.asarray(base[t + 1 : t + 3].numpy())
    rows, cols = np.nonzero(base[t].numpy())
    p = p[:, rows, cols].T
    if flip:
        p = np.stack([-p[:, 0], p[:, 1]], 1)
    for _ in range(k):
        p = np.stack([p[:, 1], -p[:, 0]], 1)
    # same set of transformed coordinates (order by pixel position)
    np.testing.assert_allclose(np.sort(p_aug, 0), np.sort(p, 0), atol=1e-5)
    assert not (k or flip) or not np.allclose(np.sort(p_ref, 0), np.sort(p, 0))
    pe = positional_encoding(p_aug, 3)
    np.testing.assert_allclose(aug[t + 3 :, mask].T.numpy(), pe, atol=1e-5)


def test_centroids_from_nucleus_molecules_with_fallback():
    df = _table(
        [("A", 0, 0), ("A", 2, 0), ("B", 10, 10), ("C", 5, 5), ("C", 7, 7)],
        cell=["a", "a", "a", "b", "b"],
    )
    df["overlaps_nucleus"] = [1, 1, 0, 0, 0]
    cent = estimate_centroids(df)
    assert cent.loc["a", "x"] == pytest.approx(1.0) and cent.loc["a", "source"] == "nucleus"
    assert cent.loc["b", "x"] == pytest.approx(6.0) and cent.loc["b", "source"] == "all"
    assert cent.loc["a", "n_molecules"] == 3


def test_sliding_windows_and_fov_tiles(transcripts):
    cfg = RasterConfig(pixel_size=1.0, tile=32, n_freqs=0)
    plain = TileIndex(transcripts, cfg)
    strided = TileIndex(transcripts, cfg, stride=16)
    assert len(strided) > len(plain) >= 4
    assert plain.tile_molecules.sum() == len(transcripts)  # non-overlapping tiles: each once
    df = transcripts.copy()
    df["fov"] = np.where(df["x"] < 32, "f0", "f1")
    by_fov = TileIndex(df, cfg, by="fov")
    assert set(by_fov.fovs) == {"f0", "f1"}
    assert by_fov.tile_molecules.sum() == len(df)


def test_nothing_rasterises_the_whole_slide():
    # 100 mm wide slide at 0.1 µm/px would be 1e6 x 1e6 pixels; a tile index must not care
    rng = np.random.default_rng(0)
    n = 2000
    df = _table(
        list(
            zip(
                rng.choice(["A", "B", "C"], n),
                rng.uniform(0, 1e5, n),
                rng.uniform(0, 1e5, n),
                strict=True,
            )
        )
    )
    cfg = RasterConfig(pixel_size=0.1, tile=32, n_freqs=2)
    tracemalloc.start()
    idx = TileIndex(df, cfg)
    ds = TileDataset(idx, augment=True, seed=0)
    x = ds[0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert tuple(x.shape) == (3 + 1 + 2 + 8, 32, 32)
    assert len(idx) <= n  # only non-empty tiles are indexed
    assert peak < 30e6


def test_bad_input_fails_clearly(transcripts):
    with pytest.raises(ValueError, match="pixel_size"):
        RasterConfig(pixel_size=0)
    with pytest.raises(ValueError, match="fov"):
        TileIndex(transcripts, RasterConfig(tile=16), by="fov")
    with pytest.raises(ValueError, match="missing column"):
        TileIndex(transcripts.drop(columns="x"), RasterConfig(tile=16))
    with pytest.raises(ValueError, match="no molecule"):
        TileIndex(transcripts, RasterConfig(tile=16), genes=["nope"])
