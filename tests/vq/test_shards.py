"""Out-of-core transcripts: per-tile shards written with dask, read by the rasteriser (issue 6.2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stfield import datasets, io
from stfield.cli import main
from stfield.data.raster import RasterConfig, TileIndex
from stfield.data.shards import ShardStore, write_tile_shards

CFG = RasterConfig(pixel_size=1.0, tile=16, n_freqs=2)


def make_transcripts(
    n_cells: int = 40, extent: float = 64.0, per_cell: int = 30, seed: int = 0
) -> pd.DataFrame:
    """Canonical molecules scattered around cell centres, some in the nucleus, plus background."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(6)]
    centre = rng.uniform(2, extent - 2, (n_cells, 2))
    offset = rng.normal(0, 1.5, (n_cells, per_cell, 2))
    xy = (centre[:, None, :] + offset).reshape(-1, 2)
    n_bg = n_cells
    xy = np.clip(np.vstack([xy, rng.uniform(0, extent, (n_bg, 2))]), 0, extent - 1e-6)
    n = len(xy)
    cell = [f"cell{c}" for c in range(n_cells) for _ in range(per_cell)] + [None] * n_bg
    nucleus = np.r_[np.hypot(*offset.reshape(-1, 2).T) < 1.2, np.zeros(n_bg, bool)]
    return pd.DataFrame(
        {
            "gene": pd.Categorical(rng.choice(genes, n), categories=genes),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "z": 0.0,
            "cell_id": pd.array(cell, dtype="string"),
            "overlaps_nucleus": nucleus,
        }
    )


def _xenium_raw(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Molecules in Xenium's own column layout, with controls, low-qv rows and unassigned ids."""
    rng = np.random.default_rng(seed)
    genes = np.array(["ACTB", "EPCAM", "KRT8", "PTPRC", "BLANK_0001", "NegControlProbe_1"])
    cell = rng.integers(-1, 40, n)
    return pd.DataFrame(
        {
            "transcript_id": np.arange(n, dtype=np.int64),
            "cell_id": np.where(cell < 0, "UNASSIGNED", [f"c{c:03d}" for c in cell]),
            "overlaps_nucleus": rng.integers(0, 2, n).astype(np.uint8),
            "feature_name": rng.choice(genes, n, p=[0.3, 0.25, 0.2, 0.15, 0.05, 0.05]),
            # short decimals: pandas' CSV parser reads back the very float64 the parquet holds
            "x_location": rng.uniform(3.0, 90.0, n).round(3),
            "y_location": rng.uniform(-5.0, 40.0, n).round(3),
            "z_location": rng.uniform(0, 10, n).astype(np.float32),
            "qv": rng.uniform(10, 40, n).astype(np.float32),
        }
    )


def _write_parts(df: pd.DataFrame, folder, n_parts: int) -> None:
    folder.mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(df)), n_parts)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False),
                       folder / f"part-{k}.parquet", row_group_size=400)  # fmt: skip


def _all_molecules(store: ShardStore) -> pd.DataFrame:
    parts = [store.molecules(i) for i in range(len(store))]
    return pd.DataFrame(
        {
            "tile": np.repeat(np.arange(len(store)), [len(p[0]) for p in parts]),
            "gene": np.concatenate([p[0] for p in parts]),
            "x": np.concatenate([p[1] for p in parts]),
            "y": np.concatenate([p[2] for p in parts]),
        }
    )


def _assert_same_tiles(a: TileIndex, b: TileIndex, flips: bool = False) -> None:
    assert a.genes == b.genes and len(a) == len(b)
    np.testing.assert_array_equal(a.origins, b.origins)
    np.testing.assert_array_equal(a.tile_molecules, b.tile_molecules)
    for i in range(len(a)):
        flip, k = (bool(i % 2), i % 4) if flips else (False, 0)
        np.testing.assert_array_equal(a.rasterise(i, flip, k), b.rasterise(i, flip, k))


def test_round_trip_puts_every_molecule_in_one_tile(tmp_path):
    df = make_transcripts(n_cells=60, extent=80.0, seed=3)
    store = write_tile_shards(df, tmp_path / "store", 16.0, partition_rows=500)
    assert store.manifest["n_molecules"] == len(df) == store.tile_molecules.sum()
    mol = _all_molecules(store)
    # each tile's molecules lie in its window, and every molecule comes back exactly once
    lo = store.origins[mol["tile"]]
    inside = (mol[["x", "y"]].to_numpy() >= lo) & (mol[["x", "y"]].to_numpy() < lo + 16.0)
    assert inside.all()
    assert np.bincount(mol["tile"], minlength=len(store)).tolist() == store.tile_molecules.tolist()
    back = pd.DataFrame(
        {"gene": np.asarray(store.genes)[mol["gene"]], "x": mol["x"], "y": mol["y"]}
    )
    key = ["gene", "x", "y"]
    orig = df[key].assign(gene=df["gene"].astype(str)).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(back.sort_values(key).reset_index(drop=True), orig)
    per_gene = df["gene"].value_counts().reindex(store.genes).to_numpy()
    assert store.gene_counts.tolist() == per_gene.tolist()
    m = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert m["version"] == 1 and m["genes"] == store.genes and m["tile_um"] == 16.0
    assert not (tmp_path / "store" / "_spill").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no temp dir left over


@pytest.mark.parametrize("partition_rows", [10_000, 300])
def test_shards_rasterise_like_the_in_memory_index(tmp_path, partition_rows):
    df = make_transcripts(seed=1)
    store = write_tile_shards(df, tmp_path / "s", config=CFG, partition_rows=partition_rows)
    mem, shards = TileIndex(df, CFG), TileIndex.from_shards(store)
    assert shards.config == CFG  # recorded at writing time
    if partition_rows > len(df):  # one partition: sums in the same order, identical centroids
        pd.testing.assert_frame_equal(mem.centroids, shards.centroids, check_dtype=False)
        _assert_same_tiles(mem, shards, flips=True)
    else:  # partial sums per partition: centroids equal up to rounding
        np.testing.assert_allclose(mem.centroids[["x", "y"]], shards.centroids[["x", "y"]])
        for i in range(len(mem)):
            np.testing.assert_allclose(mem.rasterise(i), shards.rasterise(i), atol=1e-6)
    for i in range(len(mem)):
        for u, v in zip(mem.molecules(i), shards.molecules(i), strict=True):
            np.testing.assert_array_equal(u, v)  # same molecules, same (input) order


def test_bundled_xenium_file_and_frame_match_memory(tmp_path):
    cfg = RasterConfig(pixel_size=2.0, tile=16, n_freqs=3)
    df = datasets.xenium_breast()
    from_file = write_tile_shards(datasets.xenium_breast_path(), tmp_path / "f", config=cfg)
    from_frame = write_tile_shards(df, tmp_path / "d", config=cfg)
    mem = TileIndex(df, cfg)
    assert from_file.genes == from_frame.genes == mem.genes
    _assert_same_tiles(mem, TileIndex(from_file, cfg))
    _assert_same_tiles(mem, from_frame.tile_index(), flips=True)


def test_gene_subset_matches_memory(tmp_path):
    df = make_transcripts(seed=2)
    genes = ["G4", "G1"]
    store = write_tile_shards(df, tmp_path / "s", config=CFG, genes=genes)
    assert store.genes == genes and store.n_molecules == df["gene"].isin(genes).sum()
    _assert_same_tiles(TileIndex(df, CFG, genes=genes), store.tile_index())
    # a store can also be read with fewer channels: the other genes are dropped on read
    sub = TileIndex.from_shards(store, CFG, genes=["G1"])
    assert sub.n_genes == 1 and sub.n_dropped == (df["gene"] == "G4").sum()
    assert set(np.concatenate([sub.molecules(i)[0] for i in range(len(sub))])) == {0}


def test_parts_csv_and_glob_give_the_same_store(tmp_path):
    raw = _xenium_raw()
    _write_parts(raw, tmp_path / "parts", 3)
    raw.to_csv(tmp_path / "transcripts.csv.gz", index=False)
    (tmp_path / "csv").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(raw)), 2)):
        raw.iloc[part].to_csv(tmp_path / "csv" / f"tx_{k}.csv", index=False)
    stores = [
        write_tile_shards(tmp_path / "parts", tmp_path / "a", 16.0),
        write_tile_shards(tmp_path / "transcripts.csv.gz", tmp_path / "b", 16.0),
        write_tile_shards(str(tmp_path / "csv" / "tx_*.csv"), tmp_path / "c", 16.0),
    ]
    ref = io.read_transcripts(tmp_path / "transcripts.csv.gz")  # the in-memory reader
    mem = TileIndex(ref, RasterConfig(pixel_size=1.0, tile=16))
    for s in stores:
        assert s.manifest["platform"] == "xenium"
        assert s.genes == ["ACTB", "EPCAM", "KRT8", "PTPRC"]  # controls dropped
        assert s.n_molecules == len(ref)  # qv < 20 dropped, as by read_xenium_transcripts
        assert s.origin == stores[0].origin and s.manifest["tiles"] == stores[0].manifest["tiles"]
        for i in range(len(s)):
            for u, v in zip(s.molecules(i), stores[0].molecules(i), strict=True):
                np.testing.assert_array_equal(u, v)
        cent = s.centroids
        assert cent.index.tolist() == mem.centroids.index.tolist()
        np.testing.assert_allclose(cent[["x", "y"]], mem.centroids[["x", "y"]])
        assert (cent["source"] == mem.centroids["source"]).all()
        np.testing.assert_array_equal(s.origins, mem.origins)


def test_merscope_and_cosmx_column_maps(tmp_path):
    rng = np.random.default_rng(4)
    n = 1500
    merscope = pd.DataFrame(
        {
            "barcode_id": np.arange(n),
            "global_x": rng.uniform(0, 50, n),
            "global_y": rng.uniform(0, 50, n),
            "global_z": rng.integers(0, 7, n).astype(float),
            "fov": rng.integers(0, 3, n),
            "gene": rng.choice(["Cd4", "Cd8a", "Blank-1"], n),
            "cell_id": rng.choice(["-1", "1234567890123456789", "42"], n),
        }
    )
    merscope.to_csv(tmp_path / "detected_transcripts.csv", index=False)
    cosmx = pd.DataFrame(
        {
            "fov": rng.integers(1, 3, n),
            "cell_ID": rng.integers(0, 5, n),
            "x_global_px": rng.uniform(0, 400, n),
            "y_global_px": rng.uniform(0, 400, n),
            "z": rng.integers(0, 5, n),
            "target": rng.choice(["CD3E", "MS4A1", "NegPrb1"], n),
            "CellComp": rng.choice(["Nuclear", "Cytoplasm", "Membrane"], n),
        }
    )
    cosmx.to_csv(tmp_path / "s1_tx_file.csv.gz", index=False)
    cfg = RasterConfig(pixel_size=1.0, tile=8, n_freqs=1)
    for name, platform in (
        ("detected_transcripts.csv", "merscope"),
        ("s1_tx_file.csv.gz", "cosmx"),
    ):
        store = write_tile_shards(tmp_path / name, tmp_path / platform, config=cfg)
        assert store.manifest["platform"] == platform
        mem = TileIndex(io.read_transcripts(tmp_path / name), cfg)
        pd.testing.assert_frame_equal(mem.centroids, store.centroids, check_dtype=False)
        _assert_same_tiles(mem, store.tile_index())


def test_generic_table_with_a_column_map(tmp_path):
    df = make_transcripts(seed=5).rename(columns={"gene": "target_gene", "x": "px", "y": "py"})
    df.to_parquet(tmp_path / "t.parquet")
    store = write_tile_shards(
        tmp_path / "t.parquet", tmp_path / "s", 16.0, columns="gene=target_gene,x=px,y=py"
    )
    assert store.manifest["platform"] == "generic" and store.n_molecules == len(df)
    assert store.manifest["columns"]["gene"] == "target_gene"


def _nothing_left(tmp_path, keep) -> bool:
    return sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_bad_inputs_fail_clearly_and_leave_nothing(tmp_path):
    raw = _xenium_raw(200).drop(columns=["feature_name"])
    raw.to_csv(tmp_path / "nogene.csv", index=False)
    with pytest.raises(ValueError, match=r"columns found: \[.*x_location.*--columns"):
        write_tile_shards(tmp_path / "nogene.csv", tmp_path / "out", 16.0)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['feature_name'\].*--columns"):
        write_tile_shards(tmp_path / "nogene.csv", tmp_path / "out", 16.0, platform="xenium")
    pd.DataFrame({"gene": [], "x": [], "y": []}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ValueError, match="no molecules"):
        write_tile_shards(tmp_path / "empty.csv", tmp_path / "out", 16.0)
    with pytest.raises(ValueError, match="no rows"):
        write_tile_shards(pd.DataFrame({"gene": [], "x": [], "y": []}), tmp_path / "out", 16.0)
    with pytest.raises(FileNotFoundError, match="no such file"):
        write_tile_shards(tmp_path / "nope.parquet", tmp_path / "out", 16.0)
    bad = make_transcripts()
    bad.loc[5, "x"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_tile_shards(bad, tmp_path / "out", 16.0)
    with pytest.raises(ValueError, match="tile_um"):
        write_tile_shards(make_transcripts(), tmp_path / "out", -1.0)
    with pytest.raises(ValueError, match="no molecule belongs"):
        write_tile_shards(make_transcripts(), tmp_path / "out", 16.0, genes=["nope"])
    assert _nothing_left(tmp_path, ["nogene.csv", "empty.csv"])


def test_store_errors(tmp_path):
    with pytest.raises(ValueError, match="not a shard store"):
        ShardStore(tmp_path)
    store = write_tile_shards(make_transcripts(), tmp_path / "s", 16.0)
    with pytest.raises(ValueError, match="already exists"):
        write_tile_shards(make_transcripts(), tmp_path / "s", 16.0)
    with pytest.raises(ValueError, match="no raster config"):
        TileIndex.from_shards(store)
    with pytest.raises(ValueError, match="store's windows"):
        TileIndex.from_shards(store, RasterConfig(pixel_size=1.0, tile=32))
    with pytest.raises(ValueError, match="non-overlapping"):
        TileIndex(store, RasterConfig(pixel_size=1.0, tile=16), stride=8)
    # overwrite replaces the store atomically
    again = write_tile_shards(make_transcripts(seed=9), tmp_path / "s", 16.0, overwrite=True)
    assert again.n_molecules == len(make_transcripts(seed=9))


def test_cli_shard(tmp_path, capsys):
    src = tmp_path / "t.csv"
    make_transcripts().to_csv(src, index=False)
    out = tmp_path / "store"
    assert main(["shard", str(src), "--out", str(out), "--tile-um", "16", "--pixel-size", "2"]) == 0
    assert "sharded" in capsys.readouterr().out
    store = ShardStore(out)
    assert store.raster_config() == RasterConfig(pixel_size=2.0, tile=8)
    assert main(["shard", str(src), "--out", str(out), "--tile-um", "16"]) == 2
    assert main(["shard", str(src), "--out", str(tmp_path / "x"), "--tile-um", "5",
                 "--pixel-size", "2"]) == 2  # fmt: skip
    assert main(["shard", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "y"),
                 "--tile-um", "16"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert _nothing_left(tmp_path, ["t.csv", "store"])
