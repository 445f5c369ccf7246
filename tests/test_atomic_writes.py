"""Outputs are written atomically: a write that fails midway leaves nothing half-written.

Each test lets the real writer put some bytes on disk, then fails it (an ``OSError`` as a full
disk would raise, or SIGKILL in a child process) and checks that the target either does not
exist or still holds its previous, complete content.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from slices import make_smooth_slice
from stfield._utils import write_h5ad
from stfield.bench.harness import run_benchmark
from stfield.cli import main as cli_main
from stfield.models import _io as model_io
from stfield.models.suica import SUICA


def _disk_full(*_args, **_kwargs):
    raise OSError(28, "No space left on device")


def _half_then_fail(path_arg: int = 0):
    """A writer that puts half a file at its path argument, then fails like a full disk."""

    def writer(*args, **kwargs):
        target = Path(args[path_arg])
        target.write_bytes(b"\x89HDF partial" * 100)
        _disk_full()

    return writer


def _only(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> tuple[SUICA, ad.AnnData]:
    adata = make_smooth_slice(n_side=6, n_genes=8)
    m = SUICA("siren", backbone_kwargs={"width": 16, "depth": 1}, seed=0)
    m.fit(
        adata.X,
        adata.obsm["spatial"],
        preset="fast",
        epochs_gae=1,
        epochs_inr=1,
        epochs_decoder=1,
        progress=False,
    )
    return m, adata


def test_h5ad_write_failing_midway_leaves_nothing(tmp_path, monkeypatch):
    adata = make_smooth_slice(n_side=4, n_genes=3)
    monkeypatch.setattr(ad.AnnData, "write_h5ad", lambda self, p, **k: _half_then_fail()(p))
    with pytest.raises(OSError, match="No space"):
        write_h5ad(adata, tmp_path / "out.h5ad")
    assert _only(tmp_path) == []


def test_h5ad_overwrite_failing_keeps_the_old_file(tmp_path, monkeypatch):
    old = make_smooth_slice(n_side=4, n_genes=3)
    target = write_h5ad(old, tmp_path / "out.h5ad")
    before = target.read_bytes()
    monkeypatch.setattr(ad.AnnData, "write_h5ad", lambda self, p, **k: _half_then_fail()(p))
    with pytest.raises(OSError):
        write_h5ad(make_smooth_slice(n_side=5, n_genes=3), target)
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["out.h5ad"]


def test_model_dir_failing_midway_leaves_nothing_or_the_old_model(tmp_path, monkeypatch, model):
    m, adata = model
    target = tmp_path / "model"
    # config.json is already written when the weights fail.
    with monkeypatch.context() as mp:
        mp.setattr(model_io, "save_file", _half_then_fail(path_arg=1))
        with pytest.raises(OSError):
            m.save(target)
    assert _only(tmp_path) == []

    m.save(target)
    expected = m.predict(adata.obsm["spatial"])
    with monkeypatch.context() as mp:
        mp.setattr(model_io.np, "savez", _half_then_fail())
        with pytest.raises(OSError):
            m.save(target)
    assert _only(tmp_path) == ["model"]
    np.testing.assert_array_equal(SUICA.load(target).predict(adata.obsm["spatial"]), expected)


def test_model_dir_killed_while_saving_leaves_no_model(tmp_path, model):
    """SIGKILL between the config and the weights: no cleanup runs, yet no model dir appears."""
    m, _ = model
    src = tmp_path / "ok"
    m.save(src)
    script = textwrap.dedent(
        f"""
        import os, signal
        from stfield.models import _io
        from stfield.models.suica import SUICA
        def killed(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        _io.save_file = killed
        SUICA.load({str(src)!r}).save({str(tmp_path / "model")!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (tmp_path / "model").exists()
    # Only a hidden temporary folder may remain, never something at the target name.
    assert all(name == "ok" or name.startswith(".model.") for name in _only(tmp_path))


def test_report_failing_midway_leaves_no_partial_table(tmp_path, monkeypatch):
    adata = make_smooth_slice(n_side=8, n_genes=6)
    real_to_csv = pd.DataFrame.to_csv

    def half_csv(self, path=None, **kwargs):
        text = real_to_csv(self, None, **kwargs)
        Path(path).write_text(text[: len(text) // 2])
        _disk_full()

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_csv)
    with pytest.raises(OSError):
        run_benchmark(adata, tmp_path / "bench", tasks="spatial", methods="mean", seeds=[0],
                      progress=False)  # fmt: skip
    assert not (tmp_path / "bench" / "results.csv").exists()
    leftovers = [p for p in (tmp_path / "bench").rglob("*") if p.name.startswith(".results")]
    assert leftovers == []


def test_cli_predict_disk_full_is_one_line_and_no_file(tmp_path, monkeypatch, model, capsys):
    m, _ = model
    m.save(tmp_path / "model")
    monkeypatch.setattr(ad.AnnData, "write_h5ad", lambda self, p, **k: _half_then_fail()(p))
    out = tmp_path / "pred.h5ad"
    rc = cli_main(["predict", str(tmp_path / "model"), "--out", str(out), "--grid-step", "20"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "No space left" in err
    assert not out.exists()
    assert _only(tmp_path) == ["model"]
    assert os.listdir(tmp_path / "model")  # the model itself untouched
