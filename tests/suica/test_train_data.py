"""Losses, the stage runner and CSR batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from stfield.data.csr import CSRRows, GraphBatcher, as_csr, batch_indices
from stfield.train.loop import run_stage
from stfield.train.losses import dice_loss, l1_mse_loss, mse_nonzero_loss, suica_decoder_loss


def test_losses_match_their_definitions():
    pred = torch.tensor([[0.0, 2.0, 0.5], [1.0, 0.0, 3.0]])
    target = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    torch.testing.assert_close(mse_nonzero_loss(pred, target), torch.tensor((1 + 1 + 0) / 3))
    s = torch.tanh(pred)
    y = (target > 0).float()
    dice = 1 - (2 * (s * y).sum() + 1) / (s.sum() + y.sum() + 1)
    torch.testing.assert_close(dice_loss(pred, target), dice)
    l1 = (pred - target).abs().mean()
    torch.testing.assert_close(l1_mse_loss(pred, target), l1 + ((pred - target) ** 2).mean())
    torch.testing.assert_close(
        suica_decoder_loss(pred, target, 0.01), mse_nonzero_loss(pred, target) + l1 + 0.01 * dice
    )
    assert mse_nonzero_loss(pred, torch.zeros_like(target)).item() == 0.0
    # A perfect zero map gives a Dice loss near 0.
    assert dice_loss(10 * y, target).item() < 0.01


def test_run_stage_nan_guard_names_stage_and_epoch():
    values = iter([1.0, 0.5, math.nan])
    with pytest.raises(ValueError, match=r"decoder.*epoch 3"):
        run_stage("decoder", lambda e: next(values), 5, progress=False)


def test_run_stage_early_stopping_restores_best():
    module = torch.nn.Linear(1, 1)
    vals = iter([3.0, 1.0, 2.0, 2.5, 2.7, 0.1])

    def epoch_fn(epoch: int) -> float:
        with torch.no_grad():
            module.weight.fill_(float(epoch))
        return 1.0

    hist = run_stage(
        "x", epoch_fn, 6, val_fn=lambda: next(vals), patience=3, modules=[module], progress=False
    )
    assert hist.stopped_early and len(hist.loss) == 5 and hist.best_epoch == 1
    assert module.weight.item() == 1.0
    with pytest.raises(ValueError, match="validation"):
        run_stage("x", epoch_fn, 2, patience=2, progress=False)


def test_batch_indices_seeded_and_merges_tiny_tail():
    idx = np.arange(11)
    a = batch_indices(idx, 5, shuffle=True, rng=np.random.default_rng(0))
    b = batch_indices(idx, 5, shuffle=True, rng=np.random.default_rng(0))
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.size for x in a] == [5, 6]  # a 1-row tail is merged (BatchNorm)
    assert sorted(np.concatenate(a).tolist()) == idx.tolist()
    assert [x.size for x in batch_indices(idx, None, shuffle=False)] == [11]


def test_csr_rows_dense_per_batch():
    X = sp.random(30, 7, density=0.2, format="csr", random_state=0, dtype=np.float32)
    ds = CSRRows(X, coords=np.arange(60).reshape(30, 2))
    x, c = ds[np.array([3, 1])]
    np.testing.assert_array_equal(x.numpy(), X[[3, 1]].toarray())
    np.testing.assert_array_equal(c.numpy(), [[6, 7], [2, 3]])
    seen = np.concatenate([rows for rows, _, _ in ds.batches(8, rng=np.random.default_rng(0))])
    assert sorted(seen.tolist()) == list(range(30))


def test_graph_batcher_subgraph_gives_exact_convolution():
    rng = np.random.default_rng(0)
    A = sp.random(40, 40, density=0.1, format="csr", random_state=1, dtype=np.float32)
    A = as_csr(A + sp.eye(40, dtype=np.float32))
    H = rng.normal(size=(40, 3)).astype(np.float32)
    targets = np.array([5, 17, 2, 33])
    nodes, block = GraphBatcher(A).block(targets)
    assert set(targets) <= set(nodes.tolist())  # every target aggregates itself (self-loops)
    assert block.shape == (4, nodes.size)
    np.testing.assert_allclose(block @ H[nodes], (A @ H)[targets], rtol=1e-5, atol=1e-6)
