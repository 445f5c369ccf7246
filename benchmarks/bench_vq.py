"""Benchmark: VQ-VAE inference (tokenisation) throughput and peak memory.

Default setting is the paper's: tiles of I = 256 px, T = 313 genes (the bundled Xenium crop's
panel), K = 8192 codes of D = 64 per branch, branches M = 0, 1, 3. The slide is the bundled crop
tiled ``--repeat`` x ``--repeat`` times side by side, so density and cell sizes are real. The
network is randomly initialised (throughput does not depend on the weights). Measures:

* end to end ``stfield.tl.vq_encode`` (rasterise + encode + per-cell code lookup + cell x gene
  counts): tiles/s and cells/s;
* rasterisation alone, and the network's ``encode`` alone (tiles/s);
* peak memory: process peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

Writes JSON + markdown to ``benchmarks/results/``. Run:

    python benchmarks/bench_vq.py --device cpu --pixel-size 1.0 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _slide(repeat: int) -> pd.DataFrame:
    from stfield.datasets import xenium_breast

    crop = xenium_breast()
    w = float(crop["x"].max() - crop["x"].min()) + 1.0
    h = float(crop["y"].max() - crop["y"].min()) + 1.0
    parts = []
    for i in range(repeat):
        for j in range(repeat):
            part = crop.copy()
            part["x"] = part["x"] + i * w
            part["y"] = part["y"] + j * h
            part["cell_id"] = (part["cell_id"] + f"_{i}_{j}").astype("string")
            parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    df["gene"] = pd.Categorical(df["gene"].astype(str), categories=crop["gene"].cat.categories)
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pixel-size", type=float, default=1.0)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--codebook-size", type=int, default=8192)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="crop copies per side")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--name", default=None, help="result file stem")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import torch

    from stfield._utils import atomic_path, resolve_device
    from stfield.data.raster import RasterConfig, TileDataset, TileIndex
    from stfield.models.hvqvae import HVQVAE, HVQVAEConfig, VQModel
    from stfield.tl.vq import vq_encode

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    df = _slide(args.repeat)
    raster = RasterConfig(pixel_size=args.pixel_size, tile=args.tile)
    genes = list(df["gene"].cat.categories)
    net = HVQVAE(
        HVQVAEConfig(
            in_channels=raster.n_channels(len(genes)),
            out_channels=len(genes) + 1,
            codebook_size=args.codebook_size,
            dim=args.dim,
            hidden=args.hidden,
        )
    )
    for q in net.quantizers:  # random codebook, marked initialised: no k-means at inference
        q.vq._codebook.embed.normal_()
        q.vq._codebook.initted.fill_(True)
    net.eval().to(device)
    model = VQModel(net, raster, genes)

    index = TileIndex(df, raster, genes=genes)
    tiles = np.arange(len(index))
    ds = TileDataset(index, tiles)
    # warm-up (allocator, kernels)
    with torch.no_grad():
        net.encode(ds[0][None].to(device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss0 = _rss_mb()

    t0 = time.perf_counter()
    xs = [ds[j] for j in range(len(ds))]
    raster_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(xs), args.batch_size):
            net.encode(torch.stack(xs[s : s + args.batch_size]).to(device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    encode_s = time.perf_counter() - t0
    del xs

    t0 = time.perf_counter()
    adata = vq_encode(model, df, batch_size=args.batch_size, accelerator=device)
    e2e_s = time.perf_counter() - t0
    uns = adata.uns["stfield"]["vq"]
    n_tiles = int(uns["n_tiles"])
    n_cells = int((adata.obs["vq_tile"] >= 0).sum())

    result = {
        "benchmark": "vq_encode",
        "device": device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "tile_px": args.tile,
        "pixel_size_um": args.pixel_size,
        "genes_T": len(genes),
        "channels": raster.n_channels(len(genes)),
        "codebook_K": args.codebook_size,
        "dim_D": args.dim,
        "hidden": args.hidden,
        "branches": list(net.branches),
        "batch_size": args.batch_size,
        "tiles": n_tiles,
        "cells": n_cells,
        "cells_per_tile": n_cells / max(n_tiles, 1),
        "molecules": len(df),
        "max_distance_block_elements": net.config.max_elements,
        "rasterise_tiles_per_s": len(tiles) / raster_s,
        "encode_tiles_per_s": len(tiles) / encode_s,
        "end_to_end_s": e2e_s,
        "end_to_end_tiles_per_s": n_tiles / e2e_s,
        "end_to_end_cells_per_s": n_cells / e2e_s,
        "peak_rss_mb": _rss_mb(),
        "rss_before_timing_mb": rss0,
        "peak_gpu_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        ),
        "paper_anchor": "444,106 cells in 124.2 s on one A100 (3,576 cells/s)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name or f"bench_vq_{'gpu' if device.startswith('cuda') else 'cpu'}"
    with atomic_path(args.out / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    lines = [
        f"# VQ-VAE inference ({device})",
        "",
        "| quantity | value |",
        "|---|---|",
        *(
            f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in result.items()
        ),
        "",
    ]
    with atomic_path(args.out / f"{stem}.md") as tmp:
        tmp.write_text("\n".join(lines))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
