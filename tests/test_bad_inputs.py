"""Every bad input gets a clear error: what is wrong, where, and the fix (issue #7).

One table of cases across readers, ``pp``, ``tl`` and the models: each must raise a
``ValueError`` / ``FileNotFoundError`` raised by stfield itself (not from deep inside torch,
h5py or pyarrow) whose message names the problem, the place and the fix. A second table runs
the same kind of mistakes through the CLI: one line on stderr, exit status 2, no output left.
"""

from __future__ import annotations

import json
import shutil
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from slices import make_smooth_slice, make_transcripts
from stfield import io, pp, tl
from stfield.cli import main as cli_main
from stfield.datasets import xenium_breast_path
from stfield.models.suica import SUICA

FIX = "Fix:"


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Bad and good files shared by the cases (written once)."""
    d = tmp_path_factory.mktemp("bad_inputs")
    good = make_smooth_slice(n_side=6, n_genes=8)
    out = {"dir": d, "good_h5ad": d / "good.h5ad"}
    good.write_h5ad(out["good_h5ad"])
    raw = out["good_h5ad"].read_bytes()
    out["truncated_h5ad"] = d / "truncated.h5ad"
    out["truncated_h5ad"].write_bytes(raw[: len(raw) // 2])
    out["garbage_h5ad"] = d / "garbage.h5ad"
    out["garbage_h5ad"].write_bytes(b"this is not an HDF5 file\n" * 10)
    parquet = xenium_breast_path().read_bytes()
    out["truncated_parquet"] = d / "transcripts.parquet"
    out["truncated_parquet"].write_bytes(parquet[: len(parquet) // 3])
    out["garbage_parquet"] = d / "garbage.parquet"
    out["garbage_parquet"].write_bytes(b"PAR1 but not really")
    nan = good.copy()
    nan.obsm["spatial"] = nan.obsm["spatial"].copy()
    nan.obsm["spatial"][3, 0] = np.nan
    out["nan_h5ad"] = d / "nan_coords.h5ad"
    nan.write_h5ad(out["nan_h5ad"])
    tx = pd.DataFrame({"gene": ["A", "B"] * 50, "xx": np.arange(100.0), "y": np.arange(100.0)})
    out["misnamed_csv"] = d / "misnamed.csv"
    tx.to_csv(out["misnamed_csv"], index=False)
    out["wrong_dim_csv"] = d / "q.csv"
    pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}).to_csv(out["wrong_dim_csv"], index=False)
    out["unknown_format"] = d / "table.xyz"
    out["unknown_format"].write_text("gene,x,y\nA,1,2\n")
    return out


@pytest.fixture(scope="module")
def fitted(files) -> tuple[SUICA, Path]:
    adata = ad.read_h5ad(files["good_h5ad"])
    model = SUICA("siren", backbone_kwargs={"width": 16, "depth": 1}, seed=0)
    model.fit(
        adata.X,
        adata.obsm["spatial"],
        gene_names=list(adata.var_names),
        preset="fast",
        epochs_gae=1,
        epochs_inr=1,
        epochs_decoder=1,
        progress=False,
    )
    path = files["dir"] / "model"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def vq_model(files):
    tx = make_transcripts()
    model = tl.vq_fit(
        tx,
        pixel_size=2.0,
        tile=32,
        codebook_size=16,
        dim=8,
        hidden=8,
        epochs=1,
        batch_size=2,
        accelerator="cpu",
        progress=False,
    )
    path = files["dir"] / "vq_model"
    model.save(path)
    return model, path


def _slice(**changes) -> ad.AnnData:
    adata = make_smooth_slice(n_side=6, n_genes=8)
    for key, value in changes.items():
        if key == "X":
            adata.X = value
        elif key == "spatial":
            adata.obsm["spatial"] = value
        elif key == "obs_names":
            adata.obs_names = value
        elif key == "var_names":
            adata.var_names = value
    return adata


def _fit(adata: ad.AnnData, **kw) -> None:
    opts = {"preset": "fast", "epochs_gae": 1, "epochs_inr": 1, "epochs_decoder": 1}
    tl.fit_suica(adata, progress=False, **{**opts, **kw})


def _coords_nan() -> np.ndarray:
    c = _slice().obsm["spatial"].copy()
    c[5, 1] = np.nan
    return c


def _coords_inf() -> np.ndarray:
    c = _slice().obsm["spatial"].copy()
    c[2, 0] = np.inf
    return c


def _negative() -> sp.csr_matrix:
    X = _slice().X.toarray()
    X[0, 0] = -1
    return sp.csr_matrix(X)


def _dup(names: list[str]) -> list[str]:
    return [names[0], *names[:-1]]


def _bump_format_version(path: Path) -> Path:
    meta = path / "config.json"
    doc = json.loads(meta.read_text())
    doc["format_version"] = 99
    meta.write_text(json.dumps(doc))
    return path


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------- the table
# (id, call(files, fitted, vq_model, tmp_path), exception, fragments the message must contain)
Case = tuple[str, Callable, type, tuple[str, ...]]
CASES: list[Case] = [
    ("nan_coordinates", lambda f, m, v, t: _fit(_slice(spatial=_coords_nan())),
     ValueError, ("NaN or inf", "obsm['spatial']", "row 5", FIX)),
    ("inf_coordinates_graph", lambda f, m, v, t: pp.spatial_neighbors(_coords_inf()),
     ValueError, ("NaN or inf", "row 2", FIX)),
    ("negative_counts", lambda f, m, v, t: _fit(_slice(X=_negative())),
     ValueError, ("negative values", "adata (X)", FIX)),
    ("non_numeric_matrix", lambda f, m, v, t: SUICA().fit(
        np.array([["a", "b"]] * 6, dtype=object), np.zeros((6, 2))),
     ValueError, ("non-numeric", "X", FIX)),
    ("nan_counts", lambda f, m, v, t: pp.filter_slice(
        _slice(X=sp.csr_matrix(np.full((36, 8), np.nan, dtype=np.float32)))),
     ValueError, ("NaN/inf value", FIX)),
    ("duplicated_barcodes",
     lambda f, m, v, t: _fit(_slice(obs_names=_dup([f"s{i}" for i in range(36)]))),
     ValueError, ("duplicated spot name", "s0", "obs_names_make_unique")),
    ("duplicated_genes",
     lambda f, m, v, t: _fit(_slice(var_names=_dup([f"g{i}" for i in range(8)]))),
     ValueError, ("duplicated gene name", "g0", "var_names_make_unique")),
    ("coordinates_count_mismatch",
     lambda f, m, v, t: SUICA().fit(_slice().X, _slice().obsm["spatial"][:-1]),
     ValueError, ("35 coordinate rows for 36 spots", "coords", FIX)),
    ("coordinates_wrong_shape", lambda f, m, v, t: pp.spatial_neighbors(np.zeros((10, 5))),
     ValueError, ("shape (n, 2 or 3)", FIX)),
    ("empty_after_filtering", lambda f, m, v, t: pp.filter_slice(_slice(), min_spot_counts=1e9),
     ValueError, ("left 0 spots", "min_spot_counts", FIX)),
    ("one_spot", lambda f, m, v, t: _fit(_slice()[:1].copy()),
     ValueError, ("1 spot", FIX)),
    ("all_zero_counts", lambda f, m, v, t: _fit(_slice(X=sp.csr_matrix((36, 8), dtype=np.float32))),
     ValueError, ("all counts are zero", "36 spots", FIX)),
    ("transcripts_missing_column", lambda f, m, v, t: io.read_transcripts(f["misnamed_csv"]),
     ValueError, ("misnamed.csv", "columns found", "'xx'", "columns=")),
    ("transcripts_not_a_table", lambda f, m, v, t: pp.bin_transcripts(_slice(), 10.0),
     ValueError, ("DataFrame", "read_transcripts")),
    ("bin_size_not_positive", lambda f, m, v, t: pp.bin_transcripts(make_transcripts(), 0.0),
     ValueError, ("bin size", "positive", FIX)),
    ("truncated_h5ad", lambda f, m, v, t: io.read(f["truncated_h5ad"]),
     ValueError, ("truncated.h5ad", "h5ad", FIX)),
    ("garbage_h5ad", lambda f, m, v, t: io.read(f["garbage_h5ad"]),
     ValueError, ("garbage.h5ad", FIX)),
    ("truncated_parquet", lambda f, m, v, t: io.read_transcripts(f["truncated_parquet"]),
     ValueError, ("transcripts.parquet", "parquet", FIX)),
    ("garbage_parquet", lambda f, m, v, t: io.read_transcripts(f["garbage_parquet"]),
     ValueError, ("garbage.parquet", FIX)),
    ("path_does_not_exist", lambda f, m, v, t: io.read(t / "nowhere.h5ad"),
     FileNotFoundError, ("nowhere.h5ad", "no such file", FIX)),
    ("unknown_format", lambda f, m, v, t: io.read(f["unknown_format"]),
     ValueError, ("table.xyz", "format", FIX)),
    ("model_from_other_format_version",
     lambda f, m, v, t: SUICA.load(_bump_format_version(_copy_model(m[1], t / "m99"))),
     ValueError, ("format version 99", "m99", FIX)),
    ("foreign_file_as_model", lambda f, m, v, t: SUICA.load(f["good_h5ad"]),
     ValueError, ("good.h5ad", "not a model directory", FIX)),
    ("model_of_another_kind", lambda f, m, v, t: SUICA.load(v[1]),
     ValueError, ("vq_model", "'hvqvae' model", FIX)),
    ("predict_wrong_dimension", lambda f, m, v, t: m[0].predict(np.zeros((4, 3))),
     ValueError, ("2-D", "coords", FIX)),
    ("predict_nan_query", lambda f, m, v, t: m[0].predict(np.array([[0.0, np.nan]])),
     ValueError, ("NaN or inf", "coords", FIX)),
    ("grid_step_zero", lambda f, m, v, t: m[0].render_grid(0),
     ValueError, ("grid step", "step_um", FIX)),
    ("grid_step_negative", lambda f, m, v, t: m[0].render_grid(-5.0),
     ValueError, ("grid step", "-5", FIX)),
    ("grid_too_large", lambda f, m, v, t: m[0].render_grid(1e-4),
     ValueError, ("points", "step_um", FIX)),
    ("model_genes_differ", lambda f, m, v, t: tl.denoise(
        _slice(var_names=[f"other{i}" for i in range(8)]), m[0]),
     ValueError, ("differ", "model", FIX)),
    ("codebook_larger_than_positions", lambda f, m, v, t: tl.vq_fit(
        make_transcripts(300), pixel_size=4.0, tile=16, codebook_size=8192, epochs=1,
        accelerator="cpu", progress=False),
     ValueError, ("codebook_size", "8192", "positions", FIX)),
    ("genes_the_model_lacks", lambda f, m, v, t: tl.vq_gene_attribution(
        v[0], make_transcripts(), genes=["NOT_A_GENE"], accelerator="cpu"),
     ValueError, ("NOT_A_GENE", "genes", FIX)),
    ("settings_exceed_memory", lambda f, m, v, t: tl.vq_fit(
        make_transcripts(), pixel_size=0.01, tile=16384, batch_size=64, epochs=1,
        accelerator="cpu", progress=False),
     ValueError, ("GiB", "memory", "batch_size", FIX)),
    ("patience_without_validation", lambda f, m, v, t: _fit(_slice(), blend="none", patience=5),
     ValueError, ("validation", "val_fraction", FIX)),
    ("missing_spatial", lambda f, m, v, t: _fit(ad.AnnData(_slice().X)),
     ValueError, ("obsm['spatial'] is missing", FIX)),
    ("missing_layer", lambda f, m, v, t: _fit(_slice(), layer="raw"),
     ValueError, ("layer 'raw' not found", FIX)),
    ("unknown_option", lambda f, m, v, t: _fit(_slice(), epochs_gea=3),
     ValueError, ("epochs_gea", FIX)),
]  # fmt: skip


def _raised_by_stfield(exc: BaseException) -> bool:
    """The innermost frame of the traceback is stfield code, not torch/h5py/pyarrow."""
    frames = traceback.extract_tb(exc.__traceback__)
    return "stfield" in frames[-1].filename


def test_table_has_at_least_25_cases():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("case", "call", "exc", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, exc, fragments, files, fitted, vq_model, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc) as info:
            call(files, fitted, vq_model, tmp_path)
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, f"{case}: {fragment!r} not in {msg!r}"
    assert _raised_by_stfield(info.value), f"{case}: raised from {info.traceback[-1].path}"
    assert "\n" not in msg.strip(), f"{case}: message is not one line"


# ------------------------------------------------------------------ warnings
def test_coordinates_that_look_normalised_warn():
    adata = _slice()
    adata.obsm["spatial"] = adata.obsm["spatial"] / 1e4  # spots 0.001 apart: not µm
    with pytest.warns(UserWarning, match="µm"):
        _fit(adata)


def test_coordinates_that_look_like_nanometres_warn():
    tx = make_transcripts()
    tx["x"] *= 1e4
    tx["y"] *= 1e4  # a 1.28 m slide
    with pytest.warns(UserWarning, match="µm"):
        pp.bin_transcripts(tx, 10.0)


def test_plausible_coordinates_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        pp.bin_transcripts(make_transcripts(), 10.0)


# ----------------------------------------------------------------------- CLI
# (id, argv(files, model_dir, out) , output path that must not exist afterwards, fragment)
CLI_CASES = [
    ("fit_missing_input", lambda f, m, o: ["fit", str(f["dir"] / "no.h5ad"), "--out", str(o)],
     "no.h5ad"),
    ("fit_truncated_h5ad", lambda f, m, o: ["fit", str(f["truncated_h5ad"]), "--out", str(o)],
     "truncated.h5ad"),
    ("fit_nan_coordinates", lambda f, m, o: ["fit", str(f["nan_h5ad"]), "--out", str(o),
                                            "--epochs-gae", "1"], "NaN or inf"),
    ("fit_resume_without_checkpoint", lambda f, m, o: ["fit", str(f["good_h5ad"]), "--out",
                                                      str(o), "--resume"], "no checkpoint"),
    ("predict_grid_step_zero",
     lambda f, m, o: ["predict", str(m), "--out", str(o), "--grid-step", "0"], "grid step"),
    ("predict_wrong_dimension",
     lambda f, m, o: ["predict", str(m), "--out", str(o), "--coords", str(f["wrong_dim_csv"])],
     "coordinate columns"),
    ("predict_foreign_model",
     lambda f, m, o: ["predict", str(f["good_h5ad"]), "--out", str(o), "--grid-step", "5"],
     "good.h5ad"),
    ("info_truncated_parquet", lambda f, m, o: ["info", str(f["truncated_parquet"])],
     "transcripts.parquet"),
    ("benchmark_missing_input",
     lambda f, m, o: ["benchmark", str(f["dir"] / "none.h5ad"), "--out", str(o)], "none.h5ad"),
    ("vq_fit_misnamed_columns",
     lambda f, m, o: ["vq", "fit", str(f["misnamed_csv"]), "--out", str(o)], "columns found"),
    ("vq_fit_bad_column_map",
     lambda f, m, o: ["vq", "fit", str(f["misnamed_csv"]), "--out", str(o), "--columns", "x"],
     "--columns"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "argv", "fragment"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_one_line_exit_2(case, argv, fragment, files, fitted, tmp_path, capsys):
    out = tmp_path / "out"
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = cli_main(argv(files, fitted[1], out))
    err = capsys.readouterr().err.strip()
    assert rc == 2, f"{case}: exit {rc}, stderr {err!r}"
    assert len(err.splitlines()) == 1, f"{case}: {err!r}"
    assert fragment in err, f"{case}: {fragment!r} not in {err!r}"
    assert "Traceback" not in err
    assert not out.exists(), f"{case}: {out} was left behind"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temp left behind"
