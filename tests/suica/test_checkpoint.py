"""Checkpoint and resume of SUICA fits: a killed fit resumes to the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from suica_helpers import make_field

from stfield.models import SUICA
from stfield.train.checkpoint import CHECKPOINT_FILE, Checkpointer

EPOCHS = {"epochs_gae": 6, "epochs_inr": 12, "epochs_decoder": 12}
MODEL = {"backbone": "siren", "backbone_kwargs": {"width": 32, "depth": 2}, "seed": 3}


def _fit(ckpt: Path | None = None, resume: bool = False, **kw) -> SUICA:
    adata, _ = make_field(n_side=10, n_genes=12)
    model = SUICA(MODEL["backbone"], backbone_kwargs=MODEL["backbone_kwargs"], seed=MODEL["seed"])
    model.fit(
        adata.X,
        adata.obsm["spatial"],
        preset="fast",
        progress=False,
        checkpoint_dir=ckpt,
        checkpoint_every=kw.pop("checkpoint_every", 4),
        resume=resume,
        **EPOCHS,
        **kw,
    )
    return model


def _same_weights(a: SUICA, b: SUICA) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=1e-6, msg=key)
    assert a.history.keys() == b.history.keys()
    for stage in a.history:
        np.testing.assert_allclose(a.history[stage], b.history[stage], rtol=1e-6, err_msg=stage)


@pytest.fixture(scope="module")
def uninterrupted() -> SUICA:
    # Same thread count as the tests (conftest sets 1 per test): reductions must run in the
    # same order for the weights to agree to the last bit.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit()
    finally:
        torch.set_num_threads(before)


class _Stop(Exception):
    pass


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, n_writes: int) -> None:
    """Make the n-th checkpoint write raise right after the file is on disk."""
    real = Checkpointer._write
    calls = {"n": 0}

    def write(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n_writes:
            raise _Stop

    monkeypatch.setattr(Checkpointer, "_write", write)


@pytest.mark.parametrize("n_writes", [1, 3, 6])  # inside GAE, inside INR, inside decoder
def test_resume_matches_uninterrupted(tmp_path, monkeypatch, uninterrupted, n_writes):
    with monkeypatch.context() as m:
        _interrupt_after(m, n_writes)
        with pytest.raises(_Stop):
            _fit(tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    resumed = _fit(tmp_path, resume=True)
    _same_weights(resumed, uninterrupted)


def test_resume_with_early_stopping(tmp_path, monkeypatch):
    kw = {"val_fraction": 0.2, "patience": 3}
    reference = _fit(**kw)
    with monkeypatch.context() as m:
        _interrupt_after(m, 4)
        with pytest.raises(_Stop):
            _fit(tmp_path, **kw)
    resumed = _fit(tmp_path, resume=True, **kw)
    _same_weights(resumed, reference)


def test_killed_subprocess_resumes_to_same_state(tmp_path, uninterrupted):
    """SIGKILL (no cleanup at all) right after the 4th checkpoint, then resume here."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import torch
        torch.set_num_threads(1)
        sys.path[:0] = [{str(Path(__file__).parents[1])!r}, {str(Path(__file__).parent)!r}]
        from stfield.train.checkpoint import Checkpointer
        from test_checkpoint import _fit
        real = Checkpointer._write
        n = [0]
        def write(self, *a, **k):
            real(self, *a, **k)
            n[0] += 1
            if n[0] == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        Checkpointer._write = write
        _fit({str(tmp_path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert (tmp_path / CHECKPOINT_FILE).exists()
    assert not [p for p in os.listdir(tmp_path) if p != CHECKPOINT_FILE]  # no temp left over
    resumed = _fit(tmp_path, resume=True)
    _same_weights(resumed, uninterrupted)
    coords = np.random.default_rng(0).uniform(0, 90, size=(50, 2))
    np.testing.assert_allclose(resumed.predict(coords), uninterrupted.predict(coords), atol=1e-5)


def test_resume_refuses_other_data(tmp_path):
    _fit(tmp_path)
    adata, _ = make_field(n_side=10, n_genes=12, seed=1)
    model = SUICA(MODEL["backbone"], backbone_kwargs=MODEL["backbone_kwargs"], seed=MODEL["seed"])
    with pytest.raises(ValueError, match="other data or settings"):
        model.fit(
            adata.X,
            adata.obsm["spatial"],
            preset="fast",
            progress=False,
            checkpoint_dir=tmp_path,
            resume=True,
            **EPOCHS,
        )
    assert not model.is_fitted


def test_resume_of_finished_fit_trains_nothing(tmp_path, uninterrupted):
    _fit(tmp_path)
    resumed = _fit(tmp_path, resume=True, checkpoint_every=0)
    _same_weights(resumed, uninterrupted)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the checkpoint"):
        _fit(tmp_path, resume=True)


def test_resume_needs_a_folder():
    with pytest.raises(ValueError, match="checkpoint_dir"):
        _fit(None, resume=True)


def test_nan_loss_names_stage_epoch_and_last_checkpoint(tmp_path):
    with pytest.raises(ValueError) as info:
        _fit(tmp_path, lr_inr=1e30)  # SIREN at lr 1e30 overflows within a few epochs
    msg = str(info.value)
    assert "stage 'inr'" in msg and "epoch" in msg
    assert CHECKPOINT_FILE in msg and "resume" in msg
