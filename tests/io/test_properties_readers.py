"""Property tests for the molecule readers (issue #7, item 5).

Random small transcript tables are written in each platform's on-disk layout (Xenium
``transcripts.parquet`` / ``transcripts.csv.gz``, MERSCOPE ``detected_transcripts.csv``, CosMx
``*_tx_file.csv(.gz)``, generic CSV/TSV/parquet with a column map) and read back. Properties:

* no molecule is lost or duplicated: the multiset of ``(gene, x, y, z, cell_id, ...)`` read back
  equals the multiset written, minus exactly the molecules the reader documents to drop
  (control probes / blank codewords unless ``keep_controls=True``; Xenium ``qv < min_qv``);
* coordinates come back in µm (CosMx pixels times the pixel size, generic ``nm``/``mm``/``px``
  scaled, MERSCOPE ``global_z`` plane index times the z step);
* unassigned cell ids (``-1``, ``UNASSIGNED``, CosMx ``cell_ID == 0``) become NA.

Coordinates are multiples of 1/64 µm (exactly representable and written/parsed exactly as text),
so every comparison is exact; the expected values are computed here from the written table with
the documented formulas, never by calling the readers' helpers.
"""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import stfield.io as sio
from slices import property_settings

# the toy tables are deliberately far from the origin or densely packed
pytestmark = pytest.mark.filterwarnings("ignore:.*stfield expects µm:UserWarning")

#: examples per property (STFIELD_PROPERTY_EXAMPLES=500 for a deeper search)
PROPS = property_settings(30)

# Control probes / blank codewords (documented: case-insensitive name prefixes, see
# stfield._constants.CONTROL_PATTERN); written out here so the expectation is independent.
CONTROL_PREFIXES = (
    "blank",
    "negcontrol",
    "negprb",
    "neg_ctrl",
    "systemcontrol",
    "unassignedcodeword",
    "deprecatedcodeword",
    "intergenic",
    "notarget",
    "antisense_",
)
CONTROL_NAMES = [
    "NegControlProbe_00042",
    "NegControlCodeword_0502",
    "BLANK_0006",
    "UnassignedCodeword_0007",
    "DeprecatedCodeword_0011",
    "Intergenic_Region_3",
    "antisense_ACTB",
    "Blank-0",
    "blank-12",
    "NegPrb3",
    "NEGPRB10",
    "SystemControl1",
    "neg_ctrl_2",
    "notarget",
]
GENE_NAMES = [
    "ACTB",
    "GAPDH",
    "EPCAM",
    "KRT8",
    "PTPRC",
    "ERBB2",
    "HLA-DRB1",
    "mt-Co1",
    "H2-K1",
    "Nkx2-1",
    "C1QA",
]
# Names that must survive a text round trip and must NOT be taken for controls.
TRICKY_NAMES = [
    "a,b",
    'q"uote',
    "it's",
    "two words",
    " lead",
    "trail ",
    "tab\tin",
    "µ-opioid",
    "αβ-T",
    "naïve",
    "1",
    "0001",
    "1e5",
    "-3",
    "TRUE",
    "False",
    "#hash",
    "semi;colon",
    "pipe|x",
    "back\\slash",
    "(paren)",
    "x=y",
    "NaNo",
    "Nan-1",
    "NULLx",
    "Blan",
    "NegPr",
    "xBLANK_1",
    "Neg-Control",
    "ANTISENSE",
    "Inter-genic",
    " BLANK_1",
]
#: pandas' default missing-value tokens (case-sensitive) and a real Drosophila gene, "nan".
NA_LIKE_NAMES = ["NA", "nan", "NaN", "None", "null", "NULL", "N/A", "n/a", "<NA>", "#N/A"]
_NA_TOKENS = {*NA_LIKE_NAMES, "", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan"}
_NA_TOKENS |= {"1.#IND", "1.#QNAN"}

# Offsets (µm) far from the origin, negative, and large; all multiples of 1/64.
OFFSETS = [0.0, -10_000.0, 523_456.25, -1_048_576.0, 2_000_000.0]


def is_control(name: str) -> bool:
    return name.lower().startswith(CONTROL_PREFIXES)


random_names = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=("L", "N", "P", "S", "Zs"), exclude_characters="\r\n"
    ),
    min_size=1,
    max_size=10,
).filter(
    lambda s: (
        s.strip() != ""
        and s not in _NA_TOKENS
        and not (s.startswith("b'") and s.endswith("'"))  # documented bytes-repr heuristic
    )
)
gene_names = st.one_of(
    st.sampled_from(GENE_NAMES),
    st.sampled_from(TRICKY_NAMES),
    st.sampled_from(CONTROL_NAMES),
    random_names,
)


@st.composite
def molecule_tables(
    draw: st.DrawFn, names: st.SearchStrategy[str] = gene_names, max_size: int = 30
) -> pd.DataFrame:
    """``gene, x, y`` (µm, multiples of 1/64) with duplicate positions and many genes."""
    pool = draw(st.lists(names, min_size=1, max_size=25, unique=True))
    n = draw(st.integers(1, max_size))
    genes = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    ox, oy = draw(st.sampled_from(OFFSETS)), draw(st.sampled_from(OFFSETS))
    ticks = st.integers(-(2**16), 2**16)
    # a small pool of positions makes duplicate positions (and duplicate rows) likely
    n_pos = draw(st.integers(1, n))
    positions = draw(st.lists(st.tuples(ticks, ticks), min_size=n_pos, max_size=n_pos))
    picks = draw(st.lists(st.integers(0, n_pos - 1), min_size=n, max_size=n))
    xy = np.array([positions[i] for i in picks], dtype=np.float64) / 64.0
    return pd.DataFrame({"gene": genes, "x": ox + xy[:, 0], "y": oy + xy[:, 1]})


def _na(v: Any) -> Any:
    """NaN / NA -> None so that rows compare equal in a Counter."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def rows(df: pd.DataFrame, columns: list[str]) -> Counter:
    data = [df[c].astype(object).to_numpy() if c != "gene" else df[c].astype(str) for c in columns]
    return Counter(tuple(_na(v) for v in row) for row in zip(*data, strict=True))


def assert_same_molecules(got: pd.DataFrame, want: pd.DataFrame, columns: list[str]) -> None:
    g, w = rows(got, columns), rows(want, columns)
    assert g == w, (
        f"read back {len(got)} molecules, expected {len(want)}; "
        f"extra: {list((g - w).items())[:5]}; missing: {list((w - g).items())[:5]}"
    )


def assert_contract(df: pd.DataFrame, fmt: str, keep_controls: bool) -> None:
    assert list(df.columns[:5]) == ["gene", "x", "y", "z", "cell_id"]
    assert isinstance(df["gene"].dtype, pd.CategoricalDtype)
    for col in ("x", "y", "z"):
        assert df[col].dtype == np.float64
    assert pd.api.types.is_string_dtype(df["cell_id"])
    assert df.attrs["stfield"]["format"] == fmt
    assert df.attrs["stfield"]["spatial_unit"] == "um"
    assert df.index.equals(pd.RangeIndex(len(df)))
    if not keep_controls:
        assert not any(is_control(str(c)) for c in df["gene"].cat.categories)


def expect_no_rows(read) -> None:
    with pytest.raises(ValueError, match="no rows"):
        read()


# ---------------------------------------------------------------------------------------------
# Xenium


@PROPS
@given(
    tbl=molecule_tables(),
    fmt=st.sampled_from(["parquet", "csv.gz"]),
    how=st.sampled_from(["detect_file", "detect_folder", "reader"]),
    data=st.data(),
)
def test_xenium_round_trip(tbl: pd.DataFrame, fmt: str, how: str, data: st.DataObject) -> None:
    n = len(tbl)
    draw = data.draw
    string_ids = draw(st.booleans(), label="string cell ids")
    cells = draw(st.lists(st.integers(-1, 6), min_size=n, max_size=n), label="cells")
    qv = draw(
        st.lists(st.sampled_from([0.0, 5.5, 19.75, 20.0, 20.25, 40.0]), min_size=n, max_size=n)
    )
    nucleus = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    z = np.array(draw(st.lists(st.integers(-64, 2000), min_size=n, max_size=n))) / 8.0
    float32 = fmt == "parquet" and draw(st.booleans(), label="float32 coordinates")
    with_is_gene = draw(st.booleans(), label="is_gene column")
    with_fov = draw(st.booleans(), label="fov_name column")
    min_qv = draw(st.sampled_from([None, 0.0, 20.0, 30.0]), label="min_qv")
    keep_controls = draw(st.booleans(), label="keep_controls")

    if float32:  # Xenium writes float32 coordinates; the reader must widen them exactly
        for c in ("x", "y"):
            tbl[c] = tbl[c].astype(np.float32).astype(np.float64)
    cell_ids: list[Any] = (
        ["UNASSIGNED" if c < 0 else f"cell{c}-1" for c in cells] if string_ids else cells
    )
    genes = tbl["gene"].astype(str).to_numpy()
    raw = pd.DataFrame(
        {
            "transcript_id": np.arange(n, dtype=np.uint64) + 281474976710656,
            "cell_id": cell_ids,
            "overlaps_nucleus": np.array(nucleus, dtype=np.uint8),
            "feature_name": genes,
            "x_location": tbl["x"].to_numpy(np.float32 if float32 else np.float64),
            "y_location": tbl["y"].to_numpy(np.float32 if float32 else np.float64),
            "z_location": z.astype(np.float32 if float32 else np.float64),
            "qv": np.array(qv, dtype=np.float32),
        }
    )
    if with_fov:
        raw["fov_name"] = [f"{chr(65 + c % 3)}{c % 2 + 1}" for c in range(n)]
    if with_is_gene:
        raw["is_gene"] = [not is_control(g) for g in genes]

    # documented filters: qv >= min_qv (default 20, 0 keeps all), controls unless keep_controls
    eff_qv = 20.0 if min_qv is None else min_qv
    passed_qv = np.asarray(qv) >= eff_qv if eff_qv > 0 else np.ones(n, bool)
    ctrl = np.array([is_control(g) for g in genes], dtype=bool)
    keep = passed_qv & (keep_controls | ~ctrl)
    want = pd.DataFrame(
        {
            "gene": genes,
            "x": tbl["x"],
            "y": tbl["y"],
            "z": z.astype(np.float32 if float32 else np.float64).astype(np.float64),
            "cell_id": [None if c < 0 else (f"cell{c}-1" if string_ids else str(c)) for c in cells],
            "overlaps_nucleus": np.array(nucleus) == 1,
        }
    ).loc[keep]

    opts: dict[str, Any] = {"keep_controls": keep_controls}
    if min_qv is not None:
        opts["min_qv"] = min_qv
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"transcripts.{fmt}"
        if fmt == "parquet":
            table = pa.Table.from_pandas(raw, preserve_index=False)
            pq.write_table(table, path)
        else:
            raw.to_csv(path, index=False, compression="gzip")
        target = path.parent if how == "detect_folder" else path

        def read() -> pd.DataFrame:
            if how == "reader":
                return sio.read_xenium_transcripts(target, **opts)
            return sio.read_transcripts(target, **opts)

        if not keep.any():
            expect_no_rows(read)
            return
        df = read()
    assert_contract(df, "xenium_transcripts", keep_controls)
    assert_same_molecules(df, want, ["gene", "x", "y", "z", "cell_id", "overlaps_nucleus"])
    if with_fov:
        assert Counter(df["fov"].astype(str)) == Counter(raw.loc[keep, "fov_name"])
    if not keep_controls and not with_is_gene:
        assert df.attrs["stfield"]["n_controls_dropped"] == int((passed_qv & ctrl).sum())


# ---------------------------------------------------------------------------------------------
# MERSCOPE


@PROPS
@given(
    tbl=molecule_tables(),
    how=st.sampled_from(["detect_file", "detect_folder", "reader"]),
    data=st.data(),
)
def test_merscope_round_trip(tbl: pd.DataFrame, how: str, data: st.DataObject) -> None:
    n = len(tbl)
    draw = data.draw
    planes = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.float64)
    cells = draw(st.lists(st.integers(-1, 5), min_size=n, max_size=n), label="cells")
    fov = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    z_step = draw(st.sampled_from([None, 1.5, 0.8, 2.0]), label="z_step_um")
    keep_controls = draw(st.booleans(), label="keep_controls")
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONNUMERIC]))

    genes = tbl["gene"].astype(str).to_numpy()
    # 128-bit cell ids (recent MERSCOPE) must be kept exactly, as text; -1 means unassigned
    cell_ids = ["-1" if c < 0 else str(10**37 + 7919 * c) for c in cells]
    codebook = {g: i for i, g in enumerate(sorted(set(genes)))}
    raw = pd.DataFrame(
        {
            "barcode_id": [codebook[g] for g in genes],
            "global_x": tbl["x"].to_numpy(),
            "global_y": tbl["y"].to_numpy(),
            "global_z": planes,
            "x": np.round((tbl["x"].to_numpy() % 200) / 0.108, 2),
            "y": np.round((tbl["y"].to_numpy() % 200) / 0.108, 2),
            "fov": fov,
            "gene": genes,
            "transcript_id": [f"tr{i}" for i in range(n)],
            "cell_id": cell_ids,
        }
    )
    raw.index = raw.groupby("fov").cumcount().to_numpy()  # MERSCOPE's unnamed first column

    ctrl = np.array([is_control(g) for g in genes], dtype=bool)
    keep = keep_controls | ~ctrl
    step = 1.5 if z_step is None else z_step
    want = pd.DataFrame(
        {
            "gene": genes,
            "x": tbl["x"],
            "y": tbl["y"],
            "z": planes * step,
            "cell_id": [None if c == "-1" else c for c in cell_ids],
            "fov": fov,
        }
    ).loc[keep]
    opts: dict[str, Any] = {"keep_controls": keep_controls}
    if z_step is not None:
        opts["z_step_um"] = z_step
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "detected_transcripts.csv"
        raw.to_csv(path, quoting=quoting)
        target = path.parent if how == "detect_folder" else path

        def read() -> pd.DataFrame:
            if how == "reader":
                return sio.read_merscope_transcripts(target, **opts)
            return sio.read_transcripts(target, **opts)

        if not keep.any():
            expect_no_rows(read)
            return
        df = read()
    assert_contract(df, "merscope_transcripts", keep_controls)
    assert_same_molecules(df, want, ["gene", "x", "y", "z", "cell_id", "fov"])
    assert df.attrs["stfield"]["n_controls_dropped"] == (0 if keep_controls else int(ctrl.sum()))


# ---------------------------------------------------------------------------------------------
# CosMx


@PROPS
@given(
    tbl=molecule_tables(),
    gz=st.booleans(),
    how=st.sampled_from(["detect_file", "detect_folder", "reader"]),
    data=st.data(),
)
def test_cosmx_round_trip_pixels_to_um(
    tbl: pd.DataFrame, gz: bool, how: str, data: st.DataObject
) -> None:
    n = len(tbl)
    draw = data.draw
    fov = np.array(draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)), dtype=np.int64)
    cell = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.int64)
    comp = draw(
        st.lists(st.sampled_from(["Nuclear", "Cytoplasm", "Membrane"]), min_size=n, max_size=n)
    )
    comp = ["None" if c == 0 else k for c, k in zip(cell, comp, strict=True)]
    planes = np.array(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)), dtype=np.float64)
    pixel_size = draw(st.sampled_from([None, 0.12028, 0.18, 0.5]), label="pixel_size_um")
    z_step = draw(st.sampled_from([None, 0.8]), label="z_step_um")
    keep_controls = draw(st.booleans(), label="keep_controls")
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONNUMERIC]))

    genes = tbl["gene"].astype(str).to_numpy()
    # the molecule table's x/y are taken as the file's global pixel coordinates
    px, py = tbl["x"].to_numpy(), tbl["y"].to_numpy()
    raw = pd.DataFrame(
        {
            "fov": fov,
            "cell_ID": cell,
            "x_global_px": px,
            "y_global_px": py,
            "x_local_px": px % 4256,
            "y_local_px": py % 4256,
            "z": planes,
            "target": genes,
            "CellComp": comp,
        }
    )
    ps = 0.12028 if pixel_size is None else pixel_size  # documented CosMx camera pixel size
    ctrl = np.array([is_control(g) for g in genes], dtype=bool)
    keep = keep_controls | ~ctrl
    want = pd.DataFrame(
        {
            "gene": genes,
            "x": px * ps,
            "y": py * ps,
            "z": planes * z_step if z_step is not None else np.full(n, np.nan),
            "cell_id": [None if c == 0 else f"{f}_{c}" for f, c in zip(fov, cell, strict=True)],
            "fov": fov,
            "overlaps_nucleus": np.array(comp) == "Nuclear",
        }
    ).loc[keep]
    opts: dict[str, Any] = {"keep_controls": keep_controls}
    if pixel_size is not None:
        opts["pixel_size_um"] = pixel_size
    if z_step is not None:
        opts["z_step_um"] = z_step
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("Run5629_S1_tx_file.csv" + (".gz" if gz else ""))
        raw.to_csv(path, index=False, quoting=quoting)
        target = path.parent if how == "detect_folder" else path

        def read() -> pd.DataFrame:
            if how == "reader":
                return sio.read_cosmx_transcripts(target, **opts)
            return sio.read_transcripts(target, **opts)

        if not keep.any():
            expect_no_rows(read)
            return
        df = read()
    assert_contract(df, "cosmx_transcripts", keep_controls)
    assert df.attrs["stfield"]["pixel_size_um"] == ps
    assert_same_molecules(df, want, ["gene", "x", "y", "z", "cell_id", "fov", "overlaps_nucleus"])
    assert df.attrs["stfield"]["n_controls_dropped"] == (0 if keep_controls else int(ctrl.sum()))


# ---------------------------------------------------------------------------------------------
# generic tables with a column map

_COLUMN_NAMES = [
    "target gene",
    "Feature",
    "gx",
    "X Pos",
    "pos.y",
    "umi_cell",
    "zz",
    "col_1",
    "misc",
]
_UNITS = {"um": 1.0, "nm": 1e-3, "mm": 1e3}


@PROPS
@given(
    tbl=molecule_tables(),
    ext=st.sampled_from(["csv", "tsv", "csv.gz", "tsv.gz", "parquet"]),
    data=st.data(),
)
def test_generic_round_trip_with_column_map(
    tbl: pd.DataFrame, ext: str, data: st.DataObject
) -> None:
    n = len(tbl)
    draw = data.draw
    names = draw(st.permutations(_COLUMN_NAMES), label="column names")
    gcol, xcol, ycol, zcol, ccol, extra = names[:6]
    with_z, with_cell = draw(st.booleans(), label="z column"), draw(st.booleans(), label="cell")
    unit = draw(st.sampled_from([None, "um", "nm", "mm", "px"]), label="spatial_unit")
    pixel_size = 0.2125 if unit == "px" else None
    keep_controls = draw(st.booleans(), label="keep_controls")
    cells = draw(st.lists(st.integers(-2, 5), min_size=n, max_size=n), label="cells")
    z = np.array(draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n))) / 4.0
    shuffle = draw(st.permutations(range(n)), label="row order")

    genes = tbl["gene"].astype(str).to_numpy()
    # cell column: -2 -> missing, -1 -> "-1" (documented unassigned), else an id
    cell_raw = pd.array([None if c == -2 else c for c in cells], dtype="Int64")
    cols: dict[str, Any] = {extra: [f"m{i}" for i in range(n)], gcol: genes}
    cols[xcol], cols[ycol] = tbl["x"].to_numpy(), tbl["y"].to_numpy()
    if with_z:
        cols[zcol] = z
    if with_cell:
        cols[ccol] = cell_raw
    raw = pd.DataFrame(cols).iloc[list(shuffle)].reset_index(drop=True)
    mapping = {"gene": gcol, "x": xcol, "y": ycol}
    if with_z:
        mapping["z"] = zcol
    if with_cell:
        mapping["cell"] = ccol
    keys = draw(st.permutations(list(mapping)), label="map order")
    text = ",".join(f" {k} = {mapping[k]} " for k in keys)  # the CLI's --columns syntax
    columns = sio.parse_column_map(text)
    assert columns == mapping

    scale = pixel_size if unit == "px" else _UNITS.get(unit or "um")
    ctrl = np.array([is_control(g) for g in genes], dtype=bool)
    keep = keep_controls | ~ctrl
    want = pd.DataFrame(
        {
            "gene": genes,
            "x": tbl["x"].to_numpy() * scale,
            "y": tbl["y"].to_numpy() * scale,
            "z": z * scale if with_z else np.full(n, np.nan),
            "cell_id": [None if c < 0 or not with_cell else str(c) for c in cells],
        }
    ).loc[keep]
    opts: dict[str, Any] = {"keep_controls": keep_controls}
    if unit is not None:
        opts["spatial_unit"] = unit
    if pixel_size is not None:
        opts["pixel_size_um"] = pixel_size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"molecules.{ext}"
        if ext == "parquet":
            raw.to_parquet(path, index=False)
        else:
            raw.to_csv(path, index=False, sep="\t" if ext.startswith("tsv") else ",")

        def read() -> pd.DataFrame:
            return sio.read_transcripts(path, columns=columns, **opts)

        if not keep.any():
            expect_no_rows(read)
            return
        df = read()
    assert_contract(df, "generic_transcripts", keep_controls)
    assert df.attrs["stfield"].get("pixel_size_um") == pixel_size
    assert_same_molecules(df, want, ["gene", "x", "y", "z", "cell_id"])
    assert df.attrs["stfield"]["n_controls_dropped"] == (0 if keep_controls else int(ctrl.sum()))


# ---------------------------------------------------------------------------------------------
# gene names that are pandas' missing-value tokens


@PROPS
@given(
    tbl=molecule_tables(
        names=st.one_of(st.sampled_from(NA_LIKE_NAMES), st.sampled_from(GENE_NAMES)), max_size=8
    ),
    layout=st.sampled_from(["generic_csv", "xenium_csv_gz", "merscope", "cosmx"]),
)
@example(tbl=pd.DataFrame({"gene": ["nan"], "x": [0.0], "y": [0.0]}), layout="generic_csv")
@example(tbl=pd.DataFrame({"gene": ["NA", "ACTB"], "x": [0.0, 1.0], "y": 0.0}), layout="cosmx")
def test_gene_names_that_look_missing_survive_text_layouts(tbl: pd.DataFrame, layout: str) -> None:
    """A gene *named* ``nan`` (Drosophila nanchung), ``NA``, ``None``... is a gene, not a gap.

    The same table read from parquet keeps these names; the text layouts must do the same (no
    molecule lost, and no "molecule(s) have no gene name" error).
    """
    genes = tbl["gene"].astype(str).to_numpy()
    x, y = tbl["x"].to_numpy(), tbl["y"].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        if layout == "generic_csv":
            path = Path(tmp) / "molecules.csv"
            pd.DataFrame({"gene": genes, "x": x, "y": y}).to_csv(path, index=False)
            scale = 1.0
        elif layout == "xenium_csv_gz":
            path = Path(tmp) / "transcripts.csv.gz"
            pd.DataFrame(
                {"cell_id": -1, "feature_name": genes, "x_location": x, "y_location": y, "qv": 40.0}
            ).to_csv(path, index=False)
            scale = 1.0
        elif layout == "merscope":
            path = Path(tmp) / "detected_transcripts.csv"
            pd.DataFrame(
                {"global_x": x, "global_y": y, "global_z": 0.0, "fov": 0, "gene": genes}
            ).to_csv(path)
            scale = 1.0
        else:
            path = Path(tmp) / "S1_tx_file.csv.gz"
            pd.DataFrame(
                {"fov": 1, "cell_ID": 0, "x_global_px": x, "y_global_px": y, "target": genes}
            ).to_csv(path, index=False)
            scale = 0.12028
        df = sio.read_transcripts(path)
    want = pd.DataFrame({"gene": genes, "x": x * scale, "y": y * scale})
    assert_same_molecules(df, want, ["gene", "x", "y"])
