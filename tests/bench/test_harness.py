import numpy as np
import pandas as pd
import pytest

from stfield.bench.harness import RESULT_COLUMNS, run_benchmark
from stfield.cli import main

TINY = {
    "suica": {
        "preset": "fast",
        "epochs_gae": 15,
        "epochs_inr": 25,
        "epochs_decoder": 25,
        "gae_hidden": (32, 16),
        "latent_dim": 8,
        "backbone_kwargs": {"width": 32},
    },
    "suica-noae": {"epochs_inr": 25, "backbone_kwargs": {"width": 32}},
    "ffn": {"epochs": 25, "backbone_kwargs": {"width": 32}},
    "stage": {"epochs": 10, "hidden": (16, 8)},
}
METHODS = "suica,suica-noae,ffn,stage,knn,mean"
METRICS = [
    c
    for c in RESULT_COLUMNS
    if c not in ("method", "task", "seed", "fit_seconds", "predict_seconds", "peak_rss_mb")
]


@pytest.fixture
def small_slice(slice_factory):
    a = slice_factory(10, 12)
    a.obs["region"] = np.where(a.obsm["spatial"][:, 0] < 50, "left", "right")
    return a


def test_harness_writes_every_file_with_complete_rows(tmp_path, small_slice):
    import torch

    torch.set_num_threads(1)
    table = run_benchmark(
        small_slice,
        tmp_path,
        methods=METHODS,
        seeds=(0, 1),
        labels_key="region",
        method_options=TINY,
        progress=False,
    )
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert len(table) == 6 * 3 * 2
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert list(on_disk.columns) == list(RESULT_COLUMNS)
    # Correlations may be undefined (constant predictions); the zero-map IoU is undefined for
    # gene imputation (every scored entry is non-zero); everything else must be filled.
    numeric = on_disk.drop(
        columns=["method", "task", "pearson_gene", "spearman_gene", "pearson", "spearman", "iou"]
    )
    assert not numeric.isna().any().any()
    assert on_disk.loc[on_disk.task == "genes", "iou"].isna().all()
    assert on_disk.loc[on_disk.task != "genes", "iou"].between(0, 1).all()
    assert (on_disk["peak_rss_mb"] > 0).all() and (on_disk["fit_seconds"] >= 0).all()
    assert on_disk["ari"].between(-1, 1).all()
    md = (tmp_path / "results.md").read_text()
    assert "### spatial" in md and "### denoise" in md and "**" in md and "± " in md
    for name in ("split_seed0.npz", "split_seed1.npz", "gene_mask_seed0.npz"):
        assert (tmp_path / "protocols" / name).exists()
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"bar_cosine.png", "bar_mse.png", "maps_spatial.png"} <= figures
    assert (tmp_path / "config.json").exists()


def test_same_seeds_same_table(tmp_path, small_slice):
    import torch

    torch.set_num_threads(1)
    kwargs = {
        "methods": "suica,ffn,knn",
        "seeds": (3,),
        "tasks": "spatial",
        "method_options": TINY,
        "progress": False,
    }
    a = run_benchmark(small_slice, tmp_path / "a", **kwargs)
    b = run_benchmark(small_slice, tmp_path / "b", **kwargs)
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])


def test_cli_benchmark_and_bad_options(tmp_path, small_slice, capsys):
    path = tmp_path / "slice.h5ad"
    small_slice.write_h5ad(path)
    out = tmp_path / "bench"
    assert (
        main(
            [
                "benchmark",
                str(path),
                "--out",
                str(out),
                "--methods",
                "knn,mean",
                "--seeds",
                "0,1",
                "--no-normalize",
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out / "results.csv")) == 2 * 3 * 2
    assert main(["benchmark", str(path), "--out", str(out), "--methods", "knn,magic"]) == 2
    assert "magic" in capsys.readouterr().err
    assert main(["benchmark", str(path), "--out", str(out), "--seeds", "a,b"]) == 2
    assert (
        main(["benchmark", str(path), "--out", str(out), "--methods", "knn", "--labels", "nope"])
        == 2
    )
