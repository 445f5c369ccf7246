"""Bad input gives a clear ValueError / FileNotFoundError naming the file, never a deep trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import stfield.io as sio
from stfield._errors import StfieldInputError


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_missing_paths(tmp_path: Path, io_data: Path) -> None:
    for reader in (sio.read, sio.read_transcripts, sio.read_h5ad, sio.read_visium, sio.read_xenium):
        with pytest.raises(FileNotFoundError, match=r"nowhere\.h5ad: no such file"):
            reader(tmp_path / "nowhere.h5ad")
    with pytest.raises(ValueError, match="expected a path"):
        sio.read(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("folder", "remove", "looked_for"),
    [
        ("visium", "outs/spatial/scalefactors_json.json", "scalefactors_json.json"),
        ("visium", "outs/spatial/tissue_positions.csv", "tissue_positions_list.csv"),
        ("visium", "outs/filtered_feature_bc_matrix.h5", "filtered_feature_bc_matrix/"),
        ("xenium", "cells.parquet", "cells.csv.gz"),
        ("merscope", "cell_metadata.csv", "cell_metadata.csv"),
        ("slideseq", "xenium_breast_crop_BeadLocationsForR.csv", "BeadLocations"),
    ],
)
def test_folder_lacking_files(copy_fixture, folder: str, remove: str, looked_for: str) -> None:
    root = copy_fixture(folder)
    (root / remove).unlink()
    reader = {
        "visium": sio.read_visium,
        "xenium": sio.read_xenium,
        "merscope": sio.read_merscope,
        "slideseq": sio.read_slideseq,
    }[folder]
    with pytest.raises(FileNotFoundError, match=rf"looked for .*{looked_for}.*holds"):
        reader(root)


def test_renamed_columns(tmp_path: Path, io_data: Path) -> None:
    tx = pd.read_parquet(io_data / "xenium" / "transcripts.parquet")
    tx.rename(columns={"x_location": "x_loc"}).to_parquet(tmp_path / "transcripts.parquet")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['x_location'\].*x_loc"):
        sio.read_xenium_transcripts(tmp_path / "transcripts.parquet")
    mer = pd.read_csv(io_data / "merscope" / "detected_transcripts.csv", index_col=0)
    mer.rename(columns={"global_y": "gy"}).to_csv(tmp_path / "detected_transcripts.csv")
    with pytest.raises(ValueError, match=r"\['global_y'\].*columns found"):
        sio.read_merscope_transcripts(tmp_path / "detected_transcripts.csv")
    cos = pd.read_csv(io_data / "cosmx" / "xenium_breast_crop_tx_file.csv.gz")
    cos.rename(columns={"target": "gene_name"}).to_csv(tmp_path / "a_tx_file.csv", index=False)
    with pytest.raises(ValueError, match=r"\['target'\]"):
        sio.read_cosmx_transcripts(tmp_path / "a_tx_file.csv")
    with pytest.raises(ValueError, match=r"not in the table.*columns found.*--columns"):
        sio.read_transcripts(
            tmp_path / "a_tx_file.csv", columns={"gene": "genes", "x": "x", "y": "y"}
        )
    gem = tmp_path / "s.gem"
    gem.write_text("geneID\tx\ty\tcount\nA\t1\t2\t3\n")
    with pytest.raises(ValueError, match=r"MIDCount.*columns found"):
        sio.read_stereoseq_gem(gem)


def test_nan_coordinates(tmp_path: Path, io_data: Path, copy_fixture) -> None:
    tx = pd.read_parquet(io_data / "xenium" / "transcripts.parquet")
    row = int(np.flatnonzero(tx.feature_name == "ERBB2")[0])  # a gene, not a control
    tx.loc[row, "y_location"] = np.nan
    tx.to_parquet(tmp_path / "transcripts.parquet")
    with pytest.raises(ValueError, match=r"'y' has 1 NaN/inf"):
        sio.read_xenium_transcripts(tmp_path / "transcripts.parquet")
    root = copy_fixture("xenium")
    cells = pd.read_parquet(root / "cells.parquet")
    cells.loc[3, "x_centroid"] = np.inf
    cells.to_parquet(root / "cells.parquet")
    with pytest.raises(ValueError, match=r"NaN or inf.*row 3"):
        sio.read_xenium(root)


def test_duplicated_ids_and_genes(tmp_path: Path, io_data: Path, copy_fixture) -> None:
    root = copy_fixture("visium")
    pos_path = root / "outs" / "spatial" / "tissue_positions.csv"
    pos = pd.read_csv(pos_path)
    pd.concat([pos, pos.iloc[:2]]).to_csv(pos_path, index=False)
    with pytest.raises(ValueError, match="2 duplicated spot name"):
        sio.read_visium(root)
    m = pd.read_csv(io_data / "generic" / "matrix.csv")
    pd.concat([m, m.iloc[:1]]).to_csv(tmp_path / "dup_rows.csv", index=False)
    with pytest.raises(ValueError, match="duplicated spot"):
        sio.read_matrix_table(tmp_path / "dup_rows.csv", io_data / "generic" / "coordinates.csv")
    cols = list(m.columns)
    cols[2] = cols[1]  # two columns for the same gene
    m.set_axis(cols, axis=1).to_csv(tmp_path / "dup_genes.csv", index=False)
    with pytest.raises(ValueError, match="duplicated gene"):
        sio.read_matrix_table(tmp_path / "dup_genes.csv", io_data / "generic" / "coordinates.csv")


def test_bad_counts(tmp_path: Path, io_data: Path) -> None:
    m = pd.read_csv(io_data / "generic" / "matrix.csv")
    c = io_data / "generic" / "coordinates.csv"
    neg = m.copy()
    neg.iloc[2, 4] = -3
    neg.to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(ValueError, match="negative values"):
        sio.read_matrix_table(tmp_path / "neg.csv", c)
    text = m.astype({m.columns[3]: object})
    text.iloc[1, 3] = "high"
    text.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(ValueError, match=r"text\.csv: non-numeric value.*'high'"):
        sio.read_matrix_table(tmp_path / "text.csv", c)
    gem = tmp_path / "neg.gem"
    gem.write_text("#FileFormat=GEMv0.1\ngeneID\tx\ty\tMIDCount\nA\t1\t2\t-1\n")
    with pytest.raises(ValueError, match="negative"):
        sio.read_stereoseq_gem(gem)


def test_coordinates_do_not_match_spots(tmp_path: Path, io_data: Path) -> None:
    m = io_data / "generic" / "matrix.csv"
    coords = pd.read_csv(io_data / "generic" / "coordinates.csv")
    coords.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match=r"1 of 9 spots.*no row in the coordinates table"):
        sio.read_matrix_table(m, tmp_path / "short.csv")
    coords.iloc[:-1, 1:].to_csv(tmp_path / "short_noid.csv", index=False)
    with pytest.raises(ValueError, match="8 coordinate rows for 9 spots"):
        sio.read_matrix_table(m, tmp_path / "short_noid.csv")


def test_truncated_binary_files(copy_fixture) -> None:
    tx = copy_fixture("xenium/transcripts.parquet")
    truncate(tx)
    with pytest.raises(StfieldInputError, match=r"transcripts\.parquet: cannot read the parquet"):
        sio.read_transcripts(tx)
    h5ad = copy_fixture("h5ad/merfish_u2os.h5ad")
    truncate(h5ad)
    with pytest.raises(StfieldInputError, match=r"merfish_u2os\.h5ad: cannot read the h5ad"):
        sio.read(h5ad)
    h5 = copy_fixture("xenium/cell_feature_matrix.h5")
    truncate(h5)
    with pytest.raises(StfieldInputError, match=r"cell_feature_matrix\.h5: cannot read the HDF5"):
        sio.read_xenium(h5)
    gem = copy_fixture("stereoseq/xenium_breast_crop.gem.gz")
    truncate(gem, 0.6)
    with pytest.raises(StfieldInputError, match=r"gem\.gz"):
        sio.read_stereoseq_gem(gem)


def test_bad_options(tmp_path: Path, io_data: Path, copy_fixture) -> None:
    with pytest.raises(ValueError, match="pixel_size_um must be a positive number"):
        sio.read_cosmx_transcripts(io_data / "cosmx", pixel_size_um=0)
    with pytest.raises(ValueError, match="unknown spatial_unit 'inch'"):
        sio.read_matrix_table(
            io_data / "generic" / "matrix.csv",
            io_data / "generic" / "coordinates.csv",
            spatial_unit="inch",
        )
    with pytest.raises(ValueError, match="bin_size must be a positive integer"):
        sio.read_stereoseq_gem(io_data / "stereoseq", bin_size=0)
    root = copy_fixture("visium")
    sf = root / "outs" / "spatial" / "scalefactors_json.json"
    sf.write_text(json.dumps({"tissue_hires_scalef": 0.1}))
    with pytest.raises(ValueError, match="pixel_size_um="):
        sio.read_visium(root)
    sf.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the scale factors"):
        sio.read_visium(root)
    assert (
        pq.read_schema(io_data / "xenium" / "transcripts.parquet").field("cell_id").type == "int64"
    )
