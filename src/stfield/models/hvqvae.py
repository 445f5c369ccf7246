"""Hierarchical VQ-VAE over rasterised transcripts (DESIGN §4.3, seed 001).

Three encoder branches with ``M = 0, 1, 3`` scaling blocks — ``1x1 conv in``,
``M x [2x2 stride-2 conv, BatchNorm, ReLU]``, ``1x1 conv to D`` — each quantised by **its own**
EMA codebook (:class:`vector_quantize_pytorch.VectorQuantize`), decoded by a mirrored decoder with
a sigmoid output; the branch reconstructions are averaged. A single-branch VQ-VAE is the same class
with one branch (:func:`single_branch_config`).

vector-quantize-pytorch (1.32) does not chunk: it computes the full ``positions x K`` distance
matrix (and, in training, a one-hot of the same size). :class:`BranchQuantizer` calls it only when
that matrix fits ``max_elements``; otherwise it assigns codes in ``max_elements / K``-row chunks and
applies the same EMA / dead-code / k-means updates through the library's codebook, so a
256 x 256 x 8192 matrix is never materialised. Identical encoder outputs (empty pixels, pixels
holding the same molecules: most of a sparse transcript image) are searched once.

Data-parallel training switches each codebook to the library's distributed mode
(:meth:`HVQVAE.sync_codebooks`): EMA statistics summed over ranks, k-means seeds and dead-code
restarts drawn across ranks; the chunked path reduces its statistics through the same hook.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from vector_quantize_pytorch import VectorQuantize
from vector_quantize_pytorch.vector_quantize_pytorch import Codebook

from .._errors import input_error

#: Model-directory kind written by :func:`save_hvqvae`.
KIND = "hvqvae"
#: Initial bias of the last decoder layer: sigmoid(-4) ≈ 0.018, near the pixel density of a tile.
OUTPUT_BIAS = -4.0


@dataclass
class HVQVAEConfig:
    """Architecture of :class:`HVQVAE`.

    Parameters
    ----------
    in_channels
        Input channels ``T + extra`` (genes, centroid mask, coordinates, encoding).
    out_channels
        Reconstructed channels ``T + 1`` (genes and centroid mask).
    codebook_size, dim
        ``K`` and ``D`` (paper: 8192, 64).
    hidden
        Width of the convolutions between the 1x1 input and output layers.
    branches
        Number of scaling blocks ``M`` per branch (paper: ``(0, 1, 3)``).
    decay, commitment_weight, kmeans_init, kmeans_iters, threshold_ema_dead_code
        Codebook settings (paper: 0.99, 0.25, k-means init, dead-code restart).
    max_elements
        Largest ``positions x K`` distance block computed at once.
    """

    in_channels: int
    out_channels: int
    codebook_size: int = 8192
    dim: int = 64
    hidden: int = 64
    branches: tuple[int, ...] = (0, 1, 3)
    decay: float = 0.99
    commitment_weight: float = 0.25
    kmeans_init: bool = True
    kmeans_iters: int = 10
    threshold_ema_dead_code: float = 2.0
    max_elements: int = 2**24
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.branches = tuple(int(m) for m in self.branches)
        if not self.branches or any(m < 0 for m in self.branches):
            raise input_error(f"branches={self.branches}", "branches", "e.g. branches=(0, 1, 3)")
        if len(set(self.branches)) != len(self.branches):
            raise input_error("repeated branch depth", "branches", "give each M once")
        for name in ("in_channels", "out_channels", "codebook_size", "dim", "hidden"):
            if int(getattr(self, name)) < 1:
                raise input_error(f"{name} must be >= 1, got {getattr(self, name)}", name)
        if self.out_channels > self.in_channels:
            raise input_error("out_channels > in_channels", "out_channels")

    @property
    def max_depth(self) -> int:
        return max(self.branches)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["branches"] = list(self.branches)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HVQVAEConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def single_branch_config(config: HVQVAEConfig, depth: int = 2) -> HVQVAEConfig:
    """The single-branch VQ-VAE baseline: the same model with one branch of ``depth`` blocks."""
    d = config.to_dict()
    d["branches"] = [int(depth)]
    return HVQVAEConfig.from_dict(d)


@dataclass
class ModelOutput:
    """What every model of this family returns from ``forward``."""

    recon: Tensor  # (B, out_channels, I, I) in (0, 1)
    aux_loss: Tensor  # commitment (VQ) or KL (VAE), already weighted
    codes: list[Tensor] | None = None  # per branch (B, I / 2^M, I / 2^M)


class BranchQuantizer(nn.Module):
    """One EMA codebook (``VectorQuantize``) with chunked nearest-code search."""

    def __init__(self, config: HVQVAEConfig) -> None:
        super().__init__()
        self.max_elements = int(config.max_elements)
        self.vq = VectorQuantize(
            dim=config.dim,
            codebook_size=config.codebook_size,
            decay=config.decay,
            commitment_weight=config.commitment_weight,
            kmeans_init=config.kmeans_init,
            kmeans_iters=config.kmeans_iters,
            threshold_ema_dead_code=config.threshold_ema_dead_code,
            rotation_trick=False,
            straight_through=False,
            channel_last=True,
            # the library's default (None) decides once, at construction, from whether a process
            # group exists (and caches that answer per process); the trainer switches the sync on
            # for data-parallel runs instead (:meth:`sync`)
            sync_codebook=False,
        )

    @property
    def codebook(self) -> Tensor:
        """``(K, D)`` code vectors."""
        return self.vq.codebook

    @property
    def codebook_size(self) -> int:
        return int(self.vq.codebook_size)

    def _chunk(self) -> int:
        return max(1, self.max_elements // self.codebook_size)

    def sync(self, enabled: bool = True) -> None:
        """Synchronise the codebook over the ``torch.distributed`` process group (or stop).

        Sets the hooks that ``VectorQuantize(sync_codebook=enabled, sync_kmeans=True)`` would
        have given the codebook: the EMA statistics (``cluster_size``, ``embed_sum``) and the
        k-means counts / means are all-reduced (summed) before use, and k-means seeds and
        dead-code replacements are drawn across ranks and broadcast, so every rank applies the
        same update to the same codebook.
        """
        if enabled and not (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        ):
            raise input_error(
                "no torch.distributed process group to synchronise over",
                "BranchQuantizer.sync",
                "initialise one first (stfield.train.distributed.init_process_group)",
            )
        hooks = _codebook_hooks(bool(enabled))
        for name, value in hooks.items():
            setattr(self.vq._codebook, name, value)

    @property
    def synced(self) -> bool:
        """Whether the codebook statistics are all-reduced over the process group."""
        return bool(self.vq._codebook.use_ddp)

    @torch.no_grad()
    def assign(self, flat: Tensor, dedupe: bool = True) -> Tensor:
        """Nearest code of each row of ``flat`` ``(N, D)``, ``chunk x K`` distances at a time.

        The argmin of ``||e||² - 2 x·e`` (one fused ``addmm`` per chunk) is the argmin of the
        library's Euclidean distance: ``||x||²`` is constant per row.
        """
        if dedupe and flat.shape[0] > self._chunk():
            # transcript images are sparse: empty pixels (and pixels with the same molecules)
            # give identical encoder outputs, which need one search between them
            uniq, inverse = torch.unique(flat, dim=0, return_inverse=True)
            if uniq.shape[0] < 0.9 * flat.shape[0]:
                return self.assign(uniq, dedupe=False)[inverse]
        embed = self.codebook.to(flat.dtype)
        e2 = (embed * embed).sum(-1)[None]
        out = torch.empty(flat.shape[0], dtype=torch.long, device=flat.device)
        step = self._chunk()
        for s in range(0, flat.shape[0], step):
            d = torch.addmm(e2, flat[s : s + step], embed.T, beta=1.0, alpha=-2.0)
            out[s : s + step] = d.argmin(-1)
        return out

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantise ``z`` ``(B, D, H, W)`` → ``(z_q, codes (B, H, W), commitment loss)``."""
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(b, h * w, d)
        n = b * h * w
        if n * self.codebook_size <= self.max_elements and (self.training or not self._pending()):
            q, idx, loss = self.vq(flat)
        else:
            q, idx, loss = self._chunked(flat.reshape(n, d))
            q, idx = q.reshape(b, h * w, d), idx.reshape(b, h * w)
        if not self.training:  # the library reports no loss in eval: validation needs it
            loss = F.mse_loss(q.detach(), flat.detach()) * self.vq.commitment_weight
        zq = q.reshape(b, h, w, d).permute(0, 3, 1, 2)
        return zq, idx.reshape(b, h, w), loss.reshape(())

    def _pending(self) -> bool:
        return not bool(self.vq._codebook.initted)

    def _chunked(self, flat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cb = self.vq._codebook
        x = flat.float()
        if not bool(cb.initted):
            # k-means init on a subsample: the library's kmeans holds an n x K distance matrix,
            # so take max(max_elements / K, K) vectors (K x K floats at most beyond the budget)
            n_init = min(x.shape[0], max(self._chunk(), self.codebook_size))
            sel = torch.randperm(x.shape[0], device=x.device)[:n_init]
            cb.init_embed_(x.detach()[sel][None])
        idx = self.assign(x.detach())
        q = self.codebook.to(x)[idx]
        zero = torch.zeros((), device=x.device)
        if not self.training:
            return q, idx, zero
        with torch.no_grad():
            # the library's EMA update, with scatter-adds instead of a one-hot N x K matrix
            counts = torch.bincount(idx, minlength=self.codebook_size).to(cb.cluster_size)
            embed_sum = torch.zeros_like(cb.embed_avg[0]).index_add_(0, idx, x.detach())
            # summed over ranks when synced (the library's hook; a no-op otherwise), in the
            # order the library's own update reduces them
            cb.all_reduce_fn(counts)
            cb.all_reduce_fn(embed_sum)
            cb.cluster_size.data.lerp_(counts[None], 1.0 - cb.decay)
            cb.embed_avg.data.lerp_(embed_sum[None], 1.0 - cb.decay)
            cb.update_ema()
            cb.expire_codes_(x.detach()[None])
        loss = F.mse_loss(q.detach(), x) * self.vq.commitment_weight
        q = x + (q - x).detach()  # straight-through estimator
        return q.to(flat.dtype), idx, loss


#: Codebook attributes that ``VectorQuantize(sync_codebook=...)`` derives from its flag.
_SYNC_HOOKS = ("use_ddp", "sample_fn", "replace_sample_fn", "kmeans_all_reduce_fn", "all_reduce_fn")


def _codebook_hooks(sync: bool) -> dict[str, Any]:
    """The library's own choice of sampling / all-reduce functions for ``use_ddp=sync``.

    Read off a throwaway one-code ``Codebook`` rather than restated here, so the choice follows
    the installed library (``kmeans_init=True`` allocates zeros: no draw from the torch RNG).
    """
    ref = Codebook(dim=1, codebook_size=1, kmeans_init=True, use_ddp=sync, sync_kmeans=True)
    return {name: getattr(ref, name) for name in _SYNC_HOOKS}


def _encoder(cfg: HVQVAEConfig, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, cfg.hidden, 1)]
    for _ in range(depth):
        layers += [nn.Conv2d(cfg.hidden, cfg.hidden, 2, stride=2), nn.BatchNorm2d(cfg.hidden)]
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Conv2d(cfg.hidden, cfg.dim, 1))
    return nn.Sequential(*layers)


def _decoder(cfg: HVQVAEConfig, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cfg.dim, cfg.hidden, 1)]
    for _ in range(depth):
        layers += [
            nn.ConvTranspose2d(cfg.hidden, cfg.hidden, 2, stride=2),
            nn.BatchNorm2d(cfg.hidden),
            nn.ReLU(inplace=True),
        ]
    out = nn.Conv2d(cfg.hidden, cfg.out_channels, 1)
    # transcript images are sparse (< 1 % of pixels set): start the sigmoid near the background
    nn.init.constant_(out.bias, OUTPUT_BIAS)
    layers.append(out)
    return nn.Sequential(*layers)


class HVQVAE(nn.Module):
    """Hierarchical VQ-VAE: one encoder, codebook and decoder per branch; outputs averaged."""

    objective = "vq"

    def __init__(self, config: HVQVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleList(_encoder(config, m) for m in config.branches)
        self.quantizers = nn.ModuleList(BranchQuantizer(config) for _ in config.branches)
        self.decoders = nn.ModuleList(_decoder(config, m) for m in config.branches)

    @property
    def branches(self) -> tuple[int, ...]:
        return self.config.branches

    def check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise input_error(
                f"expected a (B, {self.config.in_channels}, I, I) tensor, got {tuple(x.shape)}",
                "HVQVAE input",
                "rasterise with the model's gene list and raster settings",
            )
        side = 2**self.config.max_depth
        if x.shape[-1] % side or x.shape[-2] % side:
            raise input_error(
                f"tile side {x.shape[-1]} is not divisible by 2^{self.config.max_depth}",
                "HVQVAE input",
                f"use a tile size that is a multiple of {side}",
            )

    def forward(self, x: Tensor) -> ModelOutput:
        self.check_input(x)
        recon = 0.0
        aux = x.new_zeros(())
        codes = []
        for enc, quant, dec in zip(self.encoders, self.quantizers, self.decoders, strict=True):
            zq, idx, commit = quant(enc(x))
            recon = recon + torch.sigmoid(dec(zq))
            aux = aux + commit
            codes.append(idx)
        return ModelOutput(recon=recon / len(self.encoders), aux_loss=aux, codes=codes)

    @torch.no_grad()
    def encode(self, x: Tensor) -> list[Tensor]:
        """Code maps per branch ``(B, I / 2^M, I / 2^M)`` (chunked search, no codebook update)."""
        self.check_input(x)
        out = []
        for enc, quant in zip(self.encoders, self.quantizers, strict=True):
            z = enc(x)
            b, d, h, w = z.shape
            flat = z.permute(0, 2, 3, 1).reshape(-1, d)
            out.append(quant.assign(flat).reshape(b, h, w))
        return out

    @torch.no_grad()
    def decode_codes(self, codes: Sequence[Tensor]) -> Tensor:
        """Reconstruction from code maps (one per branch), averaged like ``forward``."""
        recon = 0.0
        for quant, dec, idx in zip(self.quantizers, self.decoders, codes, strict=True):
            zq = quant.codebook[idx].permute(0, 3, 1, 2)
            recon = recon + torch.sigmoid(dec(zq))
        return recon / len(self.decoders)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def sync_codebooks(self, enabled: bool = True) -> None:
        """All-reduce every branch's codebook statistics over the process group (or stop).

        See :meth:`BranchQuantizer.sync`; data-parallel training turns this on for its duration.
        """
        for quant in self.quantizers:
            quant.sync(enabled)


def perplexity(counts: Tensor | Any) -> float:
    """``exp(entropy)`` of a code histogram (1 = one code used, K = uniform usage)."""
    c = torch.as_tensor(counts, dtype=torch.float64).flatten()
    total = c.sum()
    if total <= 0:
        return float("nan")
    p = c[c > 0] / total
    return float(math.exp(-(p * p.log()).sum().item()))


# ---------------------------------------------------------------------------- fitted bundle
class VQModel:
    """A fitted network together with what is needed to tokenise new transcripts.

    Holds the network (:class:`HVQVAE`), the raster settings, the gene channel order and the
    training record; :meth:`save` / :meth:`load` write a versioned model directory.
    """

    def __init__(
        self,
        network: HVQVAE,
        raster: Any,
        genes: Sequence[str],
        history: list[dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        from ..data.raster import RasterConfig

        self.network = network
        self.raster = raster if isinstance(raster, RasterConfig) else RasterConfig.from_dict(raster)
        self.genes = [str(g) for g in genes]
        self.history = list(history or [])
        self.info = dict(info or {})
        if self.raster.n_channels(len(self.genes)) != network.config.in_channels:
            raise input_error(
                f"{len(self.genes)} genes + {self.raster.n_extra} extra channels != the "
                f"network's {network.config.in_channels} input channels",
                "VQModel",
            )

    @property
    def branches(self) -> tuple[int, ...]:
        return self.network.branches

    @property
    def codebook_size(self) -> int:
        return self.network.config.codebook_size

    def tile_index(self, transcripts: Any, **kwargs: Any) -> Any:
        """A :class:`~stfield.data.raster.TileIndex` over ``transcripts`` with this model's genes
        and raster settings (extra keywords go to ``TileIndex``)."""
        from ..data.raster import TileIndex

        return TileIndex(transcripts, self.raster, genes=self.genes, **kwargs)

    def save(self, path: Any) -> Any:
        """Write a model directory (``config.json`` + ``weights.safetensors``) atomically."""
        from ._io import save_model_dir

        config = {
            "model": self.network.config.to_dict(),
            "raster": self.raster.to_dict(),
            "genes": self.genes,
            "history": self.history,
            "info": self.info,
        }
        return save_model_dir(path, KIND, config, self.network.state_dict())

    @classmethod
    def load(cls, path: Any, device: str = "cpu") -> VQModel:
        """Load a directory written by :meth:`save` (fails clearly on a foreign/corrupt one)."""
        from ._io import load_model_dir

        config, state, _ = load_model_dir(path, KIND)
        try:
            net = HVQVAE(HVQVAEConfig.from_dict(config["model"]))
            missing, unexpected = net.load_state_dict(state, strict=False)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise input_error(
                f"weights do not match the saved architecture ({exc})", str(path), "re-fit"
            ) from None
        if missing or unexpected:
            raise input_error(
                f"weights do not match the architecture (missing {list(missing)[:3]}, "
                f"unexpected {list(unexpected)[:3]})",
                str(path),
                "re-fit the model with this version of stfield",
            )
        net.to(device).eval()
        return cls(
            net, config["raster"], config["genes"], config.get("history"), config.get("info")
        )

    def __repr__(self) -> str:
        return (
            f"VQModel(branches={self.branches}, K={self.codebook_size}, "
            f"D={self.network.config.dim}, genes={len(self.genes)}, tile={self.raster.tile}, "
            f"pixel_size={self.raster.pixel_size})"
        )
