"""Property tests for the tile index and rasteriser (issue #7, item 5).

Random small transcript tables (negative and large offsets, duplicate positions, molecules and
centroids exactly on tile borders and one ulp off them, a single molecule, many genes) are
tiled with :class:`stfield.data.raster.TileIndex`. Properties:

* non-overlapping windows (``stride == tile``) partition the molecules: over all tiles, the
  molecules returned by ``molecules(i)`` are exactly the input multiset, ``tile_molecules``
  agrees, and in ``"counts"`` mode the gene channels summed over all tiles give each gene's
  molecule count (with ``count_cap`` large enough that nothing saturates). Checked on an exact
  (dyadic) grid and for any pixel size/offset, and per field of view with ``by="fov"``;
* overlapping windows (``stride < tile``) lose no molecule, and every tile's molecules lie in it;
* ``"binary"`` mode is the clip of ``"counts"`` mode (same non-gene channels);
* flips and quarter turns move gene and mask channels exactly like an image (so per-channel
  sums are preserved) and transform the centroid coordinates consistently;
* the centroid channels are non-zero only at centroid pixels, which are exactly the pixels of
  the centroids lying inside the tile;
* ``genes=`` keeps exactly the molecules of the listed genes, in that channel order.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from slices import property_settings
from stfield.data.raster import RasterConfig, TileIndex

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*stfield expects µm:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*no cell_id column and no cells table:UserWarning"),
]

#: examples per property (STFIELD_PROPERTY_EXAMPLES=500 for a deeper search)
PROPS = property_settings(40)

# Exact grid: pixel sizes and offsets are dyadic, so every border x0 + i * tile_um is exact.
DYADIC_PIXELS = [0.25, 0.5, 1.0, 2.0]
DYADIC_OFFSETS = [0.0, -1024.0, 4096.5, -65536.25, 1e6]
# Any pixel size / offset: borders are rounded floats (Xenium 0.2125 µm, CosMx 0.12028 µm ...).
ANY_PIXELS = [*DYADIC_PIXELS, 0.1, 0.2125, 0.3, 1 / 3, 0.12028, 0.7]
ANY_OFFSETS = [*DYADIC_OFFSETS, 0.1, -98_765.4321, 123_456.789, 1e5 + 0.1]
GENES = [f"G{i}" for i in range(30)] + ["ACTB", "a,b", "µ-gene", "1"]


class Case:
    """A generated table, its raster configuration and the window stride."""

    def __init__(self, df: pd.DataFrame, config: RasterConfig, stride: int, cells) -> None:
        self.df, self.config, self.stride, self.cells = df, config, stride, cells

    @classmethod
    def on_x(cls, xs: list[float], pixel_size: float, tile: int) -> Case:
        """Molecules of one gene on the line y = 0 (counts mode, no cells)."""
        df = pd.DataFrame({"gene": pd.Categorical(["A"] * len(xs)), "x": xs, "y": 0.0, "z": 0.0})
        config = RasterConfig(pixel_size, tile, "counts", count_cap=len(xs), n_freqs=0)
        return cls(df, config, tile, None)

    def __repr__(self) -> str:  # shown by hypothesis for a failing example
        return (
            f"Case(config={self.config!r}, stride={self.stride},\n"
            f"df={self.df.to_dict(orient='list')!r},\n"
            f"cells={None if self.cells is None else self.cells.to_dict(orient='list')!r})"
        )


@st.composite
def raster_cases(
    draw: st.DrawFn,
    pixels: list[float] = ANY_PIXELS,
    offsets: list[float] = ANY_OFFSETS,
    mode: str = "counts",
    overlapping: bool = False,
    with_fov: bool = False,
) -> Case:
    ps = draw(st.sampled_from(pixels), label="pixel_size")
    tile = draw(st.integers(4, 10), label="tile")
    stride = draw(st.integers(1, tile - 1)) if overlapping else tile
    n = draw(st.integers(1, 40))
    cap = n if mode == "counts" else draw(st.integers(1, 5))  # cap = n: no pixel saturates
    config = RasterConfig(
        pixel_size=ps,
        tile=tile,
        mode=mode,
        count_cap=cap,
        n_freqs=draw(st.integers(0, 2)),
        include_coords=draw(st.booleans()),
    )
    x0, y0 = draw(st.sampled_from(offsets)), draw(st.sampled_from(offsets))
    size_um, stride_um = config.tile_um, stride * ps
    n_win = draw(st.integers(1, 3))

    def position() -> tuple[float, float]:
        kind = draw(st.sampled_from(["inside", "border", "border-end", "ulp"]))
        if kind == "inside":
            u = st.floats(0.0, n_win * size_um, allow_nan=False, exclude_max=True)
            return x0 + draw(u), y0 + draw(u)
        i, j = draw(st.integers(0, n_win)), draw(st.integers(0, n_win))
        # window origins exactly as the index computes them: x0 + i * stride (and + size)
        bx, by = x0 + np.int64(i) * stride_um, y0 + np.int64(j) * stride_um
        if kind == "border-end":
            bx, by = bx + size_um, by + size_um
        if kind == "ulp":
            bx = np.nextafter(bx, draw(st.sampled_from([-np.inf, np.inf])))
            by = np.nextafter(by, draw(st.sampled_from([-np.inf, np.inf])))
        return max(float(bx), x0), max(float(by), y0)

    n_pos = draw(st.integers(1, n))  # few positions -> duplicate positions
    pos = [(x0, y0)] + [position() for _ in range(n_pos - 1)]  # (x0, y0): the grid's origin
    picks = draw(st.lists(st.integers(0, n_pos - 1), min_size=n - 1, max_size=n - 1))
    xy = np.array([pos[0]] + [pos[k] for k in picks], dtype=np.float64)
    pool = GENES[: draw(st.integers(1, len(GENES)))]
    genes = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    df = pd.DataFrame(
        {
            "gene": pd.Categorical(genes, categories=sorted(set(genes))),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "z": 0.0,
        }
    )
    if with_fov:
        df["fov"] = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    cells = None
    n_cells = draw(st.integers(0, 6))
    if n_cells:
        cpos = [position() for _ in range(n_cells)]
        if draw(st.booleans()):  # a centroid left of / below every tile
            cpos[0] = (x0 - 3 * size_um, y0 - 0.5)
        cells = pd.DataFrame(
            {
                "cell_id": [f"c{k}" for k in range(n_cells)],
                "x": [p[0] for p in cpos],
                "y": [p[1] for p in cpos],
            }
        )
    return Case(df, config, stride, cells)


def molecule_rows(df: pd.DataFrame, extra: str | None = None) -> Counter:
    cols = [df["gene"].astype(str), df["x"], df["y"]] + ([df[extra]] if extra else [])
    return Counter(zip(*(c.tolist() for c in cols), strict=True))


def tiled_rows(idx: TileIndex, with_fov: bool = False) -> Counter:
    out: Counter = Counter()
    for i in range(len(idx)):
        gene, x, y = idx.molecules(i)
        assert len(gene) == idx.tile_molecules[i]
        for g, a, b in zip(gene.tolist(), x.tolist(), y.tolist(), strict=True):
            key = (idx.genes[g], a, b) + ((idx.fovs[i],) if with_fov else ())
            out[key] += 1
    return out


def summed_gene_counts(idx: TileIndex) -> np.ndarray:
    cfg, t = idx.config, idx.n_genes
    total = np.zeros(t, dtype=np.float64)
    for i in range(len(idx)):
        img = idx.rasterise(i)
        total += img[:t].sum(axis=(1, 2), dtype=np.float64) * cfg.count_cap
    return total


def assert_partition(case: Case, with_fov: bool = False) -> None:
    df = case.df
    idx = TileIndex(df, case.config, cells=case.cells, by="fov" if with_fov else "window")
    assert idx.n_molecules == len(df)
    got = tiled_rows(idx, with_fov)
    want = molecule_rows(df, "fov" if with_fov else None)
    assert got == want, (
        f"{len(df)} molecules, {sum(got.values())} in tiles; "
        f"in two tiles: {list((got - want).items())[:5]}; in none: {list((want - got).items())[:5]}"
    )
    per_gene = df["gene"].astype(str).value_counts()
    expected = np.array([per_gene.get(g, 0) for g in idx.genes], dtype=np.float64)
    np.testing.assert_allclose(summed_gene_counts(idx), expected, rtol=0, atol=1e-3)


@PROPS
@given(case=raster_cases(pixels=DYADIC_PIXELS, offsets=DYADIC_OFFSETS))
def test_tiles_partition_the_molecules_on_an_exact_grid(case: Case) -> None:
    assert_partition(case)


@PROPS
@given(case=raster_cases())
# windows of 0.4 µm from x0 = 0.1: the 3rd ends at (0.1 + 2 * 0.4) + 0.4 == 1.3 (excluded) but
# the 4th starts at 0.1 + 3 * 0.4 == 1.3000000000000003, so the molecule at 1.3 is in neither
@example(case=Case.on_x([0.1, 1.3], pixel_size=0.1, tile=4))
# from x0 = 10.0: the 3rd window ends at (10.0 + 2 * 0.4) + 0.4 == 11.200000000000001 and the
# 4th starts at 10.0 + 3 * 0.4 == 11.2, so the molecule at 11.2 is in both
@example(case=Case.on_x([10.0, 11.2], pixel_size=0.1, tile=4))
def test_tiles_partition_the_molecules_for_any_pixel_size(case: Case) -> None:
    """Same property with rounded float borders (non-dyadic pixel sizes, offsets far out)."""
    assert_partition(case)


@PROPS
@given(case=raster_cases(pixels=DYADIC_PIXELS, offsets=DYADIC_OFFSETS, with_fov=True))
def test_fov_tiles_partition_each_field_of_view(case: Case) -> None:
    assert_partition(case, with_fov=True)


@PROPS
@given(case=raster_cases(overlapping=True))
def test_overlapping_windows_lose_no_molecule(case: Case) -> None:
    idx = TileIndex(case.df, case.config, cells=case.cells, stride=case.stride)
    seen: Counter = Counter()
    for i in range(len(idx)):
        gene, x, y = idx.molecules(i)
        assert len(gene) == idx.tile_molecules[i] >= 1
        xmin, ymin, xmax, ymax = idx.bounds(i)
        assert ((x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)).all()
        seen.update(zip([idx.genes[g] for g in gene], x.tolist(), y.tolist(), strict=True))
    want = molecule_rows(case.df)
    assert set(seen) == set(want), f"never in a tile: {list(set(want) - set(seen))[:5]}"
    for key, k in want.items():  # duplicates travel together
        assert seen[key] % k == 0


@PROPS
@given(case=raster_cases(mode="binary"))
def test_binary_mode_is_the_clip_of_counts_mode(case: Case) -> None:
    cfg = case.config
    binary = TileIndex(case.df, cfg, cells=case.cells)
    counts_cfg = RasterConfig(**{**cfg.to_dict(), "mode": "counts"})
    counts = TileIndex(case.df, counts_cfg, cells=case.cells)
    t = binary.n_genes
    assert len(binary) == len(counts)
    for i in range(len(binary)):
        b, c = binary.rasterise(i), counts.rasterise(i)
        assert b.dtype == c.dtype == np.float32
        raw = np.rint(c[:t] * cfg.count_cap)  # counts capped at count_cap, scaled to [0, 1]
        np.testing.assert_array_equal(b[:t], np.clip(raw, 0, 1))
        np.testing.assert_array_equal(b[t:], c[t:])
        assert set(np.unique(b[:t]).tolist()) <= {0.0, 1.0}


def _move(img: np.ndarray, flip: bool, k: int) -> np.ndarray:
    """Horizontal flip then k counter-clockwise quarter turns (numpy, like torch.rot90)."""
    return np.rot90(np.flip(img, -1) if flip else img, k, axes=(-2, -1))


@PROPS
@given(
    case=raster_cases(),
    flip=st.booleans(),
    k=st.integers(0, 3),
)
def test_augmentation_moves_every_channel_consistently(case: Case, flip: bool, k: int) -> None:
    cfg = case.config
    idx = TileIndex(case.df, cfg, cells=case.cells)
    t = idx.n_genes
    for i in range(len(idx)):
        base, aug = idx.rasterise(i), idx.rasterise(i, flip=flip, k=k)
        ref = _move(base, flip, k)
        # genes and mask move exactly like an image: per-channel sums are preserved
        np.testing.assert_array_equal(aug[: t + 1], ref[: t + 1])
        np.testing.assert_array_equal(aug[: t + 1].sum(axis=(1, 2)), base[: t + 1].sum(axis=(1, 2)))
        mask = aug[t] > 0
        assert not np.any(aug[t + 1 :, ~mask]), "centroid channels set off a centroid pixel"
        if not cfg.include_coords or not mask.any():
            continue
        # coordinates at a moved centroid: flip negates x, a quarter turn maps (x, y) -> (y, -x)
        p = ref[t + 1 : t + 3, mask].astype(np.float64)  # base values, carried to the new pixel
        if flip:
            p = np.stack([-p[0], p[1]])
        for _ in range(k):
            p = np.stack([p[1], -p[0]])
        np.testing.assert_allclose(aug[t + 1 : t + 3, mask], p, atol=2e-6)
        # the encoding is recomputed from the moved coordinates (sin x, sin y, cos x, cos y)
        q = aug[t + 1 : t + 3, mask].astype(np.float64)
        for f in range(cfg.n_freqs):
            arg = (2.0**f) * np.pi * q
            enc = aug[t + 3 + 4 * f : t + 7 + 4 * f, mask]
            np.testing.assert_allclose(enc, np.concatenate([np.sin(arg), np.cos(arg)]), atol=1e-4)


@PROPS
@given(case=raster_cases())
def test_centroid_channels_only_at_centroid_pixels(case: Case) -> None:
    cfg = case.config
    n = cfg.tile
    idx = TileIndex(case.df, cfg, cells=case.cells)
    t = idx.n_genes
    cx = np.array([] if case.cells is None else case.cells["x"], dtype=np.float64)
    cy = np.array([] if case.cells is None else case.cells["y"], dtype=np.float64)
    for i in range(len(idx)):
        img = idx.rasterise(i)
        mask = img[t]
        assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
        assert not np.any(img[t + 1 :, mask == 0]), "centroid channels set off a centroid pixel"
        # independent: centroids inside the half-open tile, at floor((c - origin) / pixel)
        xmin, ymin, xmax, ymax = idx.bounds(i)
        inside = (cx >= xmin) & (cx < xmax) & (cy >= ymin) & (cy < ymax)
        col = np.clip(np.floor((cx[inside] - xmin) / cfg.pixel_size), 0, n - 1).astype(int)
        row = np.clip(np.floor((cy[inside] - ymin) / cfg.pixel_size), 0, n - 1).astype(int)
        want = set(zip(row.tolist(), col.tolist(), strict=True))
        got = set(zip(*(a.tolist() for a in np.nonzero(mask)), strict=True))
        assert got == want
        ids, r, c = idx.cells(i)
        assert len(ids) == int(inside.sum())
        assert set(zip(r.tolist(), c.tolist(), strict=True)) == want
        if cfg.include_coords and want:
            # tile-relative coordinates in [-1, 1) (up to float32 rounding)
            p = img[t + 1 : t + 3, mask > 0]
            assert (p >= -1 - 1e-6).all() and (p <= 1 + 1e-6).all()


@PROPS
@given(case=raster_cases(pixels=DYADIC_PIXELS, offsets=DYADIC_OFFSETS), data=st.data())
def test_gene_subset_keeps_exactly_the_listed_genes(case: Case, data: st.DataObject) -> None:
    df = case.df
    present = sorted(set(df["gene"].astype(str)))
    chosen = data.draw(st.lists(st.sampled_from([*present, "ABSENT"]), min_size=1, unique=True))
    per_gene = df["gene"].astype(str).value_counts()
    n_in = int(sum(per_gene.get(g, 0) for g in chosen))
    if n_in == 0:
        with pytest.raises(ValueError, match="no molecule"):
            TileIndex(df, case.config, genes=chosen, cells=case.cells)
        return
    idx = TileIndex(df, case.config, genes=chosen, cells=case.cells)
    assert idx.genes == chosen and idx.n_channels == case.config.n_channels(len(chosen))
    assert idx.n_molecules == n_in and idx.n_dropped == len(df) - n_in
    expected = np.array([per_gene.get(g, 0) for g in chosen], dtype=np.float64)
    np.testing.assert_allclose(summed_gene_counts(idx), expected, rtol=0, atol=1e-3)
    want = molecule_rows(df[df["gene"].astype(str).isin(chosen)])
    assert tiled_rows(idx) == want
