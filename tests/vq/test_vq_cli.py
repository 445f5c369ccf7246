"""``stfield vq fit | encode | benchmark`` (issue 5, items 6-7)."""

from __future__ import annotations

import anndata
import pandas as pd
import pytest
from click.testing import CliRunner

from stfield.cli.vq import vq

TINY = ["--tile", "16", "--pixel-size", "1", "--codebook-size", "16", "--dim", "8"]


@pytest.fixture(scope="module")
def table(transcripts, tmp_path_factory):
    path = tmp_path_factory.mktemp("tx") / "transcripts.csv"
    transcripts.to_csv(path, index=False)
    return path


def test_fit_encode_benchmark(table, tmp_path):
    runner = CliRunner()
    model = tmp_path / "model"
    res = runner.invoke(
        vq, ["fit", str(table), "--out", str(model), *TINY, "--epochs", "2", "--seed", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "perplexity" in res.output and (model / "weights.safetensors").exists()

    cells = tmp_path / "cells.h5ad"
    res = runner.invoke(
        vq, ["encode", str(model), str(table), "--out", str(cells), "--neighbourhoods", "2"]
    )
    assert res.exit_code == 0, res.output
    a = anndata.read_h5ad(cells)
    assert {"vq_code_m0", "vq_code_m1", "vq_code_m3", "vq_neighbourhood"} <= set(a.obs)

    report = tmp_path / "bench"
    res = runner.invoke(vq, ["benchmark", str(table), "--out", str(report), *TINY, "--epochs", "1"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(report / "results.csv")
    main = df[df.experiment == "models"]
    assert list(main["model"]) == ["hvqvae", "vqvae_single", "vae"]
    assert (main[["mse", "ssim", "tiles_per_s", "cells_per_s"]].notna()).all().all()
    assert (df.experiment == "ablation").sum() == 4  # 2 K x 2 D
    for name in ("results.md", "metrics.png", "ablation.png", "reconstruction.png"):
        assert (report / name).stat().st_size > 0


def test_errors_are_plain_exceptions(tmp_path, table):
    runner = CliRunner()
    res = runner.invoke(vq, ["fit", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")])
    assert isinstance(res.exception, FileNotFoundError)
    res = runner.invoke(vq, ["encode", str(tmp_path), str(table), "--out", str(tmp_path / "a")])
    assert isinstance(res.exception, ValueError)  # not a model directory
