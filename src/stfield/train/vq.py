"""Training loop for the VQ-VAE family (DESIGN §4.4).

Loss ``(1 - MS-SSIM) + MSE + commitment`` (pytorch-msssim, ``data_range=1``); the VAE baseline
uses ``MSE + KL`` as in the paper. AdamW with ``β = (0.9, 0.96)``, ``eps = 1e-8``, weight decay
``4.5e-2``; random flips / quarter turns; held-out validation tiles; seeded; a tqdm bar per run;
checkpoints every ``checkpoint_every`` epochs; a per-epoch history.

MS-SSIM is chosen per tile size (:func:`ssim_spec`): pytorch-msssim's 5-scale MS-SSIM requires
``min(H, W) > (win - 1) * 16``, so the window shrinks (11 at I >= 176, down to 5), then scales are
dropped (renormalised weights), and tiny tiles use plain SSIM. The per-scale terms are clamped
before the fractional powers, which otherwise give NaN gradients when a term reaches 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim as _ms_ssim_public
from pytorch_msssim import ssim as _ssim_public
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._errors import input_error
from .._utils import resolve_device, seed_everything
from ..data.raster import TileDataset, TileIndex

try:  # per-scale SSIM and contrast terms (stable in pytorch-msssim >= 0.2)
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim
except ImportError:  # pragma: no cover - fall back to the public functions
    _ssim = None

logger = logging.getLogger(__name__)

#: pytorch-msssim's default 5-scale weights (Wang et al. 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class SSIMSpec:
    """Window size and scale weights of the structural term for one tile size."""

    win_size: int
    weights: tuple[float, ...]

    @property
    def levels(self) -> int:
        return len(self.weights)


def ssim_spec(size: int, max_win: int = 11, min_win: int = 5) -> SSIMSpec:
    """Largest MS-SSIM (scales, then window) that fits a ``size`` px tile; SSIM if none does.

    Scale ``j`` of ``L`` sees ``size / 2^(j-1)`` px; pytorch-msssim requires
    ``size > (win - 1) * 2^(L-1)`` for the smallest scale to hold a window.
    """
    for levels in range(5, 1, -1):
        for win in range(max_win, min_win - 1, -2):
            if size > (win - 1) * 2 ** (levels - 1):
                w = np.asarray(MS_SSIM_WEIGHTS[:levels])
                return SSIMSpec(win, tuple(float(v) for v in w / w.sum()))
    win = max(1, min(max_win, size if size % 2 else size - 1))
    return SSIMSpec(win, (1.0,))


def ms_ssim(x: Tensor, y: Tensor, spec: SSIMSpec, eps: float = 1e-4) -> Tensor:
    """MS-SSIM (or SSIM for one level) per image ``(B,)`` with ``data_range=1``.

    Per-scale terms are clamped to ``[eps, ∞)`` before the fractional powers so gradients stay
    finite.
    """
    if _ssim is None:  # pragma: no cover
        if spec.levels == 5:
            return _ms_ssim_public(x, y, data_range=1.0, size_average=False, win_size=spec.win_size)
        return _ssim_public(x, y, data_range=1.0, size_average=False, win_size=spec.win_size)
    c = x.shape[1]
    win = _fspecial_gauss_1d(spec.win_size, 1.5).repeat([c, 1, 1, 1])
    terms = []
    for level in range(spec.levels):
        s, cs = _ssim(x, y, data_range=1.0, win=win, size_average=False, K=(0.01, 0.03))
        if level < spec.levels - 1:
            terms.append(cs.clamp(min=eps))
            pad = [d % 2 for d in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
        else:
            terms.append(s.clamp(min=eps))
    stacked = torch.stack(terms, 0)  # (levels, B, C)
    w = stacked.new_tensor(spec.weights).view(-1, 1, 1)
    return torch.prod(stacked**w, dim=0).mean(1)


def ssim_metric(x: Tensor, y: Tensor) -> Tensor:
    """Plain single-scale SSIM per image (window 11, or the largest odd size that fits)."""
    size = min(x.shape[-2:])
    win = max(1, min(11, size if size % 2 else size - 1))
    return _ssim_public(x, y, data_range=1.0, size_average=False, win_size=win)


@dataclass
class VQTrainConfig:
    """Optimisation settings (defaults follow the paper where it gives them)."""

    epochs: int = 10
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 4.5e-2
    betas: tuple[float, float] = (0.9, 0.96)
    eps: float = 1e-8
    val_fraction: float = 0.1
    augment: bool = True
    seed: int = 0
    checkpoint_every: int = 0
    checkpoint_dir: str | None = None
    progress: bool = True
    accelerator: str = "auto"
    grad_clip: float | None = 1.0
    recalibrate_bn: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise input_error(f"epochs must be >= 1, got {self.epochs}", "epochs")
        if self.batch_size < 1:
            raise input_error(f"batch_size must be >= 1, got {self.batch_size}", "batch_size")
        if not 0 <= self.val_fraction < 1:
            raise input_error(
                f"val_fraction must be in [0, 1), got {self.val_fraction}", "val_fraction"
            )
        if self.lr <= 0:
            raise input_error(f"lr must be > 0, got {self.lr}", "lr")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def split_tiles(n_tiles: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train / held-out split of tile positions (at least one of each when possible)."""
    order = np.random.default_rng(seed).permutation(n_tiles)
    n_val = 0 if val_fraction <= 0 or n_tiles < 2 else max(1, round(n_tiles * val_fraction))
    n_val = min(n_val, n_tiles - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def reconstruction_loss(
    model: nn.Module, recon: Tensor, target: Tensor, spec: SSIMSpec
) -> tuple[Tensor, dict[str, float]]:
    """``(1 - MS-SSIM) + MSE`` for VQ models, ``MSE`` for the VAE (paper objectives)."""
    mse = F.mse_loss(recon, target)
    if getattr(model, "objective", "vq") == "vae":
        return mse, {"mse": float(mse.detach())}
    structural = 1.0 - ms_ssim(recon, target, spec).mean()
    return structural + mse, {
        "mse": float(mse.detach()),
        "ms_ssim": 1.0 - float(structural.detach()),
    }


def _histograms(model: nn.Module) -> list[np.ndarray] | None:
    quants = getattr(model, "quantizers", None)
    if quants is None:
        return None
    return [np.zeros(q.codebook_size, dtype=np.int64) for q in quants]


def _add_codes(hist: list[np.ndarray] | None, codes: Sequence[Tensor] | None) -> None:
    if hist is None or codes is None:
        return
    for h, c in zip(hist, codes, strict=True):
        h += np.bincount(c.detach().flatten().cpu().numpy(), minlength=h.size)


def _perplexities(model: nn.Module, hist: list[np.ndarray] | None) -> dict[str, float]:
    from ..models.hvqvae import perplexity

    if hist is None:
        return {}
    return {f"m{m}": perplexity(h) for m, h in zip(model.branches, hist, strict=True)}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: TileDataset,
    batch_size: int = 8,
    device: str = "cpu",
    spec: SSIMSpec | None = None,
) -> dict[str, Any]:
    """Held-out metrics: loss, MSE, SSIM (single scale), perplexity per branch, code usage."""
    was_training = model.training
    model.eval()
    n_out = _out_channels(model)
    spec = spec or ssim_spec(dataset.index.config.tile)
    tot = {"loss": 0.0, "mse": 0.0, "ssim": 0.0}
    n = 0
    hist = _histograms(model)
    for batch in dataset.batches(batch_size):
        x = batch.to(device)
        out = model(x)
        target = x[:, :n_out]
        loss, _ = reconstruction_loss(model, out.recon, target, spec)
        b = x.shape[0]
        tot["loss"] += float(loss + out.aux_loss) * b
        tot["mse"] += float(F.mse_loss(out.recon, target)) * b
        tot["ssim"] += float(ssim_metric(out.recon, target).sum())
        _add_codes(hist, out.codes)
        n += b
    model.train(was_training)
    res: dict[str, Any] = {k: v / max(n, 1) for k, v in tot.items()}
    res["perplexity"] = _perplexities(model, hist)
    res["usage"] = (
        {f"m{m}": int((h > 0).sum()) for m, h in zip(model.branches, hist, strict=True)}
        if hist
        else {}
    )
    return res


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, dataset: TileDataset, batch_size: int = 8, device: str = "cpu"
) -> None:
    """Re-estimate BatchNorm running statistics with the final weights (no codebook updates).

    With few optimisation steps the running averages still carry the early, random-weight
    statistics, and in eval mode the encoder then sends every position to one code. One pass over
    the training tiles (BatchNorm in train mode, quantisers frozen) fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or not len(dataset):
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    for q in getattr(model, "quantizers", []):
        q.eval()
    augment, dataset.augment = dataset.augment, False
    try:
        for batch in dataset.batches(batch_size):
            if batch.shape[0] > 1:
                model(batch.to(device))
    finally:
        dataset.augment = augment
        for m, mom in zip(norms, momenta, strict=True):
            m.momentum = mom
        model.eval()


def _out_channels(model: nn.Module) -> int:
    return int(model.config.out_channels)


def train_model(
    model: nn.Module,
    index: TileIndex,
    config: VQTrainConfig,
    *,
    train_tiles: Sequence[int] | np.ndarray | None = None,
    val_tiles: Sequence[int] | np.ndarray | None = None,
    checkpoint_fn: Callable[[Path, int], None] | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on the tiles of ``index``; returns ``{"history", "train_tiles", ...}``.

    Parameters
    ----------
    model
        :class:`~stfield.models.hvqvae.HVQVAE` or :class:`~stfield.models.vae.ConvVAE`.
    index
        Tile index whose ``n_channels`` equals the model's ``in_channels``.
    config
        Optimisation settings.
    train_tiles, val_tiles
        Tile positions; default: a seeded split with ``config.val_fraction`` held out.
    checkpoint_fn
        ``fn(directory, epoch)`` that saves the model; called every ``config.checkpoint_every``
        epochs under ``config.checkpoint_dir``.
    """
    if index.n_channels != model.config.in_channels:
        raise input_error(
            f"tiles have {index.n_channels} channels, the model expects {model.config.in_channels}",
            "train_model",
            "build the tile index with the model's genes and raster settings",
        )
    seed_everything(config.seed)
    device = resolve_device(config.accelerator)
    model.to(device)
    if train_tiles is None:
        train_tiles, val_tiles = split_tiles(len(index), config.val_fraction, config.seed)
    train_tiles = np.asarray(train_tiles, dtype=np.int64)
    val_tiles = np.asarray([] if val_tiles is None else val_tiles, dtype=np.int64)
    train_ds = TileDataset(index, train_tiles, augment=config.augment, seed=config.seed)
    val_ds = TileDataset(index, val_tiles, augment=False, seed=config.seed)
    spec = ssim_spec(index.config.tile)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        betas=tuple(config.betas),
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
    n_out = _out_channels(model)
    history: list[dict[str, Any]] = []
    bar = tqdm(range(1, config.epochs + 1), desc="vq fit", disable=not config.progress, unit="ep")
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "mse": 0.0, "aux": 0.0}
        hist = _histograms(model)
        n = 0
        # drop a trailing batch of one tile: BatchNorm needs more than one value per channel
        drop_last = len(train_ds) > config.batch_size and len(train_ds) % config.batch_size == 1
        for batch in train_ds.batches(config.batch_size, shuffle=True, drop_last=drop_last):
            x = batch.to(device)
            out = model(x)
            rec, parts = reconstruction_loss(model, out.recon, x[:, :n_out], spec)
            loss = rec + out.aux_loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}: {float(loss)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            b = x.shape[0]
            sums["loss"] += float(loss.detach()) * b
            sums["mse"] += parts["mse"] * b
            sums["aux"] += float(out.aux_loss.detach()) * b
            _add_codes(hist, out.codes)
            n += b
        row: dict[str, Any] = {"epoch": epoch}
        row.update({f"train_{k}": v / max(n, 1) for k, v in sums.items()})
        for m, p in _perplexities(model, hist).items():
            row[f"train_perplexity_{m}"] = p
        if config.recalibrate_bn and (len(val_ds) or epoch == config.epochs):
            recalibrate_batchnorm(model, train_ds, config.batch_size, device)
        if len(val_ds):
            ev = evaluate(model, val_ds, config.batch_size, device, spec)
            row.update({f"val_{k}": ev[k] for k in ("loss", "mse", "ssim")})
            for m, p in ev["perplexity"].items():
                row[f"val_perplexity_{m}"] = p
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row.get('val_loss', np.nan):.4f}")
        if (
            checkpoint_fn is not None
            and config.checkpoint_every
            and config.checkpoint_dir
            and epoch % config.checkpoint_every == 0
        ):
            checkpoint_fn(Path(config.checkpoint_dir) / f"epoch_{epoch:04d}", epoch)
    model.eval()
    return {
        "history": history,
        "train_tiles": train_tiles.tolist(),
        "val_tiles": val_tiles.tolist(),
        "ssim": {"win_size": spec.win_size, "weights": list(spec.weights)},
    }
