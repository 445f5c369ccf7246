"""Benchmark: out-of-core tile shards from a generated partitioned parquet table (default 50M).

Generates a Xenium-layout molecule table part by part under --data (so generation never holds
more than one part), then, each in a fresh child process so peak RSS is its own:

1. ``write_tile_shards`` over the folder of parts: wall time, molecules/s, peak RSS;
2. opening the store and reading / rasterising ``--tiles`` random tiles.

Writes JSON + markdown to benchmarks/results/ and deletes the generated data unless
``--keep-data``. Run (at low priority on a shared machine):

    nice -n 10 python benchmarks/bench_shards.py --molecules 50000000
    nice -n 10 python benchmarks/bench_shards.py --molecules 1000000 --name small
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _peak_rss_mb() -> float:
    """This process's peak RSS in MiB.

    Linux's ``VmHWM`` restarts at ``exec``, so a spawned child reports its own peak; the
    ``getrusage`` fallback would also count the parent's RSS at ``fork`` time.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------ generation
def _gene_names(n_genes: int) -> list[str]:
    # a few control probes too, so the Xenium filters do real work
    return [f"G{i:04d}" for i in range(n_genes)] + ["BLANK_0001", "NegControlProbe_00001"]


def _part(
    k: int, n: int, n_genes: int, extent: tuple[float, float], per_cell: int, seed: int
) -> pa.Table:
    """One part: cells with a type-dependent gene mix, molecules ~N(centre, 3 µm), background.

    Cells of every part are spread over the whole slide, the worst case for the tile shuffle
    (every tile has molecules in every part).
    """
    rng = np.random.default_rng([seed, k])
    n_cells = max(n // per_cell, 1)
    centres = rng.uniform((0.0, 0.0), extent, size=(n_cells, 2))
    kind = rng.integers(0, 8, n_cells)
    cell = rng.integers(0, n_cells, n)
    background = rng.random(n) < 0.1
    xy = centres[cell] + rng.normal(0.0, 3.0, size=(n, 2))
    xy[background] = rng.uniform((0.0, 0.0), extent, size=(int(background.sum()), 2))
    # Zipf-like abundances shifted by cell type; 2% control probes
    zipf = np.minimum(rng.zipf(1.3, n) - 1, n_genes - 1)
    gene = (zipf + 37 * kind[cell]) % n_genes
    gene = np.where(rng.random(n) < 0.02, n_genes + rng.integers(0, 2, n), gene)
    names = pa.array(_gene_names(n_genes))
    ids = pc.binary_join_element_wise(
        f"p{k:02d}-", pa.array(cell.astype(np.int64)).cast(pa.string()), ""
    )
    ids = pc.if_else(pa.array(background), pa.scalar("UNASSIGNED"), ids)
    dist = np.hypot(*(xy - centres[cell]).T)
    return pa.table(
        {
            "transcript_id": pa.array(np.arange(n, dtype=np.int64) + k * n),
            "cell_id": ids,
            "overlaps_nucleus": pa.array(((dist < 2.5) & ~background).astype(np.uint8)),
            "feature_name": pa.DictionaryArray.from_arrays(pa.array(gene.astype(np.int16)), names),
            "x_location": pa.array(xy[:, 0].astype(np.float32)),
            "y_location": pa.array(xy[:, 1].astype(np.float32)),
            "z_location": pa.array(rng.uniform(0, 20, n).astype(np.float32)),
            "qv": pa.array(rng.uniform(15, 40, n).astype(np.float32)),
        }
    )


def generate(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    sizes = np.full(args.parts, args.molecules // args.parts)
    sizes[: args.molecules % args.parts] += 1
    for k, n in enumerate(sizes):
        table = _part(k, int(n), args.genes, (args.extent_um, args.extent_um * 0.75), 100, 0)
        pq.write_table(table, folder / f"part-{k:03d}.parquet", row_group_size=1 << 20)
        del table
    size = sum(p.stat().st_size for p in folder.iterdir())
    return {"generate_s": round(time.perf_counter() - t0, 1), "input_mb": round(size / 2**20, 1)}


# ------------------------------------------------------------------------- child processes
def _write_child(args: dict[str, Any], queue: Any) -> None:
    from stfield.data.raster import RasterConfig
    from stfield.data.shards import write_tile_shards

    rss0 = _peak_rss_mb()
    t0 = time.perf_counter()
    store = write_tile_shards(
        args["data"],
        args["store"],
        config=RasterConfig(pixel_size=args["pixel_size"], tile=args["tile"]),
        workers=args["workers"],
    )
    seconds = time.perf_counter() - t0
    m = store.manifest
    queue.put(
        {
            "write_s": round(seconds, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "rss_after_imports_mb": round(rss0, 1),
            "molecules_kept": m["n_molecules"],
            "tiles": m["n_tiles"],
            "cells": m["n_cells"],
            "shard_files": len(m["shards"]),
            "store_mb": round(_folder_mb(Path(args["store"])), 1),
            **{f"{k}_s": v for k, v in m["timings"].items()},
        }
    )


def _read_child(args: dict[str, Any], queue: Any) -> None:
    from stfield.data.shards import ShardStore

    t0 = time.perf_counter()
    store = ShardStore(args["store"])
    index = store.tile_index()
    open_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    tiles = rng.choice(len(index), size=min(args["tiles"], len(index)), replace=False)
    t0 = time.perf_counter()
    n_read = sum(len(index.molecules(int(i))[0]) for i in tiles)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in tiles:
        index.rasterise(int(i))
    raster_s = time.perf_counter() - t0
    queue.put(
        {
            "open_store_s": round(open_s, 2),
            "tiles_sampled": len(tiles),
            "molecules_per_tile": round(n_read / len(tiles)),
            "tile_read_ms": round(1e3 * read_s / len(tiles), 2),
            "tile_rasterise_ms": round(1e3 * raster_s / len(tiles), 2),
            "raster_shape": list(index.rasterise(int(tiles[0])).shape),
            "read_peak_rss_mb": round(_peak_rss_mb(), 1),
        }
    )


def _in_child(target: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``target`` in a fresh interpreter (spawn: no pages inherited from this process)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(args, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}")
    return queue.get()


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


# ------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=50_000_000)
    parser.add_argument("--genes", type=int, default=300)
    parser.add_argument("--parts", type=int, default=20)
    parser.add_argument("--extent-um", type=float, default=8000.0, help="slide width (4:3)")
    parser.add_argument("--pixel-size", type=float, default=2.0)
    parser.add_argument("--tile", type=int, default=128, help="tile side in pixels")
    # One partition in memory at a time (dask's synchronous scheduler) is what bounds peak RSS;
    # on a shared 2-core machine a second worker mostly adds memory, not speed.
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tiles", type=int, default=100, help="random tiles to read")
    parser.add_argument("--data", type=Path, default=Path("/tmp/stfield_bench_shards"))
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--name", default=None, help="result file suffix")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    if args.data.exists():
        shutil.rmtree(args.data)
    parts, store = args.data / "parts", args.data / "store"
    try:
        gen = generate(args, parts)
        job = {
            "data": str(parts),
            "store": str(store),
            "pixel_size": args.pixel_size,
            "tile": args.tile,
            "workers": args.workers,
            "tiles": args.tiles,
        }
        write = _in_child(_write_child, job)
        read = _in_child(_read_child, job)
    finally:
        if not args.keep_data:
            shutil.rmtree(args.data, ignore_errors=True)
    result = {
        "benchmark": "write_tile_shards",
        "molecules": args.molecules,
        "genes": args.genes,
        "parts": args.parts,
        "tile_um": args.pixel_size * args.tile,
        "workers": args.workers,
        **gen,
        **write,
        "molecules_per_s": round(args.molecules / write["write_s"]),
        **read,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
    }
    name = args.name or f"{args.molecules // 1_000_000}M"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench_shards_{name}.json").write_text(json.dumps(result, indent=2))
    md = "| " + " | ".join(result) + " |\n|" + "---|" * len(result) + "\n| "
    md += " | ".join(str(v) for v in result.values()) + " |\n"
    (args.out / f"bench_shards_{name}.md").write_text(md)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
