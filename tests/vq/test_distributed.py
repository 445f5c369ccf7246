"""Data-parallel VQ-VAE training: 2 CPU processes (gloo) against 1 (issue 6, item 3).

The 2-process run is started by :func:`stfield.train.distributed.launch` (what
``stfield vq fit --devices 2`` does): two spawned processes with the ``torchrun`` environment
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` on a free port) that join through
:func:`stfield.train.distributed.init_process_group`. The 1-process reference is a process group
of one with the same *global* batch (1 x 4 tiles against 2 x 2): both then draw the same global
batches (DistributedSampler order, seeded by ``(seed, epoch)``) with the same augmentations. A
plain process without a group keeps the original single-process order; the other tests in
``tests/vq`` cover that path, unchanged.

Tolerances: the runs differ only in float summation order (per-rank partial sums, then
all-reduced). After 2 epochs x 4 steps the metrics agree to ~1e-7 and the weights and codebooks
to ~1e-6 (relative); the checks use ``rtol = atol = 1e-4``. Across the ranks of one run,
weights, BatchNorm statistics and codebooks must be bit-identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="this torch build has no torch.distributed gloo backend",
)

GLOBAL_BATCH = 4
#: Longest wait for the other rank (a failed rank must not hang the suite).
TIMEOUT_S = 120
TOL = {"rtol": 1e-4, "atol": 1e-4}
#: "exact": no random draws inside the quantiser (uniform codebook init, no dead-code restarts),
#: so 1 and 2 processes must agree numerically. "library": k-means init and dead-code restarts,
#: which the library draws across ranks (``sync_kmeans``): the ranks must agree with each other.
#: ``max_elements=4096`` sends branch M=0 through the chunked search and M=1 through the
#: library's own forward, so both EMA code paths are exercised.
CONFIGS = {
    "exact": {"kmeans_init": False, "threshold_ema_dead_code": 0.0},
    "library": {"kmeans_init": True, "threshold_ema_dead_code": 2.0},
}


def _model(index, **kw):
    from stfield.models.hvqvae import HVQVAE, HVQVAEConfig

    cfg = dict(codebook_size=16, dim=4, hidden=8, branches=(0, 1), max_elements=4096)
    cfg.update(kw)
    return HVQVAE(HVQVAEConfig(index.n_channels, index.n_genes + 1, **cfg))


def _probe(rank: int, world: int) -> dict[str, np.ndarray]:
    """One training step of a lone quantiser on rank-specific vectors: the EMA statistics on
    every rank must be the update computed from *all* ranks' vectors."""
    from stfield.models.hvqvae import BranchQuantizer, HVQVAEConfig

    out: dict[str, np.ndarray] = {}
    for path, max_elements in (("library", 2**24), ("chunked", 64)):
        torch.manual_seed(0)  # the same initial codebook everywhere
        cfg = HVQVAEConfig(4, 1, codebook_size=8, dim=3, decay=0.5, kmeans_init=False)
        q = BranchQuantizer(HVQVAEConfig(**{**cfg.to_dict(), "max_elements": max_elements}))
        q.vq._codebook.threshold_ema_dead_code = 0  # no restarts: the update is the EMA alone
        q.vq._codebook.has_dead_code_replacement = False
        q.train()
        g = torch.Generator().manual_seed(100 + rank)
        z = torch.randn(2, 3, 4, 4, generator=g)  # (B, D, H, W): different on every rank
        for synced in (True, False):
            q.sync(synced)
            keys = ("cluster_size", "embed_avg", "embed")
            before = {k: getattr(q.vq._codebook, k).clone() for k in keys}
            _, codes, _ = q(z)
            flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
            out[f"{path}_{synced}_cluster_size"] = q.vq._codebook.cluster_size.numpy().copy()
            out[f"{path}_{synced}_embed_avg"] = q.vq._codebook.embed_avg.numpy().copy()
            out[f"{path}_{synced}_codes"] = codes.flatten().numpy()
            out[f"{path}_{synced}_x"] = flat.numpy()
            out[f"{path}_before_cluster_size"] = before["cluster_size"].numpy()
            out[f"{path}_before_embed_avg"] = before["embed_avg"].numpy()
            for k, v in before.items():  # restart from the same state for the unsynced step
                getattr(q.vq._codebook, k).copy_(v)
    return out


def _train_all(transcripts) -> dict:
    """This rank's part of the experiment (the process group is already initialised)."""
    from stfield.data.raster import RasterConfig, TileIndex
    from stfield.train import distributed as du
    from stfield.train.vq import VQTrainConfig, train_model

    ctx = du.context()
    assert ctx is not None
    index = TileIndex(transcripts, RasterConfig(pixel_size=1.0, tile=16, n_freqs=2))
    result: dict = {"world": ctx.world_size, "rank": ctx.rank}
    for name, kw in CONFIGS.items():
        torch.manual_seed(0)
        net = _model(index, **kw)
        cfg = VQTrainConfig(
            epochs=2,
            batch_size=GLOBAL_BATCH // ctx.world_size,
            lr=3e-3,
            seed=0,
            progress=False,
            accelerator="cpu",
        )
        res = train_model(net, index, cfg)
        result[name] = {
            "history": res["history"],
            "distributed": res["distributed"],
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
            "synced_after": [q.synced for q in net.quantizers],
            "bn_classes": sorted(
                {type(m).__name__ for m in net.modules() if "Norm" in type(m).__name__}
            ),
        }
    result["probe"] = _probe(ctx.rank, ctx.world_size)
    return result


def _make_transcripts():
    """This folder's synthetic table (loaded by path: ``tests/conftest.py`` is also a
    ``conftest``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_vq_conftest", Path(__file__).with_name("conftest.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_transcripts()


def _rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    """What torchrun would set for ``rank``."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def _in_process(rank: int, world: int, port: int, transcripts) -> dict:
    """Run one rank in this (pytest) process through the torchrun code path, then leave."""
    from stfield.train import distributed as du

    saved = {k: os.environ.get(k) for k in _rank_env(0, 1, 0)}
    os.environ.update(_rank_env(rank, world, port))
    try:
        du.init_process_group("cpu", timeout_s=TIMEOUT_S)
        try:
            return _train_all(transcripts)
        finally:
            du.destroy_process_group()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rank_worker(out_dir: str) -> None:
    """One rank of the 2-process run (started by :func:`stfield.train.distributed.launch`)."""
    res = _train_all(_make_transcripts())
    torch.save(res, Path(out_dir) / f"rank{res['rank']}.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, transcripts) -> dict[int, list[dict]]:
    """Two spawned gloo processes with 2 tiles a batch each, then a group of one with 4.

    The 2-process run goes through :func:`stfield.train.distributed.launch` (what
    ``stfield vq fit --devices 2`` uses). The group of one runs in this process afterwards,
    through the torchrun environment path: importing torch and stfield costs several CPU-seconds
    per process on the shared cores. (Order matters: in torch 2.13 a process that has used DDP
    in one process group mis-orders collectives when it joins a *later* group with peers; a
    group of one has no peers. Real runs use one group per process.)
    """
    from stfield.train.distributed import free_port, launch

    out = tmp_path_factory.mktemp("ddp")
    launch(_rank_worker, 2, args=(str(out),), accelerator="cpu", timeout_s=TIMEOUT_S)
    two = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    one = _in_process(0, 1, free_port(), transcripts)
    return {1: [one], 2: two}


def test_two_ranks_hold_identical_models_and_codebooks(runs):
    r0, r1 = runs[2]
    for name in CONFIGS:
        s0, s1 = r0[name]["state"], r1[name]["state"]
        assert s0.keys() == s1.keys()
        for k in s0:  # weights, BatchNorm statistics, codebook embed / cluster_size / embed_avg
            assert torch.equal(s0[k], s1[k]), f"{name}: {k} differs between the ranks"
        h0 = [{k: v for k, v in row.items() if k != "seconds"} for row in r0[name]["history"]]
        h1 = [{k: v for k, v in row.items() if k != "seconds"} for row in r1[name]["history"]]
        assert h0 == h1, f"{name}: all-reduced metrics differ between the ranks"
        # afterwards the model is an ordinary single-process one again
        assert r0[name]["synced_after"] == [False, False]
        assert r0[name]["bn_classes"] == ["BatchNorm2d"]
        assert r0[name]["distributed"] == {
            "world_size": 2,
            "backend": "gloo",
            "global_batch_size": GLOBAL_BATCH,
        }
    assert runs[1][0]["exact"]["distributed"]["world_size"] == 1


#: Conv biases that reach a BatchNorm only through linear layers, and the running means that
#: absorb them. Their true gradient is 0 (BatchNorm subtracts the batch mean), so what they get
#: is float noise, which AdamW's ``g / (sqrt(v) + eps)`` turns into steps of +-lr: they differ
#: between any two summation orders. They are checked through the function (outputs) instead.
NULL_SPACE = (
    "encoders.1.0.bias",
    "encoders.1.1.bias",
    "encoders.1.2.running_mean",
    "decoders.1.1.bias",
    "decoders.1.2.running_mean",
)


def _net(transcripts, state: dict | None = None):
    from stfield.data.raster import RasterConfig, TileIndex

    index = TileIndex(transcripts, RasterConfig(pixel_size=1.0, tile=16, n_freqs=2))
    torch.manual_seed(0)
    net = _model(index, **CONFIGS["exact"])
    if state is not None:
        net.load_state_dict(state)
    return net.eval(), index


def test_two_ranks_match_one_process(runs, transcripts):
    (one,) = runs[1]
    two = runs[2][0]
    name = "exact"
    h1, h2 = one[name]["history"], two[name]["history"]
    assert len(h1) == len(h2) == 2
    for a, b in zip(h1, h2, strict=True):  # losses, MSE, SSIM, perplexities (train and val)
        for k in a:
            if k != "seconds":
                assert b[k] == pytest.approx(a[k], rel=TOL["rtol"], abs=TOL["atol"]), k
    s1, s2 = one[name]["state"], two[name]["state"]
    assert s1.keys() == s2.keys()
    for k in s1:  # weights, BatchNorm statistics and the codebooks' embed / EMA statistics
        if k in NULL_SPACE:
            continue
        if s1[k].is_floating_point():
            torch.testing.assert_close(s2[k], s1[k], msg=k, **TOL)
        else:
            assert torch.equal(s2[k], s1[k]), k
    # the two trained models compute the same function (null-space parameters included)
    net1, index = _net(transcripts, s1)
    net2, _ = _net(transcripts, s2)
    x = torch.stack([torch.from_numpy(index.rasterise(i)) for i in range(len(index))])
    with torch.no_grad():
        o1, o2 = net1(x), net2(x)
    torch.testing.assert_close(o2.recon, o1.recon, **TOL)
    agree = np.mean(
        [(a == b).float().mean().item() for a, b in zip(o1.codes, o2.codes, strict=True)]
    )
    assert agree > 0.99
    # not vacuous: training moved weights and codebooks far beyond the tolerance
    init = _net(transcripts)[0].state_dict()
    moved = max(
        (s1[k] - init[k]).abs().max().item()
        for k in init
        if init[k].is_floating_point() and k not in NULL_SPACE
    )
    assert moved > 100 * TOL["atol"]
    # k-means init and dead-code restarts draw at random (differently for 1 and 2 ranks), so
    # the "library" configuration only has to train as well
    v1, v2 = (r["library"]["history"][-1]["val_loss"] for r in (one, two))
    assert v2 == pytest.approx(v1, rel=0.02)


def test_codebook_ema_statistics_are_summed_over_ranks(runs):
    """Evidence that the library's all-reduce is what synchronises the codebooks."""
    p0, p1 = (r["probe"] for r in runs[2])
    for path in ("library", "chunked"):
        decay = 0.5
        codes = np.concatenate([p0[f"{path}_True_codes"], p1[f"{path}_True_codes"]])
        x = np.concatenate([p0[f"{path}_True_x"], p1[f"{path}_True_x"]])
        counts = np.bincount(codes, minlength=8).astype(np.float32)
        sums = np.zeros((8, 3), dtype=np.float64)
        np.add.at(sums, codes, x)
        want_cs = decay * p0[f"{path}_before_cluster_size"][0] + (1 - decay) * counts
        want_ea = decay * p0[f"{path}_before_embed_avg"][0] + (1 - decay) * sums
        for p in (p0, p1):
            np.testing.assert_allclose(p[f"{path}_True_cluster_size"][0], want_cs, rtol=1e-6)
            np.testing.assert_allclose(p[f"{path}_True_embed_avg"][0], want_ea, atol=1e-5)
        # control: without the sync each rank keeps its own statistics
        assert not np.allclose(p0[f"{path}_False_cluster_size"], p1[f"{path}_False_cluster_size"])


def test_cli_fit_under_torchrun_and_devices(tmp_path, transcripts, monkeypatch):
    """`vq fit` joins torchrun's group from the environment; `--devices N` hands the same worker
    to :func:`~stfield.train.distributed.launch` (run for real by the `runs` fixture)."""
    from stfield.cli import main
    from stfield.cli import vq as cli_vq
    from stfield.models.hvqvae import VQModel
    from stfield.train import distributed as du

    src = tmp_path / "tx.parquet"
    transcripts.to_parquet(src)
    out = tmp_path / "model"
    args = ["vq", "fit", str(src), "--out", str(out), "--tile", "16", "--codebook-size", "8"]
    args += ["--dim", "4", "--epochs", "1", "--batch-size", "4", "--accelerator", "cpu"]

    # under torchrun (here a group of one): the CLI joins, trains, rank 0 saves, and leaves
    for k, v in _rank_env(0, 1, du.free_port()).items():
        monkeypatch.setenv(k, v)
    assert main(args) == 0
    assert not du.is_active()
    info = VQModel.load(out).info
    assert info["distributed"] == {"world_size": 1, "backend": "gloo", "global_batch_size": 4}
    # --devices must agree with torchrun's processes on this node: one-line error, exit 2
    assert main([*args, "--devices", "2"]) == 2

    # without torchrun: --devices 2 launches 2 processes running the CLI's worker
    for k in _rank_env(0, 1, 0):
        monkeypatch.delenv(k)
    calls = []
    monkeypatch.setattr(du, "launch", lambda fn, n, **kw: calls.append((fn, n, kw)))
    assert main([*args, "--devices", "2"]) == 0
    ((fn, n, kw),) = calls
    assert fn is cli_vq._fit_worker and n == 2 and kw["accelerator"] == "cpu"
    assert kw["args"][0] == src and kw["args"][2] == out
    assert kw["args"][3]["batch_size"] == 4  # per process
