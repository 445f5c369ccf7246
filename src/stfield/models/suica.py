"""SUICA: a continuous field of gene expression, queryable at any coordinate.

Three stages (Cui et al., SUICA, §3.2):

1. a graph autoencoder (:class:`~stfield.models.gae.GAE`) learns a 32-d embedding of each spot
   from ``log1p`` counts and the spatial kNN graph (loss: MSE on the counts);
2. a coordinate network (FFN, SIREN or hash grid) maps normalised coordinates to those embeddings
   (loss: L1 + MSE, as the published code; ``inr_loss="mse"`` gives the paper's eq. 2);
3. with the coordinate network frozen, the pre-trained decoder is fine-tuned on its outputs
   (loss: MSE over non-zero targets + L1 over all + λ·Dice(tanh(ŷ), [y > 0])).

Unlike the published code, the fitted model predicts anywhere: unseen spots, regular grids at any
step (rendered tile by tile), 3-D points when fitted with z. Counts stay CSR; only mini-batches
are densified.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from torch import nn

from .._constants import SPATIAL_KEY, UNS_KEY
from .._errors import StfieldFileNotFoundError, input_error
from .._utils import resolve_device, seed_everything
from .._validate import check_coordinates, check_counts
from ..data.csr import CSRBuilder, GraphBatcher, as_csr, batch_indices, dense_rows
from ..train.checkpoint import Checkpointer, StageProgress, fingerprint
from ..train.loop import StageHistory, run_minibatch_stage
from ..train.losses import l1_mse_loss, suica_decoder_loss
from ._base import Backbone
from ._io import load_model_dir, save_model_dir
from .backbones import BACKBONES, make_backbone, nyquist_scale
from .blend import InterpolationBlend, choose_weight_gathered
from .gae import DECODER_ACTIVATIONS, GAE

logger = logging.getLogger(__name__)

#: Model kind written into the model directory.
MODEL_KIND = "suica"

#: The short schedule (learning rates 1e-3, 100 / 300 / 300 epochs): "fast", and "stfield"'s base.
_SHORT_SCHEDULE: dict[str, Any] = {
    "epochs_gae": 100,
    "epochs_inr": 300,
    "epochs_decoder": 300,
    "lr_gae": 1e-3,
    "lr_inr": 1e-3,
    "lr_decoder": 1e-3,
    "batch_size_gae": 512,
    "batch_size_inr": "auto",
    "batch_size_decoder": "auto",
}
#: Training presets. ``"paper"`` holds the published values (Adam 1e-5 / AdamW 1e-4 / Adam 1e-4;
#: 200 / 1,000 / 1,000 epochs; GAE batch 512; one full-batch INR step per epoch). ``"stfield"``
#: (the default) is the training measured best with the stfield architecture (issue #8,
#: ``docs/benchmarks.md``): learning rates 1e-3 and 300 / 300 / 300 epochs. ``"fast"`` (100 GAE
#: epochs) is for tests and quick looks. ``"auto"`` batch sizes are resolved by
#: :func:`resolve_batch_size`.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "epochs_gae": 200,
        "epochs_inr": 1000,
        "epochs_decoder": 1000,
        "lr_gae": 1e-5,
        "lr_inr": 1e-4,
        "lr_decoder": 1e-4,
        "batch_size_gae": 512,
        "batch_size_inr": "auto",
        "batch_size_decoder": "auto",
    },
    # 300 GAE epochs: at batch 512 a 1.3k-spot slice takes 2-3 steps an epoch, and 100 epochs
    # left the autoencoder under-trained (denoising per-gene Pearson 0.52 -> 0.67 at 10 µm).
    "stfield": {**_SHORT_SCHEDULE, "epochs_gae": 300},
    "fast": dict(_SHORT_SCHEDULE),
}

#: Architecture of each preset; constructor arguments left at ``None`` come from here.
#: ``"paper"`` is the published model (FFN 2048 x 3 with Fourier scale 10, GAE 2048-512-64, ReLU
#: output, no interpolation). ``"stfield"`` is the default, chosen by measurement on real slices
#: (issue #8, ``docs/benchmarks.md``): a SIREN field (the paper's advice for sparse slices) at
#: width 256 with its frequency set from the spot spacing, a 64-d embedding from a GAE of
#: 512-128-64, an output that cannot kill genes while training, and a blend with Gaussian-kernel
#: interpolation of the neighbouring spots whose weight is chosen on held-out spots.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "paper": {
        "backbone": "ffn",
        "backbone_kwargs": {},
        "latent_dim": 32,
        "gae_hidden": (2048, 512, 64),
        "decoder_activation": "relu",
        "blend": "none",
    },
    "stfield": {
        "backbone": "siren",
        "backbone_kwargs": {"width": 256, "w0": "auto"},
        "latent_dim": 64,
        "gae_hidden": (512, 128, 64),
        "decoder_activation": "leaky",
        "blend": "knn",
    },
}
#: Preset name -> architecture ("fast" trains the default architecture on the short schedule).
PRESET_ARCHITECTURE = {"paper": "paper", "stfield": "stfield", "fast": "stfield"}

#: Stage names, in order (keys of :attr:`SUICA.history` and :attr:`SUICA.timings_`).
STAGES = ("gae", "inr", "decoder")

#: Fraction of spots held out to choose the blend weight when ``val_fraction`` is 0.
BLEND_VAL_FRACTION = 0.1

#: "auto" batch sizes: the INR takes full-batch steps up to this many spots, mini-batches above.
INR_FULL_BATCH_MAX = 8192
#: "auto" decoder / prediction batches hold about this many dense expression values.
DENSE_BATCH_ELEMENTS = 2**21


class ModelDirNotFoundError(StfieldFileNotFoundError, ValueError):
    """The model directory does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


def resolve_batch_size(value: int | str | None, stage: str, n_rows: int, n_genes: int) -> int:
    """Turn a batch-size option (``int``, ``"auto"`` or ``None`` = full batch) into a row count."""
    if value is None or value == "full":
        return max(n_rows, 1)
    if value == "auto":
        if stage == "inr":
            return max(min(n_rows, INR_FULL_BATCH_MAX), 1)
        return max(1, min(n_rows, max(256, DENSE_BATCH_ELEMENTS // max(n_genes, 1))))
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise input_error(
            f"batch size {value!r} is not a positive integer",
            f"batch_size_{stage}",
            "pass an integer >= 1, 'auto' or None (full batch)",
        )
    return int(value)


class SUICA:
    """SUICA model (tensors and arrays in, arrays out; never AnnData — see :mod:`stfield.tl`).

    Every architecture argument left at ``None`` comes from ``preset`` (:data:`ARCHITECTURES`).

    Parameters
    ----------
    backbone
        Coordinate network: ``"ffn"`` (the paper's, for denser slices), ``"siren"`` (sparser
        slices; the default) or ``"hashgrid"``.
    preset
        ``"stfield"`` (default: the configuration measured best on real slices, issue #8),
        ``"paper"`` (the published configuration, exactly) or ``"fast"`` (the stfield
        architecture; the name of the short training schedule for tests). It also names the
        training preset :meth:`fit` uses when its own ``preset`` is not given.
    backbone_kwargs
        Options of the backbone class (e.g. FFN ``width``, ``depth``, ``scale``, ``mapping_size``,
        ``activation``; SIREN ``width``, ``w0``; hash grid ``n_levels``, ``max_resolution``).
        ``None`` takes the preset's when ``backbone`` is the preset's, else the class defaults.
        The FFN default is the paper's ``scale=10``; ``{"scale": "auto"}`` is the explicit
        data-aware choice: a quarter of the spots' Nyquist frequency
        (:func:`~stfield.models.backbones.nyquist_scale`, 2.5 for 10 µm bins of the Xenium demo
        crop), resolved at fit time and saved as a number. SIREN's ``{"w0": "auto"}`` (the
        default preset's) is the same frequency in radians: 15 on that crop instead of the fixed
        30.
    latent_dim
        Embedding dimension (64; the paper's 32).
    gae_hidden
        Encoder widths, the first being the graph convolution's output (``(512, 128, 64)``;
        the paper's ``(2048, 512, 64)``); the decoder mirrors them.
    n_neighbors
        k of the spatial kNN graph (5, self included).
    graph_normalization
        ``"gcn"`` (symmetric ``D^-1/2 (A + I) D^-1/2``, as the paper's GCN) or ``"reference"``
        (binary directed rows, as the published code).
    inr_loss
        Stage-2 loss: ``"l1+mse"`` (published code) or ``"mse"`` (paper eq. 2).
    dice_weight
        λ of the Dice term in stage 3 (0.01; 0 disables it).
    decoder_activation
        Output activation of the decoder: ``"relu"`` (published) or ``"leaky"`` (default: leaky
        ReLU while training, ReLU at inference, so no gene can die; see
        :class:`~stfield.models.gae.LeakyWhileTraining`).
    blend
        ``"knn"`` (default): predictions are mixed with Gaussian-kernel interpolation of the
        neighbouring fitted spots (bandwidth by leave-one-out, from below one spot spacing up to
        the per-gene mean), with a weight, and whether each spot's mix is rescaled to the
        field's predicted total, chosen on held-out training spots
        (:mod:`stfield.models.blend`); the fitted spots are stored with the model. ``"none"``
        (published): the field alone.
    accelerator
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:N]"``.
    bf16
        Use bfloat16 autocast on CUDA (ignored on CPU).
    seed
        Seed of weights, Fourier features, shuffling and validation subsets.
    """

    def __init__(
        self,
        backbone: str | None = None,
        *,
        preset: str = "stfield",
        backbone_kwargs: dict[str, Any] | None = None,
        latent_dim: int | None = None,
        gae_hidden: Sequence[int] | None = None,
        n_neighbors: int = 5,
        graph_normalization: str = "gcn",
        inr_loss: str = "l1+mse",
        dice_weight: float = 0.01,
        decoder_activation: str | None = None,
        blend: str | None = None,
        accelerator: str = "auto",
        bf16: bool = False,
        seed: int = 0,
    ) -> None:
        if preset not in PRESET_ARCHITECTURE:
            raise input_error(
                f"unknown preset {preset!r}", "preset", f"use one of {sorted(PRESET_ARCHITECTURE)}"
            )
        arch = ARCHITECTURES[PRESET_ARCHITECTURE[preset]]
        if backbone_kwargs is None:
            same = backbone is None or backbone == arch["backbone"]
            backbone_kwargs = dict(arch["backbone_kwargs"]) if same else {}
        backbone = arch["backbone"] if backbone is None else backbone
        gae_hidden = arch["gae_hidden"] if gae_hidden is None else gae_hidden
        latent_dim = arch["latent_dim"] if latent_dim is None else latent_dim
        decoder_activation = decoder_activation or arch["decoder_activation"]
        blend = blend or arch["blend"]
        if backbone not in BACKBONES:
            raise input_error(
                f"unknown backbone {backbone!r}", "backbone", f"use one of {sorted(BACKBONES)}"
            )
        if inr_loss not in ("l1+mse", "mse"):
            raise input_error(f"unknown inr_loss {inr_loss!r}", "inr_loss", "use 'l1+mse' or 'mse'")
        if graph_normalization not in ("gcn", "reference"):
            raise input_error(
                f"unknown graph_normalization {graph_normalization!r}",
                "graph_normalization",
                "use 'gcn' or 'reference'",
            )
        if latent_dim < 1 or n_neighbors < 1 or not gae_hidden:
            raise input_error(
                "latent_dim and n_neighbors must be >= 1 and gae_hidden non-empty", "SUICA"
            )
        if decoder_activation not in DECODER_ACTIVATIONS:
            raise input_error(
                f"unknown decoder_activation {decoder_activation!r}",
                "decoder_activation",
                f"use one of {list(DECODER_ACTIVATIONS)}",
            )
        if blend not in ("none", "knn"):
            raise input_error(f"unknown blend {blend!r}", "blend", "use 'none' or 'knn'")
        if not dice_weight >= 0:
            raise input_error(f"dice_weight must be >= 0, got {dice_weight}", "dice_weight")
        self.preset = preset
        self.backbone_name = backbone
        self.backbone_kwargs = dict(backbone_kwargs or {})
        self.latent_dim = int(latent_dim)
        self.gae_hidden = tuple(int(h) for h in gae_hidden)
        self.n_neighbors = int(n_neighbors)
        self.graph_normalization = graph_normalization
        self.inr_loss = inr_loss
        self.dice_weight = float(dice_weight)
        self.decoder_activation = decoder_activation
        self.blend = blend
        self.accelerator = accelerator
        self.bf16 = bool(bf16)
        self.seed = int(seed)
        self.device = resolve_device(accelerator)

        self.gae: GAE | None = None
        self.backbone: Backbone | None = None
        self.gene_names: list[str] | None = None
        self.coord_dim: int | None = None
        self.coord_center: np.ndarray | None = None
        self.coord_scale: float | None = None
        self.coord_min: np.ndarray | None = None
        self.coord_max: np.ndarray | None = None
        self.fit_params: dict[str, Any] = {}
        self.history: dict[str, list[float]] = {}
        self.timings_: dict[str, float] = {}
        self.val_indices_: np.ndarray | None = None
        self.blend_: InterpolationBlend | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def is_fitted(self) -> bool:
        return self.backbone is not None and self.gae is not None

    @property
    def n_genes(self) -> int:
        self._check_fitted()
        return len(self.gene_names)  # type: ignore[arg-type]

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise input_error(
                "the model is not fitted", "SUICA", "call fit(X, coords) or SUICA.load(path) first"
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16 and str(self.device).startswith("cuda"):
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _set_normalization(self, coords: np.ndarray) -> None:
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        self.coord_min, self.coord_max = lo, hi
        self.coord_center = (lo + hi) / 2.0
        half = float(np.max(hi - lo)) / 2.0
        # One scale for every axis keeps the aspect ratio: the longest axis spans [-1, 1].
        self.coord_scale = half if half > 0 else 1.0

    def normalize_coords(self, coords: np.ndarray) -> np.ndarray:
        """Scale coordinates (µm) the way the model was fitted (float32)."""
        self._check_fitted()
        return self._scale_coords(coords)

    def _scale_coords(self, coords: np.ndarray) -> np.ndarray:
        return ((coords - self.coord_center) / self.coord_scale).astype(np.float32)

    def _check_query(self, coords: np.ndarray | Sequence, where: str = "coords") -> np.ndarray:
        self._check_fitted()
        arr = np.asarray(coords, dtype=np.float64) if not isinstance(coords, np.ndarray) else coords
        if arr.ndim == 2 and arr.shape[1] != self.coord_dim:
            hint = (
                "give x, y, z columns (the model was fitted in 3-D)"
                if self.coord_dim == 3
                else "give x, y columns only (the model was fitted in 2-D)"
            )
            raise input_error(
                f"coordinates have {arr.shape[1]} column(s), the model expects {self.coord_dim}",
                where,
                hint,
            )
        return check_coordinates(arr, where, dims=(int(self.coord_dim),))  # type: ignore[arg-type]

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: np.ndarray | sp.spmatrix,
        coords: np.ndarray,
        *,
        gene_names: Sequence[str] | None = None,
        adjacency: sp.spmatrix | None = None,
        preset: str | None = None,
        epochs_gae: int | None = None,
        epochs_inr: int | None = None,
        epochs_decoder: int | None = None,
        lr_gae: float | None = None,
        lr_inr: float | None = None,
        lr_decoder: float | None = None,
        batch_size_gae: int | str | None = None,
        batch_size_inr: int | str | None = None,
        batch_size_decoder: int | str | None = None,
        val_fraction: float = 0.0,
        patience: int | None = None,
        progress: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 0,
        resume: bool = False,
    ) -> SUICA:
        """Fit the three stages on one slice.

        Parameters
        ----------
        X
            ``(n_spots, n_genes)`` non-negative expression, CSR (dense arrays are converted).
        coords
            ``(n_spots, 2)`` or ``(n_spots, 3)`` coordinates in µm.
        gene_names
            Names stored with the model (default ``gene_0 …``).
        adjacency
            Normalised ``(n, n)`` spot graph; default
            ``stfield.pp.spatial_neighbors(coords, k=n_neighbors, normalization=...)``.
        preset
            Source of every training option left at ``None``: ``"stfield"``, ``"paper"`` or
            ``"fast"`` (see :data:`PRESETS`); ``None`` uses the model's ``preset``.
        epochs_gae, epochs_inr, epochs_decoder
            Epochs of each stage.
        lr_gae, lr_inr, lr_decoder
            Learning rates (Adam, AdamW, Adam).
        batch_size_gae, batch_size_inr, batch_size_decoder
            Rows per optimizer step: an integer, ``"auto"`` or ``None`` (full batch).
        val_fraction
            Fraction of spots held out (seeded) to monitor each stage; the best-validation weights
            are kept. The held-out spots stay in the graph but never enter a training loss.
        patience
            Early stopping after this many epochs without validation improvement (needs
            ``val_fraction > 0``).
        progress
            Show progress bars with the current loss.
        checkpoint_dir
            Folder for ``checkpoint.pt``: written at the end of every stage and, with
            ``checkpoint_every`` > 0, every that many epochs inside a stage (atomically).
        checkpoint_every
            Epochs between checkpoints inside a stage (0: stage ends only).
        resume
            Continue from the checkpoint in ``checkpoint_dir`` (same data and options; refused
            otherwise). On CPU the resumed fit ends with the weights of an uninterrupted one.
        """
        if resume and checkpoint_dir is None:
            raise input_error("resume needs the checkpoint folder", "resume", "pass checkpoint_dir")
        preset = self.preset if preset is None else preset
        params = self._resolve_params(
            preset,
            epochs_gae=epochs_gae,
            epochs_inr=epochs_inr,
            epochs_decoder=epochs_decoder,
            lr_gae=lr_gae,
            lr_inr=lr_inr,
            lr_decoder=lr_decoder,
            batch_size_gae=batch_size_gae,
            batch_size_inr=batch_size_inr,
            batch_size_decoder=batch_size_decoder,
        )
        Xc = as_csr(X)
        check_counts(Xc, "X")
        n, g = Xc.shape
        if n and g and not Xc.data.any():
            raise input_error(
                f"all counts are zero ({n} spots x {g} genes)",
                "X",
                "check the layer / file: SUICA needs measured expression to fit",
            )
        coords_arr = check_coordinates(coords, "coords", n_rows=n)
        if n < 4:
            raise input_error(f"{n} spot(s)", "X", "SUICA needs at least 4 spots")
        if gene_names is None:
            gene_names = [f"gene_{i}" for i in range(g)]
        gene_names = [str(name) for name in gene_names]
        if len(gene_names) != g:
            raise input_error(
                f"{len(gene_names)} gene names for {g} genes", "gene_names", "give one per column"
            )
        if not 0.0 <= val_fraction < 1.0:
            raise input_error(f"val_fraction must be in [0, 1), got {val_fraction}", "val_fraction")
        if self.blend == "knn" and val_fraction == 0:
            # The blend weight is chosen on spots the field never trained on.
            val_fraction = BLEND_VAL_FRACTION
        if patience is not None and val_fraction == 0:
            raise input_error(
                "early stopping needs a validation subset",
                "patience",
                "pass val_fraction > 0 (e.g. 0.1) or patience=None",
            )

        rng = seed_everything(self.seed)
        self.gene_names = gene_names
        self.coord_dim = coords_arr.shape[1]
        self._set_normalization(coords_arr)
        self.fit_params = {"preset": preset, **params, "val_fraction": val_fraction}
        self.fit_params["patience"] = patience

        if val_fraction > 0:
            n_val = max(1, round(val_fraction * n))
            perm = rng.permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        else:
            val_idx, train_idx = np.empty(0, dtype=np.int64), np.arange(n)
        self.val_indices_ = val_idx

        if adjacency is None:
            from ..pp import spatial_neighbors

            adjacency = spatial_neighbors(
                coords_arr,
                k=self.n_neighbors,
                include_self=True,
                normalization=self.graph_normalization,
            )
        if adjacency.shape != (n, n):
            raise input_error(
                f"adjacency has shape {adjacency.shape}, expected {(n, n)}",
                "adjacency",
                "pass the (n_spots, n_spots) graph of these spots",
            )

        try:
            torch.manual_seed(self.seed)
            self.gae = GAE(g, self.gae_hidden, self.latent_dim, self.decoder_activation).to(
                self.device
            )
            self.backbone = make_backbone(
                self.backbone_name,
                self.coord_dim,
                self.latent_dim,
                **self._resolved_backbone_kwargs(coords_arr),
            ).to(self.device)
            self.history, self.timings_ = {}, {}

            ckpt = None
            if checkpoint_dir is not None:
                ckpt = Checkpointer(
                    checkpoint_dir,
                    checkpoint_every,
                    self._fit_fingerprint(Xc, coords_arr, adjacency, val_idx),
                    lambda: {"gae": self.gae, "backbone": self.backbone},
                    rng,
                )
                if resume:
                    ckpt.restore()
            coords_t = torch.from_numpy(self._scale_coords(coords_arr)).to(self.device)
            batcher = GraphBatcher(adjacency, self.device)
            bs_gae = resolve_batch_size(params["batch_size_gae"], "gae", train_idx.size, g)
            bs_inr = resolve_batch_size(params["batch_size_inr"], "inr", train_idx.size, g)
            bs_dec = resolve_batch_size(params["batch_size_decoder"], "decoder", train_idx.size, g)
            self.fit_params["resolved_batch_sizes"] = {
                "gae": bs_gae,
                "inr": bs_inr,
                "decoder": bs_dec,
            }

            common = {"patience": patience, "progress": progress, "checkpointer": ckpt}
            # Stage 1: graph autoencoder.
            if not self._restored("gae", ckpt):
                hist = self._fit_gae(
                    Xc,
                    batcher,
                    train_idx,
                    val_idx,
                    params["epochs_gae"],
                    params["lr_gae"],
                    bs_gae,
                    rng,
                    **common,
                )
                self._finish_stage(hist, ckpt)
            # Stage 2: coordinates -> embedding.
            if not self._restored("inr", ckpt):
                z_gt = self._encode_rows(Xc, batcher, np.arange(n), bs_gae)
                hist = self._fit_inr(
                    coords_t,
                    z_gt,
                    train_idx,
                    val_idx,
                    params["epochs_inr"],
                    params["lr_inr"],
                    bs_inr,
                    rng,
                    **common,
                )
                del z_gt
                self._finish_stage(hist, ckpt)
            # Stage 3: decoder fine-tuning on the frozen INR's outputs.
            if not self._restored("decoder", ckpt):
                hist = self._fit_decoder(
                    Xc,
                    coords_t,
                    train_idx,
                    val_idx,
                    params["epochs_decoder"],
                    params["lr_decoder"],
                    bs_dec,
                    rng,
                    **common,
                )
                self._finish_stage(hist, ckpt)
            self.gae.eval()
            self.backbone.eval()
            self.blend_ = None
            if self.blend == "knn":
                self.blend_ = self._fit_blend(Xc, coords_arr, train_idx, val_idx)
        except BaseException:
            # A failed or interrupted fit leaves an unfitted model, never a half-trained one.
            self.gae = self.backbone = None
            self.blend_ = None
            raise
        return self

    def _fit_blend(
        self, X: sp.csr_matrix, coords: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray
    ) -> InterpolationBlend:
        """Choose the interpolation weight on the held-out spots, then store every spot."""
        from ..bench.baselines.gaussian import GaussianSmoother

        space = self._blend_space(coords)
        # X[train_idx] is a fresh copy already: the interpolator may keep it as is.
        held_out = GaussianSmoother(seed=self.seed).fit(
            X[train_idx].astype(np.float32, copy=False), space[train_idx], copy=False
        )
        # Both predictions are gathered at the held-out truth's non-zeros one block of rows at a
        # time: a tenth of an atlas slice is never dense.
        truth = X[val_idx].tocsr()
        rows_per_block = max(1, DENSE_BATCH_ELEMENTS // max(X.shape[1], 1))
        parts: list[tuple[np.ndarray, ...]] = []
        totals: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, val_idx.size, rows_per_block):
            block = truth[start : start + rows_per_block].tocoo()
            keep = block.data > 0
            r, c = block.row[keep], block.col[keep]
            rows_here = val_idx[start : start + rows_per_block]
            field = self.predict(coords[rows_here])  # blend_ is None here: the field alone
            interpolated = held_out.predict(space[rows_here])
            parts.append((r + start, c, block.data[keep], field[r, c], interpolated[r, c]))
            totals.append((field.sum(axis=1), interpolated.sum(axis=1)))
        rows, cols, t, f, i = (np.concatenate(a) for a in zip(*parts, strict=True))
        field_totals, interp_totals = (np.concatenate(a) for a in zip(*totals, strict=True))
        weight, rescale, scores = choose_weight_gathered(
            rows, cols, t, f, i, truth.shape, totals=(field_totals, interp_totals)
        )
        del held_out  # its copy of the training spots is not needed past this point
        # Every spot; the bandwidth by leave-one-out again, now on all of them.
        interpolator = GaussianSmoother(seed=self.seed).fit(X, space)
        spacings = interpolator.bandwidth_ / interpolator.spacing_
        self.fit_params["blend"] = {
            "weight": weight,
            "rescale": rescale,
            "bandwidth_spacings": "inf" if math.isinf(spacings) else round(spacings, 4),
            "val_spots": int(val_idx.size),
        }
        logger.info(
            "blend: interpolation weight %.2f%s (bandwidth %.3g spot spacings) chosen on %d "
            "held-out spots: %s",
            weight,
            ", rescaled to the field's totals" if rescale else "",
            spacings,
            val_idx.size,
            scores[(weight, rescale)],
        )
        return InterpolationBlend(interpolator, weight, normalized=True, rescale=rescale)

    def _blend_space(self, coords: np.ndarray) -> np.ndarray:
        """Coordinates the blend's neighbours are found in: the field's normalised frame.

        Rounded to 1e-9 of the half-extent so that equidistant neighbours on a spot lattice
        (binned data) tie exactly, and break the same way, whatever the unit of the input.
        """
        return np.round((coords - self.coord_center) / self.coord_scale, 9)

    def _resolved_backbone_kwargs(self, coords: np.ndarray) -> dict[str, Any]:
        kwargs = dict(self.backbone_kwargs)
        if self.backbone_name == "ffn" and kwargs.get("scale") == "auto":
            kwargs["scale"] = nyquist_scale(self._scale_coords(coords))
            logger.info("FFN scale 'auto' resolved to %.3g", kwargs["scale"])
        if self.backbone_name == "siren" and kwargs.get("w0") == "auto":
            # The same quarter of the spots' Nyquist frequency, as an angular frequency: 15 for
            # 10 µm bins of the demo crop, where the fixed w0 = 30 left high-frequency noise
            # between spots (docs/benchmarks.md, issue #8).
            kwargs["w0"] = 2.0 * math.pi * nyquist_scale(self._scale_coords(coords))
            logger.info("SIREN w0 'auto' resolved to %.3g", kwargs["w0"])
        return kwargs

    @staticmethod
    def _resolve_params(preset: str, **overrides: Any) -> dict[str, Any]:
        if preset not in PRESETS:
            raise input_error(
                f"unknown preset {preset!r}", "preset", f"use one of {sorted(PRESETS)}"
            )
        params = dict(PRESETS[preset])
        for key, value in overrides.items():
            if value is not None:
                params[key] = value
        for stage in STAGES:
            epochs = params[f"epochs_{stage}"]
            if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
                raise input_error(
                    f"epochs_{stage} must be an integer >= 0, got {epochs!r}", f"epochs_{stage}"
                )
            lr = params[f"lr_{stage}"]
            if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
                raise input_error(f"lr_{stage} must be a number > 0, got {lr!r}", f"lr_{stage}")
        return params

    def _record(self, hist: StageHistory) -> None:
        self.history[hist.name] = hist.loss
        if hist.val_loss:
            self.history[f"{hist.name}_val"] = hist.val_loss
        self.timings_[hist.name] = hist.seconds
        logger.info(
            "SUICA stage %s: %d epoch(s) in %.1f s, final loss %s",
            hist.name,
            len(hist.loss),
            hist.seconds,
            f"{hist.loss[-1]:.4g}" if hist.loss else "n/a",
        )

    def _restored(self, stage: str, ckpt: Checkpointer | None) -> bool:
        """Whether ``stage`` finished before the checkpoint being resumed (history restored)."""
        if ckpt is None or stage not in ckpt.completed:
            return False
        done = StageProgress.from_dict(ckpt.completed[stage])
        self._record(
            StageHistory(
                stage,
                loss=done.loss,
                val_loss=done.val_loss,
                best_epoch=done.best_epoch,
                stopped_early=done.stopped_early,
                seconds=done.seconds,
            )
        )
        return True

    def _finish_stage(self, hist: StageHistory, ckpt: Checkpointer | None) -> None:
        self._record(hist)
        if ckpt is not None and hist.progress is not None:
            ckpt.stage_done(hist.progress)

    def _fit_fingerprint(
        self,
        X: sp.csr_matrix,
        coords: np.ndarray,
        adjacency: sp.spmatrix,
        val_idx: np.ndarray,
    ) -> str:
        """Hash of what a checkpoint depends on: data summary, graph, split and every option.

        Counts enter through cheap O(nnz) sums, not a copy of the matrix.
        """
        adj = sp.csr_matrix(adjacency)
        return fingerprint(
            shape=list(X.shape),
            nnz=int(X.nnz),
            data_sum=float(X.data.sum(dtype=np.float64)),
            index_sum=int(X.indices.sum(dtype=np.int64)),
            coords=np.asarray(coords, dtype=np.float64),
            graph=[int(adj.nnz), float(adj.data.sum(dtype=np.float64))],
            val_idx=np.asarray(val_idx, dtype=np.int64),
            genes=list(self.gene_names or []),
            params=self.fit_params,
            model=[
                self.backbone_name,
                self.backbone_kwargs,
                self.latent_dim,
                list(self.gae_hidden),
                self.n_neighbors,
                self.graph_normalization,
                self.inr_loss,
                self.dice_weight,
                self.decoder_activation,
                self.blend,
                self.seed,
            ],
        )

    def _fit_gae(
        self,
        X: sp.csr_matrix,
        batcher: GraphBatcher,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        epochs: int,
        lr: float,
        batch_size: int,
        rng: np.random.Generator,
        patience: int | None,
        progress: bool,
        checkpointer: Checkpointer | None = None,
    ) -> StageHistory:
        gae = self.gae
        assert gae is not None
        optimizer = torch.optim.Adam(gae.parameters(), lr=lr)

        def loss_on(rows: np.ndarray) -> torch.Tensor:
            # Â[rows] log1p(X) is formed sparse; only the batch's own rows are densified (the
            # loss target), never its neighbours': memory and time follow nnz, not nodes × genes.
            ax = batcher.aggregate(X, rows)
            x = dense_rows(X, rows, self.device)
            with self._autocast():
                recon = gae.decoder(gae.encode_aggregated(ax))
            return torch.mean((recon.float() - x) ** 2)

        return run_minibatch_stage(
            "gae",
            gae,
            optimizer,
            loss_on,
            train_idx,
            epochs,
            batch_size=batch_size,
            rng=rng,
            val_idx=val_idx,
            patience=patience,
            progress=progress,
            checkpointer=checkpointer,
        )

    @torch.no_grad()
    def _encode_rows(
        self, X: sp.csr_matrix, batcher: GraphBatcher, rows: np.ndarray, batch_size: int
    ) -> torch.Tensor:
        gae = self.gae
        assert gae is not None
        gae.eval()
        out = []
        for chunk in batch_indices(rows, batch_size, shuffle=False):
            ax = batcher.aggregate(X, chunk)
            with self._autocast():
                out.append(gae.encode_aggregated(ax).float())
        return torch.cat(out)

    def _fit_inr(
        self,
        coords_t: torch.Tensor,
        z_gt: torch.Tensor,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        epochs: int,
        lr: float,
        batch_size: int,
        rng: np.random.Generator,
        patience: int | None,
        progress: bool,
        checkpointer: Checkpointer | None = None,
    ) -> StageHistory:
        net = self.backbone
        assert net is not None
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
        loss_fn = l1_mse_loss if self.inr_loss == "l1+mse" else nn.functional.mse_loss

        def loss_on(rows: np.ndarray) -> torch.Tensor:
            idx = torch.from_numpy(rows).to(self.device)
            with self._autocast():
                pred = net(coords_t[idx])
            return loss_fn(pred.float(), z_gt[idx])

        return run_minibatch_stage(
            "inr",
            net,
            optimizer,
            loss_on,
            train_idx,
            epochs,
            batch_size=batch_size,
            rng=rng,
            val_idx=val_idx,
            patience=patience,
            progress=progress,
            checkpointer=checkpointer,
        )

    def _fit_decoder(
        self,
        X: sp.csr_matrix,
        coords_t: torch.Tensor,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        epochs: int,
        lr: float,
        batch_size: int,
        rng: np.random.Generator,
        patience: int | None,
        progress: bool,
        checkpointer: Checkpointer | None = None,
    ) -> StageHistory:
        assert self.gae is not None and self.backbone is not None
        decoder = self.gae.decoder
        self.backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        try:
            # The INR is frozen: its embeddings of the spots are computed once.
            z_hat = self._embed_tensor(coords_t, INR_FULL_BATCH_MAX)
            optimizer = torch.optim.Adam(decoder.parameters(), lr=lr)

            def loss_on(rows: np.ndarray) -> torch.Tensor:
                idx = torch.from_numpy(rows).to(self.device)
                y = dense_rows(X, rows, self.device)
                with self._autocast():
                    pred = decoder(z_hat[idx])
                return suica_decoder_loss(pred.float(), y, self.dice_weight)

            return run_minibatch_stage(
                "decoder",
                decoder,
                optimizer,
                loss_on,
                train_idx,
                epochs,
                batch_size=batch_size,
                rng=rng,
                val_idx=val_idx,
                patience=patience,
                progress=progress,
                checkpointer=checkpointer,
            )
        finally:
            for p in self.backbone.parameters():
                p.requires_grad_(True)

    # ----------------------------------------------------------------- queries
    @torch.no_grad()
    def _embed_tensor(self, coords_t: torch.Tensor, batch_size: int) -> torch.Tensor:
        net = self.backbone
        assert net is not None
        net.eval()
        out = []
        for start in range(0, coords_t.shape[0], batch_size):
            with self._autocast():
                out.append(net(coords_t[start : start + batch_size]).float())
        if not out:
            return torch.empty(0, self.latent_dim, device=coords_t.device)
        return torch.cat(out)

    def _predict_batches(
        self,
        coords: np.ndarray,
        batch_size: int | None,
        exclude_self: bool = False,
        interpolate: bool = True,
    ) -> Iterator[np.ndarray]:
        """Yield dense float32 predictions for consecutive row batches of ``coords`` (µm)."""
        assert self.gae is not None and self.backbone is not None
        # "auto" sizes the batch by the widest layer, not the genes alone: with a small panel
        # (e.g. 100 genes) the 2048-wide hidden layers would otherwise take ~20k-row batches.
        bs = resolve_batch_size(
            "auto" if batch_size is None else batch_size,
            "predict",
            coords.shape[0],
            max(self.n_genes, _widest_layer(self.gae.decoder, self.backbone)),
        )
        self.gae.eval()
        self.backbone.eval()
        for start in range(0, coords.shape[0], bs):
            chunk = self.normalize_coords(coords[start : start + bs])
            with torch.inference_mode(), self._autocast():
                c = torch.from_numpy(chunk).to(self.device)
                y = self.gae.decoder(self.backbone(c))
            block = y.float().cpu().numpy()
            if self.blend_ is not None and interpolate:
                where = coords[start : start + bs]
                if self.blend_.normalized:
                    where = self._blend_space(where)
                block = self.blend_.mix(block, where, exclude_self)
            yield block

    def predict(
        self,
        coords: np.ndarray,
        *,
        batch_size: int | None = None,
        sparse: bool = False,
        exclude_self: bool = False,
        interpolate: bool = True,
    ) -> np.ndarray | sp.csr_matrix:
        """Expression at any coordinates (µm), shape ``(n, n_genes)``.

        Computed in batches of ``batch_size`` rows (default: about 2M values per batch), so memory
        beyond the output stays bounded. ``sparse=True`` returns a CSR matrix (the ReLU output has
        exact zeros) without ever holding the dense result. ``exclude_self`` matters only with
        ``blend="knn"``: a query on a fitted spot is interpolated from the other spots (use it to
        impute the fitted spots themselves). ``interpolate=False`` returns the field alone, without
        the blend (denoising: at a fitted spot the field has seen the spot's own measurement and
        reconstructs it better than any mix with its neighbours; ``docs/benchmarks.md``).
        """
        arr = self._check_query(coords)
        if arr.shape[0] == 0:
            empty = np.zeros((0, self.n_genes), dtype=np.float32)
            return sp.csr_matrix(empty) if sparse else empty
        if sparse:
            # Non-zeros are appended batch by batch: memory is the CSR output plus one batch.
            builder = CSRBuilder(self.n_genes, expected_rows=arr.shape[0])
            for block in self._predict_batches(arr, batch_size, exclude_self, interpolate):
                builder.append_dense(block)
            return builder.finish()
        out = np.empty((arr.shape[0], self.n_genes), dtype=np.float32)
        start = 0
        for block in self._predict_batches(arr, batch_size, exclude_self, interpolate):
            out[start : start + block.shape[0]] = block
            start += block.shape[0]
        return out

    def embed(self, coords: np.ndarray, *, batch_size: int = INR_FULL_BATCH_MAX) -> np.ndarray:
        """INR embedding (``latent_dim`` values) at any coordinates (µm)."""
        arr = self._check_query(coords)
        c = torch.from_numpy(self.normalize_coords(arr)).to(self.device)
        return self._embed_tensor(c, batch_size).cpu().numpy()

    def encode(
        self,
        X: np.ndarray | sp.spmatrix,
        coords: np.ndarray,
        *,
        adjacency: sp.spmatrix | None = None,
        batch_size: int = 512,
    ) -> np.ndarray:
        """GAE embedding of measured spots (the stage-2 targets) from their counts and graph."""
        self._check_fitted()
        Xc = as_csr(X)
        check_counts(Xc, "X")
        if Xc.shape[1] != self.n_genes:
            raise input_error(
                f"X has {Xc.shape[1]} genes, the model {self.n_genes}",
                "X",
                "give the genes the model was fitted on, in the same order",
            )
        arr = check_coordinates(coords, "coords", n_rows=Xc.shape[0], dims=(int(self.coord_dim),))
        if adjacency is None:
            from ..pp import spatial_neighbors

            adjacency = spatial_neighbors(
                arr, k=self.n_neighbors, include_self=True, normalization=self.graph_normalization
            )
        batcher = GraphBatcher(adjacency, self.device)
        return self._encode_rows(Xc, batcher, np.arange(Xc.shape[0]), batch_size).cpu().numpy()

    def grid_axes(
        self, step_um: float, bounds: Sequence[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The x and y positions (µm) of a regular grid of step ``step_um`` inside ``bounds``.

        ``bounds = (x_min, y_min, x_max, y_max)``; default the bounding box of the fitted spots.
        """
        self._check_fitted()
        try:
            step = float(step_um)
        except (TypeError, ValueError):
            raise input_error(f"grid step {step_um!r} is not a number", "step_um") from None
        if not (math.isfinite(step) and step > 0):
            raise input_error(
                f"grid step must be a positive number of µm, got {step_um}",
                "step_um",
                "pass e.g. step_um=5.0",
            )
        if bounds is None:
            assert self.coord_min is not None and self.coord_max is not None
            bounds = (self.coord_min[0], self.coord_min[1], self.coord_max[0], self.coord_max[1])
        b = np.asarray(bounds, dtype=np.float64)
        if b.shape != (4,) or not np.isfinite(b).all() or b[2] < b[0] or b[3] < b[1]:
            raise input_error(
                f"bounds must be finite (x_min, y_min, x_max, y_max) with max >= min, got {bounds}",
                "bounds",
            )
        nx = math.floor((b[2] - b[0]) / step + 1e-9) + 1
        ny = math.floor((b[3] - b[1]) / step + 1e-9) + 1
        return b[0] + step * np.arange(nx), b[1] + step * np.arange(ny)

    def render_grid(
        self,
        step_um: float,
        bounds: Sequence[float] | None = None,
        *,
        tile: int = 256,
        z: float | None = None,
        max_points: int = 20_000_000,
    ) -> AnnData:
        """Predict on a regular grid (super-resolution), tile by tile.

        Parameters
        ----------
        step_um
            Grid step in µm (smaller than the spot pitch gives super-resolution).
        bounds
            ``(x_min, y_min, x_max, y_max)`` in µm; default the fitted spots' bounding box.
        tile
            At most ``tile²`` grid points (a row-major run) are predicted at once, and each run is
            stored sparse before the next one is computed: memory is the sparse output plus one
            run.
        z
            Plane of a 3-D model (default the middle of the fitted z range); ignored in 2-D.
        max_points
            Refuse grids with more points than this (choose a larger step).

        Returns
        -------
        AnnData with one observation per grid point in row-major order (y outer, x inner):
        CSR ``X`` (float32), ``obsm["spatial"]`` in µm, ``obs["grid_row"]``/``["grid_col"]`` and
        ``uns["stfield"]["grid"]`` (step, shape ``(n_rows, n_cols)``, origin, bounds).
        """
        self._check_fitted()
        if isinstance(tile, bool) or not isinstance(tile, int | np.integer) or tile < 1:
            raise input_error(f"tile must be an integer >= 1, got {tile!r}", "tile")
        xs, ys = self.grid_axes(step_um, bounds)
        nx, ny = xs.size, ys.size
        if nx * ny > max_points:
            raise input_error(
                f"the grid has {nx} x {ny} = {nx * ny:,} points (limit {max_points:,})",
                "step_um",
                "use a larger step_um, smaller bounds, or raise max_points",
            )
        if self.coord_dim == 3:
            assert self.coord_min is not None and self.coord_max is not None
            z_val = float((self.coord_min[2] + self.coord_max[2]) / 2.0) if z is None else float(z)
            if not math.isfinite(z_val):
                raise input_error(f"z must be finite, got {z}", "z")
        else:
            z_val = None
        # Row-major runs of at most tile² points are predicted and appended to one CSR buffer, so
        # memory beyond the output is one run, whatever the grid size (no per-strip copies).
        builder = CSRBuilder(self.n_genes, expected_rows=nx * ny)
        run = tile * tile
        for start in range(0, nx * ny, run):
            ry, rx = np.divmod(np.arange(start, min(start + run, nx * ny)), nx)
            pts = [xs[rx], ys[ry]]
            if z_val is not None:
                pts.append(np.full(rx.size, z_val))
            for block in self._predict_batches(np.column_stack(pts), None):
                builder.append_dense(block)
        X = builder.finish()
        gy, gx = np.divmod(np.arange(nx * ny), nx)
        spatial = [xs[gx], ys[gy]]
        if z_val is not None:
            spatial.append(np.full(gx.size, z_val))
        obs = pd.DataFrame(
            {"grid_row": gy.astype(np.int32), "grid_col": gx.astype(np.int32)},
            index=pd.Index(np.arange(nx * ny).astype(str), name="grid_point"),
        )
        adata = AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(self.gene_names)))
        adata.obsm[SPATIAL_KEY] = np.column_stack(spatial)
        adata.uns[UNS_KEY] = {
            "grid": {
                "step_um": float(step_um),
                "shape": [int(ny), int(nx)],
                "origin_um": [float(xs[0]), float(ys[0])],
                "bounds_um": [float(xs[0]), float(ys[0]), float(xs[-1]), float(ys[-1])],
                **({"z_um": z_val} if z_val is not None else {}),
            },
            "spatial_unit": "um",
        }
        return adata

    # --------------------------------------------------------------- save/load
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild the model (JSON-serialisable)."""
        self._check_fitted()
        assert self.backbone is not None
        from .. import __version__

        backbone_cfg = self.backbone.config()
        backbone_cfg.pop("in_dim", None)
        backbone_cfg.pop("out_dim", None)
        return {
            "stfield_version": __version__,
            "preset": self.preset,
            "backbone": self.backbone_name,
            "backbone_kwargs": backbone_cfg,
            "latent_dim": self.latent_dim,
            "gae_hidden": list(self.gae_hidden),
            "n_neighbors": self.n_neighbors,
            "graph_normalization": self.graph_normalization,
            "inr_loss": self.inr_loss,
            "dice_weight": self.dice_weight,
            "decoder_activation": self.decoder_activation,
            "blend": self.blend,
            "blend_params": self.blend_.config() if self.blend_ is not None else None,
            "bf16": self.bf16,
            "seed": self.seed,
            "coord_dim": self.coord_dim,
            "gene_names": list(self.gene_names or []),
            "coord_unit": "um",
            "fit_params": self.fit_params,
            "history": self.history,
            "timings_s": self.timings_,
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        self._check_fitted()
        assert self.gae is not None and self.backbone is not None
        state = {f"gae.{k}": v for k, v in self.gae.state_dict().items()}
        state.update({f"backbone.{k}": v for k, v in self.backbone.state_dict().items()})
        return state

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model directory (config JSON + safetensors + coordinate normalisation)."""
        self._check_fitted()
        arrays = {
            "coord_center": np.asarray(self.coord_center, dtype=np.float64),
            "coord_scale": np.asarray([self.coord_scale], dtype=np.float64),
            "coord_min": np.asarray(self.coord_min, dtype=np.float64),
            "coord_max": np.asarray(self.coord_max, dtype=np.float64),
        }
        if self.val_indices_ is not None and self.val_indices_.size:
            arrays["val_indices"] = self.val_indices_.astype(np.int64)
        if self.blend_ is not None:
            arrays.update(self.blend_.to_arrays())
        save_model_dir(path, MODEL_KIND, self.config(), self.state_dict(), arrays)
        logger.info("saved SUICA model to %s", path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, accelerator: str = "auto") -> SUICA:
        """Load a model written by :meth:`save`; predictions match the saved model's."""
        try:
            config, state, arrays = load_model_dir(path, MODEL_KIND)
        except StfieldFileNotFoundError as exc:
            raise ModelDirNotFoundError(
                f"{exc}. Fix: pass the directory written by SUICA.save / `stfield fit --out`"
            ) from None
        try:
            model = cls(
                config["backbone"],
                # Every architecture value is explicit below; the preset (absent before 0.x
                # directories had one, when "paper" was the only default) names the training.
                preset=config.get("preset", "paper"),
                backbone_kwargs=config["backbone_kwargs"],
                latent_dim=config["latent_dim"],
                gae_hidden=config["gae_hidden"],
                n_neighbors=config["n_neighbors"],
                graph_normalization=config["graph_normalization"],
                inr_loss=config["inr_loss"],
                dice_weight=config["dice_weight"],
                decoder_activation=config.get("decoder_activation", "relu"),
                blend=config.get("blend", "none"),
                accelerator=accelerator,
                bf16=config.get("bf16", False),
                seed=config["seed"],
            )
            model.gene_names = list(config["gene_names"])
            model.coord_dim = int(config["coord_dim"])
            model.coord_center = arrays["coord_center"]
            model.coord_scale = float(arrays["coord_scale"][0])
            model.coord_min = arrays["coord_min"]
            model.coord_max = arrays["coord_max"]
            model.fit_params = dict(config.get("fit_params", {}))
            model.history = {k: list(v) for k, v in config.get("history", {}).items()}
            model.timings_ = dict(config.get("timings_s", {}))
            model.val_indices_ = arrays.get("val_indices")
            if config.get("blend_params"):
                model.blend_ = InterpolationBlend.from_arrays(arrays, config["blend_params"])
            gae = GAE(
                len(model.gene_names),
                model.gae_hidden,
                model.latent_dim,
                model.decoder_activation,
            )
            backbone = make_backbone(
                model.backbone_name, model.coord_dim, model.latent_dim, **model.backbone_kwargs
            )
            gae.load_state_dict(_strip(state, "gae."), strict=True)
            backbone.load_state_dict(_strip(state, "backbone."), strict=True)
        except (KeyError, RuntimeError, TypeError) as exc:
            raise input_error(
                f"the saved SUICA model is incomplete or inconsistent ({exc})",
                str(path),
                "re-save the model with this version of stfield",
            ) from None
        model.gae = gae.to(model.device).eval()
        model.backbone = backbone.to(model.device).eval()
        return model

    def __repr__(self) -> str:
        state = (
            f"fitted on {self.coord_dim}-D coords, {self.n_genes} genes"
            if self.is_fitted
            else "not fitted"
        )
        return f"SUICA(backbone={self.backbone_name!r}, latent_dim={self.latent_dim}, {state})"


def _widest_layer(*modules: nn.Module) -> int:
    """The largest input or output width of the linear layers in ``modules`` (0 if none)."""
    widths = [
        max(m.in_features, m.out_features)
        for module in modules
        for m in module.modules()
        if isinstance(m, nn.Linear)
    ]
    return max(widths, default=0)


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


__all__ = ["MODEL_KIND", "PRESETS", "SUICA", "ModelDirNotFoundError", "resolve_batch_size"]
