"""Molecule readers: Xenium, MERSCOPE, CosMx and generic tables -> the transcripts contract."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

import stfield.io as sio

TX_FILE = "cosmx/xenium_breast_crop_tx_file.csv.gz"


def assert_contract(df: pd.DataFrame, fmt: str) -> None:
    assert list(df.columns[:5]) == ["gene", "x", "y", "z", "cell_id"]
    assert isinstance(df["gene"].dtype, pd.CategoricalDtype)
    for col in ("x", "y", "z"):
        assert df[col].dtype == np.float64
    assert pd.api.types.is_string_dtype(df["cell_id"])
    assert np.isfinite(df[["x", "y"]].to_numpy()).all()
    assert df.attrs["stfield"]["format"] == fmt
    assert df.attrs["stfield"]["spatial_unit"] == "um"
    assert not df["gene"].astype(str).str.match(r"(?i)^(blank|negcontrol|negprb|unassigned)").any()


def assert_same_points(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    """Same multiset of 2-D points (up to atol), in any order."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    dist, idx = cKDTree(b).query(a)
    assert dist.max() <= atol
    assert len(np.unique(idx)) == len(b)


# ---------------------------------------------------------------------------------------------
# Xenium


def test_xenium_transcripts_contract(io_data: Path, xenium_raw, xenium_genes) -> None:
    df = sio.read_xenium_transcripts(io_data / "xenium" / "transcripts.parquet")
    assert_contract(df, "xenium_transcripts")
    assert len(df) == len(xenium_genes) == len(xenium_raw) - 40
    assert df.attrs["stfield"]["n_controls_dropped"] == 40
    np.testing.assert_array_equal(df["x"], xenium_genes["x_location"])
    np.testing.assert_array_equal(df["z"], xenium_genes["z_location"])
    assert (df["gene"].astype(str).to_numpy() == xenium_genes["feature_name"].to_numpy()).all()
    unassigned = xenium_genes["cell_id"].to_numpy() == -1
    assert unassigned.sum() > 0
    np.testing.assert_array_equal(df["cell_id"].isna().to_numpy(), unassigned)
    assert (df["cell_id"][~unassigned] == xenium_genes["cell_id"][~unassigned].astype(str)).all()
    assert df["overlaps_nucleus"].dtype == bool
    assert df["overlaps_nucleus"].sum() == (xenium_genes["overlaps_nucleus"] == 1).sum()


def test_xenium_keep_controls_and_min_qv(io_data: Path, xenium_raw) -> None:
    path = io_data / "xenium" / "transcripts.parquet"
    everything = sio.read_xenium_transcripts(path, keep_controls=True)
    assert len(everything) == len(xenium_raw)
    assert everything["gene"].astype(str).str.startswith("NegControlProbe").sum() == 10
    strict = sio.read_xenium_transcripts(path, min_qv=30, keep_controls=True)
    assert len(strict) == int((xenium_raw["qv"] >= 30).sum()) < len(xenium_raw)


def test_xenium_csv_gz_and_string_ids(tmp_path: Path, io_data: Path, xenium_raw) -> None:
    """Newer Xenium: string cell ids with UNASSIGNED, bytes gene names in old parquet."""
    raw = xenium_raw.copy()
    raw["cell_id"] = np.where(raw.cell_id < 0, "UNASSIGNED", "cell" + raw.cell_id.astype(str))
    csv = tmp_path / "transcripts.csv.gz"
    raw.to_csv(csv, index=False)
    df = sio.read_transcripts(csv)
    assert df.attrs["stfield"]["format"] == "xenium_transcripts"
    assert df["cell_id"].dropna().str.startswith("cell").all()
    genes = ~xenium_raw.feature_name.str.match("NegControl|BLANK|Unassigned")
    assert len(df) == int(genes.sum())
    assert df["cell_id"].isna().sum() == int(((xenium_raw.cell_id == -1) & genes).sum())
    ref = sio.read_xenium_transcripts(io_data / "xenium")
    np.testing.assert_allclose(df["x"], ref["x"])
    # old parquet: feature_name stored as bytes
    table = pa.Table.from_pandas(xenium_raw, preserve_index=False)
    names = pa.array([s.encode() for s in xenium_raw.feature_name], pa.binary())
    table = table.set_column(table.schema.get_field_index("feature_name"), "feature_name", names)
    pq.write_table(table, tmp_path / "old.parquet")
    old = sio.read_xenium_transcripts(tmp_path / "old.parquet")
    assert set(old["gene"].cat.categories) == set(ref["gene"].cat.categories)
    assert len(old) == len(ref)


# ---------------------------------------------------------------------------------------------
# MERSCOPE and CosMx (derived from the same molecules)


def test_merscope_transcripts(io_data: Path, xenium_genes) -> None:
    df = sio.read_merscope_transcripts(io_data / "merscope")
    assert_contract(df, "merscope_transcripts")
    raw = pd.read_csv(io_data / "merscope" / "detected_transcripts.csv", dtype={"cell_id": str})
    assert (
        raw["gene"].str.startswith("Blank-").sum() == df.attrs["stfield"]["n_controls_dropped"] > 0
    )
    assert len(df) == (~raw["gene"].str.startswith("Blank-")).sum()
    # z = plane index * 1.5 µm; fov kept; 128-bit cell ids kept exactly as text
    assert set(np.unique(df["z"] / 1.5)) <= set(range(7))
    assert df["fov"].nunique() > 1
    assigned = df["cell_id"].dropna()
    assert assigned.str.len().eq(38).all()
    assert set(assigned) <= set(raw["cell_id"])
    assert (
        df["cell_id"].isna().sum()
        == (raw.loc[~raw.gene.str.startswith("Blank-"), "cell_id"] == "-1").sum()
    )
    # same molecules as the Xenium fixture (global_x rounded to 1e-4 µm)
    x0, y0, w = 1070.0, 380.0, 30.0
    sub = xenium_genes.loc[
        (xenium_genes.x_location >= x0)
        & (xenium_genes.x_location < x0 + w)
        & (xenium_genes.y_location >= y0)
        & (xenium_genes.y_location < y0 + w)
    ]
    assert len(sub) == len(df)
    assert_same_points(df[["x", "y"]], sub[["x_location", "y_location"]], atol=2e-4)


def test_cosmx_transcripts_pixels_to_um(io_data: Path, xenium_genes) -> None:
    df = sio.read_cosmx_transcripts(io_data / TX_FILE)
    assert_contract(df, "cosmx_transcripts")
    assert df.attrs["stfield"]["pixel_size_um"] == pytest.approx(0.12028)
    assert len(df) == len(xenium_genes)
    assert_same_points(df[["x", "y"]], xenium_genes[["x_location", "y_location"]], atol=1e-3)
    assert df["z"].isna().all()  # plane index only, no z_step_um given
    assigned = df["cell_id"].dropna()
    fov_part = assigned.str.split("_").str[0].astype(int)
    assert (fov_part.to_numpy() == df.loc[assigned.index, "fov"].to_numpy()).all()
    raw = pd.read_csv(io_data / TX_FILE)
    genes = ~raw.target.str.match("NegPrb|SystemControl")
    assert df["cell_id"].isna().sum() == ((raw.cell_ID == 0) & genes).sum()
    assert df["overlaps_nucleus"].sum() == ((raw.CellComp == "Nuclear") & genes).sum()
    z = sio.read_cosmx_transcripts(io_data / TX_FILE, z_step_um=0.8, pixel_size_um=0.18)
    assert set(np.round(z["z"] / 0.8, 6)) <= set(range(20))
    np.testing.assert_allclose(z["x"].to_numpy() / 0.18, df["x"].to_numpy() / 0.12028)


# ---------------------------------------------------------------------------------------------
# generic tables


def test_generic_auto_columns_and_explicit_map(tmp_path: Path, xenium_genes) -> None:
    t = xenium_genes.rename(
        columns={"feature_name": "target", "x_location": "px", "y_location": "py"}
    )
    t["px"] /= 0.5
    t["py"] /= 0.5
    path = tmp_path / "molecules.tsv"
    t[["target", "px", "py", "cell_id"]].to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"columns found.*--columns"):
        sio.read_transcripts(path)
    cols = sio.parse_column_map("gene=target,x=px,y=py,cell=cell_id")
    df = sio.read_transcripts(path, columns=cols, spatial_unit="px", pixel_size_um=0.5)
    assert_contract(df, "generic_transcripts")
    np.testing.assert_allclose(df["x"], xenium_genes["x_location"], rtol=1e-12)
    assert df["cell_id"].isna().sum() == (xenium_genes.cell_id == -1).sum()
    assert df.attrs["stfield"]["pixel_size_um"] == 0.5
    # parquet with standard names is auto-detected (x_global_px implies pixels)
    pq_path = tmp_path / "tx.parquet"
    t.rename(columns={"px": "x_global_px", "py": "y_global_px"}).to_parquet(pq_path)
    with pytest.raises(ValueError, match="pixel"):
        sio.read_transcript_table(pq_path)
    df2 = sio.read_transcript_table(pq_path, pixel_size_um=0.5)
    np.testing.assert_allclose(df2["y"], xenium_genes["y_location"], rtol=1e-12)


def test_parse_column_map_errors() -> None:
    assert sio.parse_column_map(" gene = g , x=a,y=b,z=c,cell_id=d") == {
        "gene": "g",
        "x": "a",
        "y": "b",
        "z": "c",
        "cell": "d",
    }
    for bad in (
        "",
        "gene=g,x=a",
        "gene=g,x=a,y=b,colour=c",
        "gene=g,x=a,y",
        "gene=a,gene=b,x=1,y=2",
    ):
        with pytest.raises(ValueError, match="--columns"):
            sio.parse_column_map(bad)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ACTB", "GAPDH", "KRT7", "Blank-1", "NegPrb3", "ERBB2"]),
            st.floats(-1e4, 1e4, allow_nan=False, width=32),
            st.floats(-1e4, 1e4, allow_nan=False, width=32),
            st.one_of(st.none(), st.integers(0, 5)),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["csv", "tsv", "parquet"]),
)
def test_generic_round_trip_property(tmp_path: Path, rows, ext) -> None:
    """No molecule is lost or duplicated; controls and only controls are dropped."""
    t = pd.DataFrame(rows, columns=["gene", "x", "y", "cell"]).astype({"cell": "Int64"})
    path = tmp_path / f"t.{ext}"
    if ext == "parquet":
        t.to_parquet(path)
    else:
        t.to_csv(path, sep="\t" if ext == "tsv" else ",", index=False)
    is_ctrl = t.gene.str.match("Blank|NegPrb").to_numpy()
    if is_ctrl.all():
        with pytest.raises(ValueError, match="no rows"):
            sio.read_transcripts(path)
        return
    df = sio.read_transcripts(path)
    assert df.attrs["stfield"]["format"] == "generic_transcripts"
    kept = t.loc[~is_ctrl].reset_index(drop=True)
    assert len(df) == len(kept)
    got = sorted(zip(df.gene.astype(str), df.x, df.y, df.cell_id.fillna("-"), strict=True))
    want = sorted(
        zip(
            kept.gene,
            kept.x.astype(float),
            kept.y.astype(float),
            kept.cell.astype(str).replace("<NA>", "-"),
            strict=True,
        )
    )
    # CSV text round trip may differ by one ulp: compare floats with a relative tolerance
    assert [(g, c) for g, _, _, c in got] == [(g, c) for g, _, _, c in want]
    np.testing.assert_allclose(
        [(x, y) for _, x, y, _ in got], [(x, y) for _, x, y, _ in want], rtol=1e-12, atol=0
    )


def test_gz_truncated_table_is_clear(tmp_path: Path, io_data: Path) -> None:
    data = (io_data / TX_FILE).read_bytes()
    bad = tmp_path / "broken_tx_file.csv.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"broken_tx_file\.csv\.gz: cannot"):
        sio.read_cosmx_transcripts(bad)
    with gzip.open(io_data / TX_FILE, "rt") as fh:
        head = fh.readline()
    assert head.startswith('"fov","cell_ID"')
