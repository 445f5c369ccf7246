import pandas as pd
import pytest

import stfield
from stfield.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "info" in out and "demo" in out


def test_missing_path_is_one_line_exit_2(capsys, tmp_path):
    assert main(["info", str(tmp_path / "nope.h5ad")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.h5ad" in err and "Traceback" not in err


def test_info_on_bundled_transcripts(capsys):
    path = stfield.datasets.xenium_breast_path()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "xenium" in out and "134,443 molecules" in out and "313 genes" in out
    assert " um" in out


def test_info_on_an_h5ad(capsys, tmp_path, smooth_slice):
    path = tmp_path / "slice.h5ad"
    smooth_slice.write_h5ad(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "400 spots × 30 genes" in out and "x 0.0–190.0" in out


def test_demo_writes_report_and_knn_beats_mean(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--out", str(out_dir), "--no-models"]) == 0
    for name in (
        "report.md",
        "maps_measured_vs_knn.png",
        "protocol_scores.csv",
        "split.npz",
        "gene_mask.npz",
        "slice.h5ad",
    ):
        assert (out_dir / name).stat().st_size > 0, name
    scores = pd.read_csv(out_dir / "protocol_scores.csv").set_index(["task", "method"])
    assert set(scores.index.get_level_values("task")) == {"spatial", "genes", "denoise"}
    knn, mean = scores.loc[("spatial", "knn")], scores.loc[("spatial", "mean")]
    assert knn["pearson_gene"] > 0.05  # real tissue structure is recovered
    assert knn["iou"] > mean["iou"]
    report = (out_dir / "report.md").read_text()
    assert "| spatial | knn |" in report
    # no temporary files left behind
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("argv", [["demo", "--bin-size", "-3"], ["info"]])
def test_bad_arguments_exit_2(argv, tmp_path, capsys):
    if argv[0] == "demo":
        argv = [*argv, "--out", str(tmp_path / "d"), "--no-models"]
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_full_demo_fits_suica_and_vq(tmp_path):
    import torch

    from stfield.models import SUICA

    torch.set_num_threads(2)
    out_dir = tmp_path / "demo"
    assert main(["demo", "--out", str(out_dir)]) == 0
    scores = pd.read_csv(out_dir / "protocol_scores.csv").set_index(["task", "method"])
    suica, mean = scores.loc[("spatial", "suica")], scores.loc[("spatial", "mean")]
    assert suica["mse"] < mean["mse"] and suica["pearson_gene"] > 0.1
    for name in (
        "maps_measured_vs_suica.png",
        "suica_grid_2x.png",
        "vq/neighbourhoods.png",
        "vq/code_map.png",
    ):
        assert (out_dir / name).stat().st_size > 10_000, name
    model = SUICA.load(out_dir / "suica_model")
    assert model.is_fitted and model.n_genes == 305
    report = (out_dir / "report.md").read_text()
    assert "## Continuous field (SUICA)" in report and "## Discrete codes" in report
