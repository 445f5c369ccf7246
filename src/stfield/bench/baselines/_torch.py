"""Shared fitting machinery of the neural baselines (vanilla INRs, STAGE)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..._errors import input_error
from ..._utils import resolve_device, seed_everything
from ..._validate import check_coordinates, check_counts
from ...data.csr import as_csr, dense_rows
from ...train.loop import run_minibatch_stage


class CoordinateScaler:
    """Centre coordinates and divide by half the longest side: the slice spans [-1, 1]
    on its longest axis and the aspect ratio is kept (SUICA's convention)."""

    def fit(self, coords: np.ndarray) -> CoordinateScaler:
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        self.center_ = (lo + hi) / 2.0
        half = float(np.max(hi - lo)) / 2.0
        self.scale_ = half if half > 0 else 1.0
        return self

    def transform(self, coords: np.ndarray) -> np.ndarray:
        return ((coords - self.center_) / self.scale_).astype(np.float32)


class TorchBaseline:
    """Fit ``module(coords-or-expression)`` by mini-batches; subclasses define the net and loss.

    Parameters
    ----------
    epochs, lr, batch_size
        Optimisation budget (Adam); ``batch_size=None`` takes full-batch steps.
    seed
        Seeds torch and the batch order: same seed, same fit on CPU.
    accelerator
        ``"auto"`` uses CUDA when present.
    progress
        Show a progress bar.
    """

    name = "torch"

    def __init__(
        self,
        epochs: int = 1000,
        lr: float = 1e-3,
        batch_size: int | None = 512,
        seed: int = 0,
        accelerator: str = "auto",
        progress: bool = False,
    ) -> None:
        if epochs < 1:
            raise input_error(f"epochs must be >= 1, got {epochs}", f"{self.name}.epochs")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.seed, self.accelerator, self.progress = seed, accelerator, progress

    # subclasses -------------------------------------------------------------------------
    def _build(self, n_genes: int, coord_dim: int) -> nn.Module:
        raise NotImplementedError

    def _loss(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward_coords(self, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # shared -----------------------------------------------------------------------------
    def fit(self, X: np.ndarray | sp.spmatrix, coords: np.ndarray) -> TorchBaseline:
        coords = check_coordinates(coords, "coords", n_rows=X.shape[0])
        check_counts(X, "X")
        rng = seed_everything(self.seed)
        self.device_ = resolve_device(self.accelerator)
        self.scaler_ = CoordinateScaler().fit(coords)
        Xc = as_csr(X)
        c_all = torch.from_numpy(self.scaler_.transform(coords)).to(self.device_)
        self.net_ = self._build(Xc.shape[1], coords.shape[1]).to(self.device_)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)

        def loss_on(rows: np.ndarray) -> torch.Tensor:
            return self._loss(dense_rows(Xc, rows, self.device_), c_all[rows])

        hist = run_minibatch_stage(
            self.name,
            self.net_,
            opt,
            loss_on,
            np.arange(Xc.shape[0]),
            self.epochs,
            batch_size=self.batch_size,
            rng=rng,
            progress=self.progress,
        )
        self.history_ = hist.loss
        self.n_genes_ = Xc.shape[1]
        return self

    @torch.no_grad()
    def predict(
        self, coords: np.ndarray, exclude_self: bool = False, batch_size: int = 4096
    ) -> np.ndarray:
        coords = check_coordinates(coords, "coords", dims=(self.scaler_.center_.size,))
        self.net_.eval()
        c = self.scaler_.transform(coords)
        out = np.empty((c.shape[0], self.n_genes_), dtype=np.float32)
        for start in range(0, c.shape[0], batch_size):
            cb = torch.from_numpy(c[start : start + batch_size]).to(self.device_)
            out[start : start + cb.shape[0]] = self._forward_coords(cb).float().cpu().numpy()
        return out
