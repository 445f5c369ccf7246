"""VQ-VAE fits resume from their checkpoint; a shard folder is accepted by `vq fit`."""

from __future__ import annotations

import pytest
import torch

import stfield.train.vq as train_vq
from slices import make_transcripts
from stfield import tl
from stfield.cli import main as cli_main
from stfield.data.shards import write_tile_shards
from stfield.models.hvqvae import VQModel

OPTS = {
    "pixel_size": 2.0,
    "tile": 32,
    "codebook_size": 16,
    "dim": 8,
    "hidden": 8,
    "epochs": 4,
    "batch_size": 2,
    "accelerator": "cpu",
    "progress": False,
    "checkpoint_every": 1,
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _weights(model: VQModel) -> dict[str, torch.Tensor]:
    return model.network.state_dict()


def test_interrupted_vq_fit_resumes_to_the_same_model(tmp_path, monkeypatch):
    tx = make_transcripts(extent=200.0)
    reference = tl.vq_fit(tx, out=tmp_path / "ref", **OPTS)

    class Interrupted(Exception):
        pass

    real, calls = train_vq._save_train_state, []

    def save(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted

    with monkeypatch.context() as m:
        m.setattr(train_vq, "_save_train_state", save)
        with pytest.raises(Interrupted):
            tl.vq_fit(tx, out=tmp_path / "m", **OPTS)
    assert not (tmp_path / "m").exists()
    assert (tmp_path / "m_checkpoints" / train_vq.TRAIN_STATE).exists()

    resumed = tl.vq_fit(tx, out=tmp_path / "m", resume=True, **OPTS)
    for key, value in _weights(reference).items():
        torch.testing.assert_close(_weights(resumed)[key], value, rtol=0, atol=1e-6, msg=key)
    assert len(resumed.history) == OPTS["epochs"]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]

    other = make_transcripts(seed=1, extent=200.0)
    with pytest.raises(ValueError, match="other tiles or settings"):
        tl.vq_fit(other, out=tmp_path / "m", resume=True, **OPTS)


def test_resume_without_state_is_a_clear_error(tmp_path, capsys):
    tx = make_transcripts(extent=200.0)
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    argv = ["vq", "fit", str(path), "--out", str(tmp_path / "m"), "--resume"]
    argv += ["--pixel-size", "2", "--tile", "32", "--codebook-size", "16", "--dim", "8"]
    rc = cli_main([*argv, "--accelerator", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "no training state to resume from" in err


def test_vq_fit_reads_a_shard_folder(tmp_path, capsys):
    tx = make_transcripts(extent=200.0)
    store = write_tile_shards(tx, tmp_path / "shards", tile_um=64.0)
    model = tl.vq_fit(store, **{**OPTS, "checkpoint_every": 0, "epochs": 1})
    assert model.genes == sorted(tx["gene"].unique())
    argv = ["vq", "fit", str(tmp_path / "shards"), "--out", str(tmp_path / "m")]
    argv += ["--pixel-size", "2", "--tile", "32", "--codebook-size", "16", "--dim", "8"]
    argv += ["--epochs", "1", "--batch-size", "2", "--accelerator", "cpu"]
    assert cli_main(argv) == 0, capsys.readouterr().err
    assert VQModel.load(tmp_path / "m").genes == model.genes
    capsys.readouterr()
    assert cli_main([*argv, "--columns", "gene=g,x=x,y=y"]) == 2
    assert "shard folder" in capsys.readouterr().err
