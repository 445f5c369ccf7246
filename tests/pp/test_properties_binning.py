"""Property tests for :func:`stfield.pp.bin_transcripts` (issue #7, item 5).

On random small transcript tables (negative and large coordinate offsets, duplicate positions,
molecules exactly on bin edges, a single molecule, many genes, unused gene categories, random
bin sizes and origins) binning must neither lose nor duplicate a molecule:

* the total count equals the number of molecules in the kept bins (all of them when
  ``min_counts=1``), and each gene's total equals its number of molecules;
* each spot holds exactly the molecules of its bin, checked against an independent count
  (numpy floor of ``(x - x0) / bin_size``, aggregated with a :class:`collections.Counter`);
* every molecule lies inside its spot's square (centre +- bin_size / 2);
* spots are unique (grid indices, names and centres), the matrix is CSR, float32 and
  integer-valued.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from slices import property_settings
from stfield.pp import bin_transcripts

# the toy tables are deliberately far from the origin or densely packed
pytestmark = pytest.mark.filterwarnings("ignore:.*stfield expects µm:UserWarning")

#: examples per property (STFIELD_PROPERTY_EXAMPLES=500 for a deeper search)
PROPS = property_settings(30)

OFFSETS = [0.0, -3.7, -12_345.678, 1e5 + 0.1, 2_000_000.0, -1_048_576.0]
BIN_SIZES = st.one_of(
    st.sampled_from([0.1, 0.3, 1.0, 2.5, 7.5, 10.0, 13.7, 100.0]),
    st.floats(0.05, 500.0, allow_nan=False, allow_infinity=False),
)
GENES = [f"G{i}" for i in range(40)] + ["ACTB", "a,b", "µ-gene", "1", " sp ace", "BLANK_1"]


@st.composite
def transcript_tables(draw: st.DrawFn) -> tuple[pd.DataFrame, float]:
    """A canonical table ``gene, x, y`` and a bin size; some molecules sit exactly on edges."""
    b = draw(BIN_SIZES, label="bin_size_um")
    n_genes = draw(st.integers(1, len(GENES)))
    pool = GENES[:n_genes]
    n = draw(st.integers(1, 60))
    genes = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    ox, oy = draw(st.sampled_from(OFFSETS)), draw(st.sampled_from(OFFSETS))
    span = draw(st.sampled_from([0.0, 1.0, 50.0, 3000.0]), label="span")
    unit = st.floats(0.0, 1.0, allow_nan=False)
    n_pos = draw(st.integers(1, n))  # few positions -> duplicate positions
    pos = []
    for _ in range(n_pos):
        kind = draw(st.sampled_from(["uniform", "edge", "edge-ulp"]))
        if kind == "uniform":
            pos.append((ox + draw(unit) * span, oy + draw(unit) * span))
        else:  # on a bin edge of the default grid (origin = first molecule), or one ulp off
            i, j = draw(st.integers(0, 20)), draw(st.integers(0, 20))
            ex, ey = ox + i * b, oy + j * b
            if kind == "edge-ulp":
                ex = np.nextafter(ex, draw(st.sampled_from([-np.inf, np.inf])))
                ey = np.nextafter(ey, draw(st.sampled_from([-np.inf, np.inf])))
            pos.append((float(ex), float(ey)))
    pos[0] = (ox, oy)  # anchor: the default origin is then (ox, oy) when nothing is smaller
    picks = draw(st.lists(st.integers(0, n_pos - 1), min_size=n - 1, max_size=n - 1))
    xy = np.array([pos[0]] + [pos[k] for k in picks], dtype=np.float64)
    order = draw(st.permutations(range(n)))
    xy = xy[list(order)]
    extra = draw(st.lists(st.sampled_from(["UNUSED1", "UNUSED2"]), unique=True))
    categorical = draw(st.booleans(), label="categorical gene column")
    gene = (
        pd.Categorical(genes, categories=sorted(set(genes)) + extra)
        if categorical
        else np.array(genes, dtype=object)
    )
    df = pd.DataFrame({"gene": gene, "x": xy[:, 0], "y": xy[:, 1]})
    if draw(st.booleans(), label="non-default index"):
        df.index = pd.Index(np.arange(n)[::-1] * 7 + 3)
    return df, b


def reference_bins(df: pd.DataFrame, b: float, x0: float, y0: float) -> tuple[Counter, list[str]]:
    """Independent count of molecules per ``(bin_x, bin_y, gene)`` and the gene order."""
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    # numpy floor of the true quotient (np.floor_divide differs from it by one bin at some
    # exact float edges, e.g. 1.0 // 0.1 == 9.0 but floor(1.0 / 0.1) == 10.0; the latter
    # keeps a molecule lying on x0 + i * b in bin i, as the half-open bins say)
    ix = np.floor(np.true_divide(x - x0, b)).astype(np.int64)
    iy = np.floor(np.true_divide(y - y0, b)).astype(np.int64)
    genes = df["gene"].astype(str).to_numpy()
    cats = (
        [str(c) for c in df["gene"].cat.categories]
        if isinstance(df["gene"].dtype, pd.CategoricalDtype)
        else sorted(set(genes))
    )
    return Counter(zip(ix.tolist(), iy.tolist(), genes.tolist(), strict=True)), cats


def observed_bins(adata) -> Counter:
    X = adata.X.tocoo()
    bx = adata.obs["bin_x"].to_numpy()[X.row]
    by = adata.obs["bin_y"].to_numpy()[X.row]
    genes = np.asarray(adata.var_names)[X.col]
    out: Counter = Counter()
    for a, c, g, v in zip(bx.tolist(), by.tolist(), genes.tolist(), X.data.tolist(), strict=True):
        out[(a, c, g)] += v
    return out


@PROPS
@given(case=transcript_tables(), data=st.data())
def test_binning_preserves_every_molecule(case: tuple[pd.DataFrame, float], data) -> None:
    df, b = case
    n = len(df)
    use_origin = data.draw(st.booleans(), label="explicit origin")
    if use_origin:
        dx, dy = data.draw(st.floats(0, 3 * b)), data.draw(st.floats(0, 3 * b))
        origin = (float(df["x"].min()) - dx, float(df["y"].min()) - dy)
        x0, y0 = origin
    else:
        origin = None
        x0, y0 = float(df["x"].min()), float(df["y"].min())
    adata = bin_transcripts(df, b, origin=origin)

    # matrix: CSR, float32, integer-valued, no explicit duplicates
    X = adata.X
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32
    assert X.has_canonical_format
    assert np.array_equal(X.data, np.round(X.data)) and (X.data > 0).all()
    # no molecule lost or duplicated, in total and per gene (unused categories stay at 0)
    ref, cats = reference_bins(df, b, x0, y0)
    assert list(adata.var_names) == cats
    assert X.sum(dtype=np.float64) == n
    per_gene = Counter(df["gene"].astype(str))
    np.testing.assert_array_equal(
        np.asarray(X.sum(axis=0, dtype=np.float64)).ravel(), [per_gene.get(g, 0) for g in cats]
    )
    # each spot holds exactly the molecules of its bin
    got = observed_bins(adata)
    assert got == ref, (
        f"extra: {list((got - ref).items())[:5]}; missing: {list((ref - got).items())[:5]}"
    )
    np.testing.assert_array_equal(
        adata.obs["total_counts"].to_numpy(), np.asarray(X.sum(axis=1)).ravel()
    )
    # spots are unique and their centres are the bin centres
    grid = list(zip(adata.obs["bin_x"], adata.obs["bin_y"], strict=True))
    assert len(set(grid)) == len(grid) == adata.n_obs
    assert adata.obs_names.is_unique
    centres = adata.obsm["spatial"]
    assert len({tuple(c) for c in centres.tolist()}) == adata.n_obs
    np.testing.assert_array_equal(centres[:, 0], x0 + (adata.obs["bin_x"].to_numpy() + 0.5) * b)
    np.testing.assert_array_equal(centres[:, 1], y0 + (adata.obs["bin_y"].to_numpy() + 0.5) * b)
    assert adata.uns["stfield"]["bin_size_um"] == b
    assert adata.uns["stfield"]["bin_origin_um"] == [x0, y0]


@PROPS
@given(case=transcript_tables())
def test_every_molecule_lies_in_its_spot(case: tuple[pd.DataFrame, float]) -> None:
    """Geometric check, independent of the bin arithmetic: |x - centre| <= b / 2 (+ rounding)."""
    df, b = case
    adata = bin_transcripts(df, b)
    x0, y0 = adata.uns["stfield"]["bin_origin_um"]
    assert (x0, y0) == (df["x"].min(), df["y"].min())
    grid = zip(adata.obs["bin_x"], adata.obs["bin_y"], strict=True)
    spot = {(a, c): i for i, (a, c) in enumerate(grid)}
    centres = adata.obsm["spatial"]
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    # locate each molecule's spot through the bins holding its gene; tolerance: float rounding
    # of x - x0 and of the centre (a few ulps of the largest magnitude involved)
    tol = 8 * np.finfo(np.float64).eps * (np.abs(x).max() + np.abs(y).max() + 4 * b + 1.0)
    ix = np.floor((x - x0) / b).astype(np.int64)
    iy = np.floor((y - y0) / b).astype(np.int64)
    for k in range(len(df)):
        i = spot[(int(ix[k]), int(iy[k]))]
        assert abs(x[k] - centres[i, 0]) <= b / 2 + tol
        assert abs(y[k] - centres[i, 1]) <= b / 2 + tol


@PROPS
@given(case=transcript_tables(), min_counts=st.integers(1, 4))
def test_min_counts_drops_whole_bins_only(
    case: tuple[pd.DataFrame, float], min_counts: int
) -> None:
    df, b = case
    full = bin_transcripts(df, b)
    per_bin = Counter(
        zip(
            np.floor((df["x"].to_numpy() - df["x"].min()) / b).astype(np.int64).tolist(),
            np.floor((df["y"].to_numpy() - df["y"].min()) / b).astype(np.int64).tolist(),
            strict=True,
        )
    )
    assert full.n_obs == len(per_bin)
    kept = {k: v for k, v in per_bin.items() if v >= min_counts}
    adata = bin_transcripts(df, b, min_counts=min_counts)
    got = dict(
        zip(
            zip(adata.obs["bin_x"].tolist(), adata.obs["bin_y"].tolist(), strict=True),
            np.asarray(adata.X.sum(axis=1)).ravel().tolist(),
            strict=True,
        )
    )
    assert got == kept
    assert adata.X.sum(dtype=np.float64) == sum(kept.values())
    assert adata.n_vars == full.n_vars  # genes are never dropped with the bins


@PROPS
@given(case=transcript_tables(), dx=st.floats(1e-6, 10.0), axis=st.sampled_from(["x", "y"]))
def test_origin_above_a_molecule_is_refused(
    case: tuple[pd.DataFrame, float], dx: float, axis: str
) -> None:
    df, b = case
    origin = [float(df["x"].min()), float(df["y"].min())]
    a = 0 if axis == "x" else 1
    origin[a] = max(origin[a] + dx * b, float(np.nextafter(origin[a], np.inf)))
    with pytest.raises(ValueError, match="origin"):
        bin_transcripts(df, b, origin=tuple(origin))
