import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stfield.pp import bin_transcripts


def test_molecules_land_in_the_right_bins():
    df = pd.DataFrame(
        {
            "gene": pd.Categorical(["A", "A", "B", "B", "A"]),
            "x": [0.0, 9.9, 10.0, 25.0, 5.0],
            "y": [0.0, 0.5, 0.0, 15.0, 9.99],
        }
    )
    adata = bin_transcripts(df, 10.0)
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    dense = pd.DataFrame(adata.X.toarray(), index=adata.obs_names, columns=adata.var_names)
    assert dense.loc["bin_0_0", "A"] == 3  # (0,0), (9.9,0.5), (5,9.99)
    assert dense.loc["bin_1_0", "B"] == 1
    assert dense.loc["bin_2_1", "B"] == 1
    assert adata.n_obs == 3  # empty bins never appear
    centres = dict(zip(adata.obs_names, map(tuple, adata.obsm["spatial"]), strict=True))
    assert centres["bin_2_1"] == (25.0, 15.0)
    assert adata.uns["stfield"]["spatial_unit"] == "um"


def test_counts_are_preserved(transcripts_table):
    adata = bin_transcripts(transcripts_table, 7.5)
    assert adata.X.sum() == len(transcripts_table)
    per_gene = np.asarray(adata.X.sum(axis=0)).ravel()
    expected = transcripts_table["gene"].value_counts().reindex(adata.var_names).to_numpy()
    np.testing.assert_array_equal(per_gene, expected)
    np.testing.assert_array_equal(adata.obs["total_counts"], np.asarray(adata.X.sum(1)).ravel())


def test_bad_bin_size_and_columns(transcripts_table):
    with pytest.raises(ValueError, match="bin size"):
        bin_transcripts(transcripts_table, 0)
    with pytest.raises(ValueError, match="missing column"):
        bin_transcripts(transcripts_table.rename(columns={"x": "xx"}), 10)
    bad = transcripts_table.copy()
    bad.loc[3, "y"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bin_transcripts(bad, 10)
