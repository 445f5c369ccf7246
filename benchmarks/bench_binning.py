"""Benchmark: binning a generated transcripts table (default 10M molecules).

Writes JSON + markdown to benchmarks/results/. Run:

    python benchmarks/bench_binning.py --molecules 10000000 --bin-size 10

Peak RSS is the process maximum (``resource.getrusage``), including the generated table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=10_000_000)
    parser.add_argument("--genes", type=int, default=500)
    parser.add_argument("--bin-size", type=float, default=10.0)
    parser.add_argument("--extent-um", type=float, default=5000.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    from stfield.pp import bin_transcripts

    rng = np.random.default_rng(0)
    names = np.array([f"G{i:04d}" for i in range(args.genes)])
    # Zipf-like gene abundances, clustered positions: closer to real tissue than uniform.
    p = 1.0 / np.arange(1, args.genes + 1)
    codes = rng.choice(args.genes, size=args.molecules, p=p / p.sum()).astype(np.int16)
    centres = rng.uniform(0, args.extent_um, size=(2000, 2))
    which = rng.integers(0, len(centres), args.molecules)
    xy = centres[which] + rng.normal(0, 60, size=(args.molecules, 2))
    df = pd.DataFrame(
        {
            "gene": pd.Categorical.from_codes(codes, categories=names),
            "x": xy[:, 0].astype(np.float32),
            "y": xy[:, 1].astype(np.float32),
        }
    )
    del xy, which, codes
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    adata = bin_transcripts(df, args.bin_size)
    seconds = time.perf_counter() - t0
    result = {
        "benchmark": "bin_transcripts",
        "molecules": args.molecules,
        "genes": args.genes,
        "bin_size_um": args.bin_size,
        "spots": adata.n_obs,
        "nnz": int(adata.X.nnz),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(_rss_mb(), 1),
        "rss_before_binning_mb": round(rss_before, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": __import__("os").cpu_count(),
    }
    assert adata.X.sum() == args.molecules  # nothing lost
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_binning.json").write_text(json.dumps(result, indent=2))
    md = "| " + " | ".join(result) + " |\n|" + "---|" * len(result) + "\n| "
    md += " | ".join(str(v) for v in result.values()) + " |\n"
    (args.out / "bench_binning.md").write_text(md)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
