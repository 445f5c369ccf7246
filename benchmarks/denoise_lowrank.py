"""A non-spatial reference for denoising: truncated SVD at the Gavish-Donoho threshold.

    python benchmarks/denoise_lowrank.py merfish --seeds 0,1,2
    python benchmarks/denoise_lowrank.py xenium --bin-size 20 --seeds 0,1,2

On the harness's noisy matrix (``make_protocols``, N(0, 1) noise clipped at 0) it keeps the
singular values above Gavish & Donoho's (2014) optimal hard threshold for an unknown noise
level, ``ω(β) · median singular value``, around the per-gene mean, and scores the result
against the clean matrix with the harness's metrics. The noise level is never given: the
threshold comes from the spectrum. Also prints the noisy input's and the per-gene mean's
scores, the top singular value and the Marchenko-Pastur edge of pure noise of the same size
and entry variance, ``sd · (√n + √g)``. Dense SVD of the whole slice: a benchmark of
slices up to ~10k × 10k, not a library function. Writes
``benchmarks/results/<name>/lowrank.json``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import scipy.sparse as sp
from run_harness import HERE, load

from stfield.bench.metrics import evaluate
from stfield.bench.protocols import make_protocols

MEASURES = ("cosine", "mse", "pearson", "pearson_gene")


def omega(beta: float) -> float:
    """Gavish-Donoho's approximation of the threshold factor for aspect ratio ``beta``."""
    return 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("xenium", "merfish"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--bin-size", type=float, default=10.0)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()

    adata = load(args.dataset, args.bin_size)
    X = sp.csr_matrix(adata.X)
    n, g = X.shape

    def score(pred: np.ndarray) -> dict[str, float]:
        e = evaluate(X, np.asarray(pred, dtype=np.float32))
        return {k: round(float(e[k]), 5) for k in MEASURES}

    result: dict[int, dict[str, object]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        noisy = make_protocols(X, seed).noisy.toarray().astype(np.float64)
        mean = noisy.mean(axis=0)
        U, S, Vt = np.linalg.svd(noisy - mean, full_matrices=False)
        tau = omega(min(n, g) / max(n, g)) * float(np.median(S))
        rank = int((S > tau).sum())
        denoised = np.maximum(mean + (U[:, :rank] * S[:rank]) @ Vt[:rank], 0.0)
        result[seed] = {
            "rank": rank,
            "threshold": round(tau, 3),
            "top_singular_value": round(float(S[0]), 3),
            "pure_noise_edge": round(float((noisy - mean).std()) * (n**0.5 + g**0.5), 3),
            "lowrank": score(denoised),
            "noisy input": score(noisy),
            "per-gene mean": score(np.broadcast_to(mean, noisy.shape)),
        }
        print(seed, result[seed], flush=True)
    out = HERE / "results" / (args.name or f"lowrank_{args.dataset}_{args.bin_size:g}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "lowrank.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
