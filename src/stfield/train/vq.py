"""Training loop for the VQ-VAE family (DESIGN §4.4).

Loss ``(1 - MS-SSIM) + MSE + commitment`` (pytorch-msssim, ``data_range=1``); the VAE baseline
uses ``MSE + KL`` as in the paper. AdamW with ``β = (0.9, 0.96)``, ``eps = 1e-8``, weight decay
``4.5e-2``; random flips / quarter turns; held-out validation tiles; seeded; a tqdm bar per run;
checkpoints every ``checkpoint_every`` epochs; a per-epoch history.

Data-parallel training (:mod:`stfield.train.distributed`) starts by itself when a
``torch.distributed`` process group is initialised (``torchrun``, or ``stfield vq fit --devices``):
``batch_size`` is then per process, each rank trains on its own shard of the tiles, and the
model, codebooks, BatchNorm statistics and metrics are the same on every rank.

MS-SSIM is chosen per tile size (:func:`ssim_spec`): pytorch-msssim's 5-scale MS-SSIM requires
``min(H, W) > (win - 1) * 16``, so the window shrinks (11 at I >= 176, down to 5), then scales are
dropped (renormalised weights), and tiny tiles use plain SSIM. The per-scale terms are clamped
before the fractional powers, which otherwise give NaN gradients when a term reaches 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
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

from .._errors import StfieldFileNotFoundError, input_error
from .._utils import atomic_path, resolve_device, seed_everything
from ..data.raster import TileDataset, TileIndex
from . import distributed as dist_utils
from .checkpoint import fingerprint
from .loop import check_finite

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
    resume: bool = False
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
        if self.resume and not self.checkpoint_dir:
            raise input_error(
                "resume needs the checkpoint folder", "resume", "pass checkpoint_dir / --out"
            )

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
    *,
    distributed: bool = False,
) -> dict[str, Any]:
    """Held-out metrics: loss, MSE, SSIM (single scale), perplexity per branch, code usage.

    With ``distributed`` (and a process group) each rank scores a disjoint share of the tiles and
    the sums are all-reduced, so every rank returns the metrics of the whole set; every rank must
    then call this.
    """
    was_training = model.training
    model.eval()
    n_out = _out_channels(model)
    spec = spec or ssim_spec(dataset.index.config.tile)
    tot = {"loss": 0.0, "mse": 0.0, "ssim": 0.0}
    n = 0
    hist = _histograms(model)
    if distributed:
        # eval forwards hold no collective, so the shards need no padding and may differ in size
        dataset = _shard(dataset, pad=False)
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
    if distributed:
        tot, n, hist = _reduce(tot, n, hist)
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
    model: nn.Module,
    dataset: TileDataset,
    batch_size: int = 8,
    device: str = "cpu",
    *,
    distributed: bool = False,
) -> None:
    """Re-estimate BatchNorm running statistics with the final weights (no codebook updates).

    With few optimisation steps the running averages still carry the early, random-weight
    statistics, and in eval mode the encoder then sends every position to one code. One pass over
    the training tiles (BatchNorm in train mode, quantisers frozen) fixes that.

    With ``distributed`` (and a process group) every rank must call this: the ranks walk the
    tiles in order, rank ``r`` taking tiles ``r, r + N, ...`` (padded so all run the same number
    of batches), and BatchNorm uses the statistics of the global batch
    (:class:`~stfield.train.distributed.GlobalBatchNorm2d`).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or not len(dataset):
        return
    n_ranks = dist_utils.world_size() if distributed else 1
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    for q in getattr(model, "quantizers", []):
        q.eval()
    augment, dataset.augment = dataset.augment, False
    # Ranks re-estimate together, over global batches, rather than each over its own tiles with
    # the results averaged afterwards: the cumulative average is then over the same batches of
    # N x batch_size tiles as one process with that batch size (identical statistics when the
    # tiles divide evenly; padding repeats at most N - 1 tiles), and it is the same on every rank
    # by construction, so no rank's copy can drift from another's.
    source = _shard(dataset, pad=True) if n_ranks > 1 else dataset
    sync = dist_utils.global_batchnorm(model) if n_ranks > 1 else contextlib.nullcontext()
    try:
        with sync:
            for batch in source.batches(batch_size):
                # the global batch decides: the same on every rank, so all run the same forwards
                if batch.shape[0] * n_ranks > 1:
                    model(batch.to(device))
    finally:
        dataset.augment = augment
        for m, mom in zip(norms, momenta, strict=True):
            m.momentum = mom
        model.eval()


def _out_channels(model: nn.Module) -> int:
    return int(model.config.out_channels)


def _shard(dataset: TileDataset, pad: bool) -> TileDataset:
    """This rank's share of ``dataset``'s tiles, in order (no shuffling, no augmentation)."""
    pos = dist_utils.shard_positions(
        len(dataset),
        rank=dist_utils.rank(),
        world_size=dist_utils.world_size(),
        shuffle=False,
        pad=pad,
    )
    return TileDataset(dataset.index, dataset.tiles[pos], augment=False)


def _reduce(
    sums: dict[str, float], n: int, hist: list[np.ndarray] | None
) -> tuple[dict[str, float], int, list[np.ndarray] | None]:
    """Sums, count and code histograms added over all ranks (unchanged without a group)."""
    keys = list(sums)
    total = dist_utils.all_reduce_sum([sums[k] for k in keys] + [float(n)])
    if hist is not None:
        flat = dist_utils.all_reduce_sum(np.concatenate(hist).astype(np.int64))
        hist = np.split(flat, np.cumsum([h.size for h in hist])[:-1])
    return {k: float(v) for k, v in zip(keys, total[:-1], strict=True)}, int(total[-1]), hist


def _sharded_batches(
    dataset: TileDataset, batch_size: int, epoch: int, seed: int
) -> Iterator[Tensor]:
    """This rank's training batches of ``epoch`` (DistributedSampler order, seeded augmentation).

    The permutation depends on ``(seed, epoch)`` and each tile's flip / quarter turn on
    ``(seed, epoch, position)``, so N ranks of ``batch_size`` tiles train on the same global
    batches, augmented the same way, as one process (in a group of one) with ``N x batch_size``.
    """
    n_ranks = dist_utils.world_size()
    pos = dist_utils.shard_positions(
        len(dataset), rank=dist_utils.rank(), world_size=n_ranks, seed=seed, epoch=epoch
    )
    codes = dist_utils.augment_codes(len(dataset), seed, epoch) if dataset.augment else None
    # as in the single-process loop: never a global batch of one tile (BatchNorm); shards are
    # padded to equal length, so every rank makes the same choice
    drop_last = len(pos) > batch_size and (len(pos) % batch_size) * n_ranks == 1
    for chunk in dist_utils.batches(pos, batch_size, drop_last):
        tiles = []
        for p in chunk:
            flip, k = (bool(codes[p] // 4), int(codes[p] % 4)) if codes is not None else (False, 0)
            tiles.append(torch.from_numpy(dataset.index.rasterise(int(dataset.tiles[p]), flip, k)))
        yield torch.stack(tiles)


#: Resumable training state written beside the epoch checkpoints.
TRAIN_STATE = "train_state.pt"


def _train_fingerprint(
    index: TileIndex, train_tiles: np.ndarray, val_tiles: np.ndarray, config: VQTrainConfig
) -> str:
    settings = {
        k: v
        for k, v in config.to_dict().items()
        if k not in ("epochs", "checkpoint_every", "checkpoint_dir", "resume", "progress")
    }
    return fingerprint(
        tiles=np.asarray(index.origins, dtype=np.float64),
        molecules=int(index.n_molecules),
        genes=list(index.genes),
        train=np.asarray(train_tiles, dtype=np.int64),
        val=np.asarray(val_tiles, dtype=np.int64),
        settings=settings,
    )


def _save_train_state(
    path: Path,
    fp: str,
    epoch: int,
    history: list[dict[str, Any]],
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train_ds: TileDataset,
) -> None:
    """Everything needed to continue after ``epoch`` (written atomically)."""
    payload = {
        "fingerprint": fp,
        "epoch": epoch,
        "history": json.dumps(history, default=float),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "dataset_rng": train_ds.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_train_state(
    path: Path,
    fp: str,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train_ds: TileDataset,
    device: torch.device,
) -> tuple[int, list[dict[str, Any]]]:
    """Restore a state written by :func:`_save_train_state`; returns (first epoch, history)."""
    if not path.exists():
        raise StfieldFileNotFoundError(
            f"{path}: no training state to resume from. Fix: run without resume, or pass the "
            "--out of the interrupted fit (its checkpoints need --checkpoint-every)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        history = json.loads(payload["history"])
    except Exception as exc:  # any unreadable file gets the same answer
        raise input_error(
            f"cannot read the training state ({type(exc).__name__})",
            str(path),
            "delete the checkpoint folder and fit again without resume",
        ) from None
    if payload["fingerprint"] != fp:
        raise input_error(
            "the checkpoint was written for other tiles or settings",
            str(path),
            "resume with the same input and options, or use another --out",
        )
    model.load_state_dict(payload["model"])
    model.to(device)
    opt.load_state_dict(payload["optimizer"])
    train_ds.rng.bit_generator.state = payload["dataset_rng"]
    torch.set_rng_state(payload["torch_rng"])
    logger.info("resumed VQ training from %s after epoch %d", path, payload["epoch"])
    return int(payload["epoch"]) + 1, history


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
        epochs under ``config.checkpoint_dir`` (on rank 0 only when distributed).

    Notes
    -----
    When a ``torch.distributed`` process group is initialised, every rank must call this with the
    same arguments: the model is wrapped in ``DistributedDataParallel``, ``config.batch_size`` is
    the batch *per rank*, each rank trains on a disjoint shard of the tiles per epoch, BatchNorm
    and the codebooks' EMA statistics are synchronised, metrics are all-reduced, and the returned
    history (and model) is the same on every rank. The result then also holds ``"distributed"``
    (world size, backend, global batch size). See :mod:`stfield.train.distributed`.
    """
    if index.n_channels != model.config.in_channels:
        raise input_error(
            f"tiles have {index.n_channels} channels, the model expects {model.config.in_channels}",
            "train_model",
            "build the tile index with the model's genes and raster settings",
        )
    seed_everything(config.seed)
    # a process group (torchrun, or `stfield vq fit --devices N`) means data-parallel training
    ctx = dist_utils.context()
    device = (
        dist_utils.device_for_rank(config.accelerator)
        if ctx is not None
        else resolve_device(config.accelerator)
    )
    model.to(device)
    if train_tiles is None:
        train_tiles, val_tiles = split_tiles(len(index), config.val_fraction, config.seed)
    train_tiles = np.asarray(train_tiles, dtype=np.int64)
    val_tiles = np.asarray([] if val_tiles is None else val_tiles, dtype=np.int64)
    train_ds = TileDataset(index, train_tiles, augment=config.augment, seed=config.seed)
    val_ds = TileDataset(index, val_tiles, augment=False, seed=config.seed)
    spec = ssim_spec(index.config.tile)
    n_out = _out_channels(model)
    history: list[dict[str, Any]] = []
    main = ctx is None or ctx.is_main  # only rank 0 shows progress and writes checkpoints
    with contextlib.ExitStack() as stack:
        # `net` runs the training forward (the DDP wrapper when distributed); `model` is the
        # plain module for everything else (recalibration, evaluation, checkpoints)
        net = model if ctx is None else stack.enter_context(dist_utils.data_parallel(model, device))
        opt = torch.optim.AdamW(
            model.parameters(),
            lr=config.lr,
            betas=tuple(config.betas),
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
        first = 1
        state_path = Path(config.checkpoint_dir) / TRAIN_STATE if config.checkpoint_dir else None
        last_saved: str | None = None
        fp = _train_fingerprint(index, train_tiles, val_tiles, config)
        if config.resume and state_path is not None:
            first, history = _load_train_state(state_path, fp, model, opt, train_ds, device)
            last_saved = str(state_path)
        bar = tqdm(
            range(first, config.epochs + 1),
            desc="vq fit",
            disable=not (config.progress and main),
            unit="ep",
        )
        for epoch in bar:
            model.train()
            t0 = time.perf_counter()
            sums = {"loss": 0.0, "mse": 0.0, "aux": 0.0}
            hist = _histograms(model)
            n = 0
            if ctx is None:
                # drop a trailing batch of one tile: BatchNorm needs more than one value per
                # channel
                drop_last = (
                    len(train_ds) > config.batch_size and len(train_ds) % config.batch_size == 1
                )
                loader = train_ds.batches(config.batch_size, shuffle=True, drop_last=drop_last)
            else:
                loader = _sharded_batches(train_ds, config.batch_size, epoch, config.seed)
            for batch in loader:
                x = batch.to(device)
                out = net(x)
                rec, parts = reconstruction_loss(model, out.recon, x[:, :n_out], spec)
                loss = rec + out.aux_loss
                if not torch.isfinite(loss):
                    # distributed: the launcher (torchrun / --devices) stops the other ranks
                    check_finite(float(loss), "vq", epoch - 1, last_checkpoint=last_saved)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # under DDP: gradients averaged over ranks here
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                b = x.shape[0]
                sums["loss"] += float(loss.detach()) * b
                sums["mse"] += parts["mse"] * b
                sums["aux"] += float(out.aux_loss.detach()) * b
                _add_codes(hist, out.codes)
                n += b
            if ctx is not None:
                sums, n, hist = _reduce(sums, n, hist)
            row: dict[str, Any] = {"epoch": epoch}
            row.update({f"train_{k}": v / max(n, 1) for k, v in sums.items()})
            for m, p in _perplexities(model, hist).items():
                row[f"train_perplexity_{m}"] = p
            if config.recalibrate_bn and (len(val_ds) or epoch == config.epochs):
                recalibrate_batchnorm(
                    model, train_ds, config.batch_size, device, distributed=ctx is not None
                )
            if len(val_ds):
                ev = evaluate(
                    model, val_ds, config.batch_size, device, spec, distributed=ctx is not None
                )
                row.update({f"val_{k}": ev[k] for k in ("loss", "mse", "ssim")})
                for m, p in ev["perplexity"].items():
                    row[f"val_perplexity_{m}"] = p
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            bar.set_postfix(
                loss=f"{row['train_loss']:.4f}", val=f"{row.get('val_loss', np.nan):.4f}"
            )
            if (
                checkpoint_fn is not None
                and main
                and config.checkpoint_every
                and config.checkpoint_dir
                and epoch % config.checkpoint_every == 0
            ):
                checkpoint_fn(Path(config.checkpoint_dir) / f"epoch_{epoch:04d}", epoch)
                assert state_path is not None
                _save_train_state(state_path, fp, epoch, history, model, opt, train_ds)
                last_saved = f"{state_path} (epoch {epoch})"
    model.eval()
    res: dict[str, Any] = {
        "history": history,
        "train_tiles": train_tiles.tolist(),
        "val_tiles": val_tiles.tolist(),
        "ssim": {"win_size": spec.win_size, "weights": list(spec.weights)},
    }
    if ctx is not None:
        res["distributed"] = {
            "world_size": ctx.world_size,
            "backend": ctx.backend,
            "global_batch_size": ctx.world_size * config.batch_size,
        }
    return res
