"""VQ benchmark harness: hierarchical VQ-VAE vs a plain VAE vs a single-branch VQ-VAE.

All models see the same tiles, the same seeded train / held-out split and the same optimiser
settings. Reported per model on the held-out tiles: MSE and SSIM of the reconstruction (genes +
centroid mask), codebook perplexity and usage (VQ models), parameters, training time, and
inference throughput (tiles/s and cells/s, rasterisation included). A small K × D ablation of the
hierarchical model mirrors the paper's Table 3 (validation loss, perplexity).

:func:`run_vq_benchmark` writes ``results.csv``, ``results.md``, ``metrics.png``,
``ablation.png`` and ``reconstruction.png`` (each atomically) and returns the results table.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._errors import input_error
from .._utils import atomic_path, resolve_device, seed_everything
from .._validate import check_transcripts
from ..data.raster import RasterConfig, TileDataset, TileIndex
from ..models.hvqvae import HVQVAE, HVQVAEConfig, single_branch_config
from ..models.vae import ConvVAE, ConvVAEConfig
from ..train.vq import VQTrainConfig, evaluate, split_tiles, train_model

logger = logging.getLogger(__name__)

#: Models compared by the harness, in report order.
MODELS = ("hvqvae", "vqvae_single", "vae")


def _build(
    name: str, index: TileIndex, codebook_size: int, dim: int, hidden: int, seed: int
) -> torch.nn.Module:
    seed_everything(seed)
    base = HVQVAEConfig(
        in_channels=index.n_channels,
        out_channels=index.n_genes + 1,
        codebook_size=codebook_size,
        dim=dim,
        hidden=hidden,
    )
    tile = index.config.tile
    if name == "hvqvae":
        return HVQVAE(base)
    if name == "vqvae_single":
        return HVQVAE(single_branch_config(base, depth=min(2, int(math.log2(tile)) - 1)))
    if name == "vae":
        blocks = max(1, min(3, int(math.log2(tile)) - 2))
        return ConvVAE(
            ConvVAEConfig(index.n_channels, index.n_genes + 1, hidden=hidden, n_blocks=blocks)
        )
    raise input_error(f"unknown model {name!r}", "models", f"use some of {MODELS}")


@torch.no_grad()
def inference_throughput(
    model: torch.nn.Module, dataset: TileDataset, batch_size: int = 8, device: str = "cpu"
) -> dict[str, float]:
    """Tiles/s and cells/s of rasterise + encode over ``dataset`` (codes, or VAE latents)."""
    model.eval().to(device)
    index = dataset.index
    n_cells = int(sum(index.cells(int(i))[0].size for i in dataset.tiles))
    t0 = time.perf_counter()
    for batch in dataset.batches(batch_size):
        x = batch.to(device)
        if hasattr(model, "encode"):
            model.encode(x)
        else:
            model.to_stats(model.encoder(x))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = max(time.perf_counter() - t0, 1e-9)
    return {
        "tiles_per_s": len(dataset) / dt,
        "cells_per_s": n_cells / dt,
        "inference_s": dt,
        "n_cells": n_cells,
    }


def _markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float | np.floating):
                cells.append("" if not np.isfinite(v) else format(float(v), floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _save_fig(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")


def run_vq_benchmark(
    transcripts: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    pixel_size: float = 2.0,
    tile: int = 32,
    codebook_size: int = 64,
    dim: int = 16,
    hidden: int = 32,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 2e-3,
    val_fraction: float = 0.2,
    seed: int = 0,
    models: Sequence[str] = MODELS,
    ablation_sizes: Sequence[int] = (16, 64),
    ablation_dims: Sequence[int] = (8, 32),
    ablation_epochs: int | None = None,
    accelerator: str = "auto",
    progress: bool = False,
) -> pd.DataFrame:
    """Run the VQ benchmark and write its report to ``out_dir``.

    Returns
    -------
    The results table (one row per model, then one per ablation setting).
    """
    from matplotlib.figure import Figure

    check_transcripts(transcripts)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise input_error(f"unknown model(s) {unknown}", "models", f"use some of {MODELS}")
    device = resolve_device(accelerator)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = TileIndex(transcripts, RasterConfig(pixel_size=pixel_size, tile=tile))
    if len(index) < 2:
        raise input_error(
            f"only {len(index)} tile(s): nothing to hold out",
            "benchmark",
            "use a smaller --tile or --pixel-size",
        )
    train_tiles, val_tiles = split_tiles(len(index), val_fraction, seed)
    val_ds = TileDataset(index, val_tiles)
    tcfg = VQTrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
        accelerator=accelerator,
    )
    rows: list[dict[str, Any]] = []
    recon: dict[str, np.ndarray] = {}
    probe = torch.from_numpy(index.rasterise(int(val_tiles[0])))[None]
    for name in models:
        net = _build(name, index, codebook_size, dim, hidden, seed)
        t0 = time.perf_counter()
        train_model(net, index, tcfg, train_tiles=train_tiles, val_tiles=val_tiles)
        fit_s = time.perf_counter() - t0
        ev = evaluate(net, val_ds, batch_size, device)
        thr = inference_throughput(net, val_ds, batch_size, device)
        perp = ev["perplexity"]
        rows.append(
            {
                "experiment": "models",
                "model": name,
                "K": codebook_size if name != "vae" else np.nan,
                "D": dim if name != "vae" else np.nan,
                "params": int(sum(p.numel() for p in net.parameters())),
                "val_loss": ev["loss"],
                "mse": ev["mse"],
                "ssim": ev["ssim"],
                "perplexity": float(np.mean(list(perp.values()))) if perp else np.nan,
                "perplexity_by_branch": ";".join(f"{k}={v:.2f}" for k, v in perp.items()),
                "codes_used": ";".join(f"{k}={v}" for k, v in ev["usage"].items()),
                "fit_s": fit_s,
                "tiles_per_s": thr["tiles_per_s"],
                "cells_per_s": thr["cells_per_s"],
            }
        )
        with torch.no_grad():
            recon[name] = net.eval()(probe.to(device)).recon[0].cpu().numpy()
    # K x D ablation of the hierarchical model
    abl_cfg = replace(tcfg, epochs=ablation_epochs or epochs)
    for k in ablation_sizes:
        for d in ablation_dims:
            net = _build("hvqvae", index, int(k), int(d), hidden, seed)
            train_model(net, index, abl_cfg, train_tiles=train_tiles, val_tiles=val_tiles)
            ev = evaluate(net, val_ds, batch_size, device)
            perp = ev["perplexity"]
            rows.append(
                {
                    "experiment": "ablation",
                    "model": "hvqvae",
                    "K": int(k),
                    "D": int(d),
                    "params": int(sum(p.numel() for p in net.parameters())),
                    "val_loss": ev["loss"],
                    "mse": ev["mse"],
                    "ssim": ev["ssim"],
                    "perplexity": float(np.mean(list(perp.values()))),
                    "perplexity_by_branch": ";".join(f"{a}={b:.2f}" for a, b in perp.items()),
                    "codes_used": ";".join(f"{a}={b}" for a, b in ev["usage"].items()),
                }
            )
    df = pd.DataFrame(rows)
    meta = {
        "n_tiles": len(index),
        "n_train_tiles": len(train_tiles),
        "n_val_tiles": len(val_tiles),
        "n_genes": index.n_genes,
        "pixel_size": pixel_size,
        "tile": tile,
        "epochs": epochs,
        "seed": seed,
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    with atomic_path(out / "results.csv") as tmp:
        df.to_csv(tmp, index=False)
    main = df[df.experiment == "models"].drop(columns=["experiment"])
    abl = df[df.experiment == "ablation"][["K", "D", "val_loss", "mse", "ssim", "perplexity"]]
    md = [
        "# VQ benchmark",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in meta.items()),
        "",
        "Held-out tiles; SSIM is single-scale (window 11 or the tile side); perplexity is the mean "
        "over branches; tiles/s and cells/s include rasterisation. val_loss is each model's own "
        "objective ((1 - MS-SSIM) + MSE + commitment for VQ models, MSE + KL for the VAE), so "
        "compare models on MSE and SSIM.",
        "",
        _markdown(main),
        "",
        "## K × D ablation (hierarchical VQ-VAE)",
        "",
        _markdown(abl) if len(abl) else "(none)",
        "",
    ]
    _write_text(out / "results.md", "\n".join(md))

    # figures
    fig = Figure(figsize=(10, 3))
    for i, col in enumerate(("mse", "ssim", "tiles_per_s")):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.bar(main["model"], main[col], color=["tab:blue", "tab:orange", "tab:green"][: len(main)])
        ax.set_title(col)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    _save_fig(fig, out / "metrics.png")
    if len(abl):
        fig = Figure(figsize=(8, 3.2))
        for i, col in enumerate(("val_loss", "perplexity")):
            ax = fig.add_subplot(1, 2, i + 1)
            piv = abl.pivot_table(index="K", columns="D", values=col)
            im = ax.imshow(piv.to_numpy(), cmap="viridis")
            ax.set_xticks(range(piv.shape[1]), [str(c) for c in piv.columns])
            ax.set_yticks(range(piv.shape[0]), [str(r) for r in piv.index])
            ax.set_xlabel("D")
            ax.set_ylabel("K")
            ax.set_title(col)
            for (r, c), v in np.ndenumerate(piv.to_numpy()):
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", color="w", fontsize=8)
            fig.colorbar(im, ax=ax)
        fig.tight_layout()
        _save_fig(fig, out / "ablation.png")
    t = index.n_genes
    panels = {"held-out tile": probe[0].numpy()[: t + 1], **recon}
    fig = Figure(figsize=(3 * len(panels), 3))
    for i, (name, img) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(img[:t].sum(0), cmap="magma")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    _save_fig(fig, out / "reconstruction.png")
    logger.info("VQ benchmark written to %s", out)
    return df
