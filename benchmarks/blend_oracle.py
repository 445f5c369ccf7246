"""Oracle scan of the default's two parts on one task: what any blend of them could score.

    python benchmarks/blend_oracle.py merfish --task genes --seed 0

Fits the default SUICA, blend included, on the task's input (the harness fits denoising without
the blend; here both tasks get it), then scores on the task's
truth: the field alone, the default, kNN, the Gaussian kernel at fixed bandwidths (multiples of
the spot spacing, ``inf`` = the per-gene mean) and mixes of the field with three of them, plain
and rescaled to the field's totals. The mixes are chosen on the *test* truth here, so they bound
what a weight chosen on held-out training spots can reach. Writes
``benchmarks/results/<name>/oracle_seed<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import scipy.sparse as sp
import torch
from run_harness import HERE, load

from stfield.bench.baselines.gaussian import GaussianSmoother
from stfield.bench.baselines.knn import KNNInterpolator
from stfield.bench.metrics import evaluate
from stfield.bench.protocols import make_protocols
from stfield.models.suica import SUICA

BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, math.inf)
MIXED_WITH = (4.0, 16.0, math.inf)
WEIGHTS = (0.5, 0.7, 0.8, 0.9, 0.95)
MEASURES = ("cosine", "mse", "pearson", "pearson_gene")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("xenium", "merfish"))
    parser.add_argument("--task", choices=("genes", "denoise"), default="genes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bin-size", type=float, default=10.0)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    adata = load(args.dataset, args.bin_size)
    X = sp.csr_matrix(adata.X)
    coords = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    protocols = make_protocols(X, args.seed)
    if args.task == "genes":
        fitted, mask = protocols.mask.X_input, protocols.mask.muted_mask()
        truth = X.multiply(mask).tocsr()
    else:
        fitted, mask, truth = protocols.noisy, None, X

    def score(pred: np.ndarray) -> dict[str, float]:
        pred = np.asarray(pred, dtype=np.float32)
        scored = sp.csr_matrix(pred).multiply(mask).tocsr() if mask is not None else pred
        e = evaluate(truth, scored)
        return {k: round(float(e[k]), 5) for k in MEASURES}

    t0 = time.perf_counter()
    model = SUICA(seed=args.seed).fit(fitted, coords, progress=False)
    result: dict[str, object] = {"fit_seconds": round(time.perf_counter() - t0, 1)}
    result["blend"] = model.fit_params.get("blend")
    field = model.predict(coords, interpolate=False)
    result["field"] = score(field)
    result["default"] = score(model.predict(coords, exclude_self=True))
    knn = KNNInterpolator().fit(fitted, coords)
    result["knn"] = score(knn.predict(coords, exclude_self=True))
    spacing = GaussianSmoother(bandwidth=1.0).fit(fitted, coords).spacing_
    kernels = {}
    for b in BANDWIDTHS:
        smoother = GaussianSmoother(bandwidth=spacing * b).fit(fitted, coords)
        kernels[b] = smoother.predict(coords, exclude_self=True)
        result[f"gaussian {b} spacings"] = score(kernels[b])
    field_total = field.sum(axis=1)
    for b in MIXED_WITH:
        for w in WEIGHTS:
            mix = (1 - w) * field + w * kernels[b]
            result[f"mix w={w} with gaussian {b}"] = score(mix)
            factor = field_total / np.maximum(mix.sum(axis=1), 1e-12)
            result[f"mix w={w} with gaussian {b}, rescaled"] = score(mix * factor[:, None])
    name = args.name or f"oracle_{args.dataset}_{args.task}"
    out = HERE / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"oracle_seed{args.seed}.json"
    path.write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        print(key, value)


if __name__ == "__main__":
    main()
