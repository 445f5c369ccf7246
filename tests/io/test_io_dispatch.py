"""Format detection and the read / read_transcripts entry points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import stfield.io as sio

LAYOUTS = [
    ("h5ad/visium_mouse_brain.h5ad", "h5ad"),
    ("h5ad/merfish_u2os.h5ad", "h5ad"),
    ("visium", "visium"),
    ("visium/outs", "visium"),
    ("visium/outs/filtered_feature_bc_matrix.h5", "visium"),
    ("visium_hd", "visium_hd"),
    ("visium_hd/outs/binned_outputs", "visium_hd"),
    ("visium_hd/outs/binned_outputs/square_016um", "visium_hd"),
    ("visium_hd/outs/binned_outputs/square_008um/filtered_feature_bc_matrix.h5", "visium_hd"),
    ("stereoseq", "stereoseq_gem"),
    ("stereoseq/xenium_breast_crop.gem.gz", "stereoseq_gem"),
    ("slideseq", "slideseq"),
    ("slideseq/xenium_breast_crop.digital_expression.txt.gz", "slideseq"),
    ("merscope", "merscope_cells"),
    ("merscope/cell_by_gene.csv", "merscope_cells"),
    ("merscope/detected_transcripts.csv", "merscope_transcripts"),
    ("xenium", "xenium_cells"),
    ("xenium/cell_feature_matrix.h5", "xenium_cells"),
    ("xenium/cell_feature_matrix", "xenium_cells"),
    ("xenium/cells.parquet", "xenium_cells"),
    ("xenium/transcripts.parquet", "xenium_transcripts"),
    ("cosmx", "cosmx_transcripts"),
    ("cosmx/xenium_breast_crop_tx_file.csv.gz", "cosmx_transcripts"),
    ("generic/matrix.csv", "generic_matrix"),
]


@pytest.mark.parametrize(("rel", "fmt"), LAYOUTS)
def test_detect_format(io_data: Path, rel: str, fmt: str) -> None:
    assert sio.detect_format(io_data / rel) == fmt
    assert fmt in sio.FORMATS


@pytest.mark.parametrize(
    ("rel", "fmt"),
    [(r, f) for r, f in LAYOUTS if f != "generic_matrix"],
)
def test_read_dispatch(tmp_path: Path, io_data: Path, rel: str, fmt: str) -> None:
    out = sio.read(str(io_data / rel))  # str paths work too
    if fmt.endswith("_transcripts"):
        assert isinstance(out, pd.DataFrame)
        assert out.attrs["stfield"]["format"] == fmt
        return
    assert isinstance(out, AnnData)
    assert out.uns["stfield"]["format"] == fmt
    assert out.n_obs > 0 and out.n_vars > 0
    # every reader's output can be saved, and re-reading it does not convert units twice
    out.write_h5ad(tmp_path / "out.h5ad")
    back = sio.read(tmp_path / "out.h5ad")
    assert back.uns["stfield"]["unit_source"] == "declared"
    np.testing.assert_array_equal(back.obsm["spatial"], out.obsm["spatial"])
    assert (back.X != out.X).nnz == 0


def test_renamed_transcripts_detected_by_columns(tmp_path: Path, io_data: Path) -> None:
    """Files renamed by users are still recognised from their header."""
    df = pd.read_parquet(io_data / "xenium" / "transcripts.parquet")
    df.to_parquet(tmp_path / "sample1_molecules.parquet")
    assert sio.detect_format(tmp_path / "sample1_molecules.parquet") == "xenium_transcripts"
    mer = pd.read_csv(io_data / "merscope" / "detected_transcripts.csv")
    mer.to_csv(tmp_path / "region0.csv", index=False)
    assert sio.detect_format(tmp_path / "region0.csv") == "merscope_transcripts"
    cos = pd.read_csv(io_data / "cosmx" / "xenium_breast_crop_tx_file.csv.gz")
    cos.to_csv(tmp_path / "tx.csv", index=False)
    assert sio.detect_format(tmp_path / "tx.csv") == "cosmx_transcripts"
    generic = df.rename(columns={"feature_name": "gene", "x_location": "x", "y_location": "y"})
    generic[["gene", "x", "y"]].to_csv(tmp_path / "plain.tsv", sep="\t", index=False)
    assert sio.detect_format(tmp_path / "plain.tsv") == "generic_transcripts"


def test_read_transcripts_on_folders(io_data: Path) -> None:
    xen = sio.read_transcripts(io_data / "xenium")
    assert xen.attrs["stfield"]["format"] == "xenium_transcripts"
    mer = sio.read_transcripts(io_data / "merscope", z_step_um=2.0)
    assert mer.attrs["stfield"]["format"] == "merscope_transcripts"
    assert mer.attrs["stfield"]["z_step_um"] == 2.0
    cos = sio.read_transcripts(io_data / "cosmx", keep_controls=True)
    assert cos["gene"].astype(str).str.startswith("NegPrb").any()
    # forced format on a renamed file
    gen = sio.read_transcripts(
        io_data / "xenium" / "transcripts.parquet",
        columns={"gene": "feature_name", "x": "x_location", "y": "y_location", "cell": "cell_id"},
    )
    assert gen.attrs["stfield"]["format"] == "generic_transcripts"
    assert len(gen) == len(xen) + int(
        (pd.read_parquet(io_data / "xenium" / "transcripts.parquet").qv < 20).sum()
    )


def test_dispatch_errors(tmp_path: Path, io_data: Path) -> None:
    (tmp_path / "notes.md").write_text("hello")
    (tmp_path / "image.tif").write_bytes(b"II*\x00")
    with pytest.raises(ValueError, match=r"image\.tif, notes\.md.*supported formats: h5ad"):
        sio.read(tmp_path)
    with pytest.raises(ValueError, match="unknown extension"):
        sio.detect_format(tmp_path / "image.tif")
    with pytest.raises(ValueError, match="unknown format 'visium_v9'"):
        sio.read(io_data / "visium", format="visium_v9")
    with pytest.raises(ValueError, match=r"\['binsize'\] do not apply.*bin_size"):
        sio.read(io_data / "stereoseq", binsize=20)
    with pytest.raises(ValueError, match="count matrix, not a molecule table"):
        sio.read_transcripts(io_data / "visium")
    with pytest.raises(ValueError, match="columns= applies to generic tables"):
        sio.read_transcripts(
            io_data / "cosmx", format="cosmx_transcripts", columns={"gene": "target"}
        )
    with pytest.raises(ValueError, match="unknown format"):
        sio.read_transcripts(io_data / "xenium", format="xenium_cells")
    with pytest.raises(FileNotFoundError, match="no such file"):
        sio.detect_format(tmp_path / "missing.h5ad")
    with pytest.raises(ValueError, match="coordinates="):
        sio.read(io_data / "generic" / "matrix.csv")
