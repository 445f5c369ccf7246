"""SUICA stage by stage: scores after each stage and loss curves, on the harness's spatial splits.

    python benchmarks/suica_stages.py --model default --seeds 0,1,2
    python benchmarks/suica_stages.py --model paper-cpu --seeds 0,1,2
    python benchmarks/suica_stages.py --model default --model-options '{"dice_weight": 0}' \
        --no-stages --name dice0

For each seed (80/20 split of ``stfield.bench.spatial_split``) it fits the model on the training
spots and scores, with the four headline measures:

* ``gae_pretrained`` / ``gae_finetuned`` — the training spots reconstructed from their GAE
  embeddings by the decoder as pre-trained (a second fit with ``epochs_decoder=0``, identical up
  to that stage) and after fine-tuning;
* ``inr_pretrained`` — the held-out spots through the INR and the pre-trained decoder;
* ``field`` / ``blend`` — the final model at the held-out spots, without and with its blend.

Loss curves are summarised at the first epoch, 10%, 50% and the last. Results go to
``benchmarks/results/<name>/stages.json`` and ``stages.md``. ``--no-stages`` skips the second fit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

import stfield
from stfield.bench import evaluate, spatial_split

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "data"
MEASURES = ("cosine", "mse", "pearson", "pearson_gene")
#: The published architecture at the harness's CPU sizes (``run_harness.py --config cpu``).
MODELS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "paper-cpu": (
        {"preset": "paper", "gae_hidden": (512, 128, 64), "backbone_kwargs": {"width": 256}},
        {"preset": "fast"},
    ),
}
STAGE_ROWS = ("gae_pretrained", "gae_finetuned", "inr_pretrained", "field", "blend")


def _scores(truth: sp.spmatrix, pred: np.ndarray) -> list[float]:
    s = evaluate(truth, pred)
    return [float(s[k]) for k in MEASURES]


def _reconstruct(model: Any, X: sp.csr_matrix, coords: np.ndarray) -> np.ndarray:
    import torch

    z = torch.from_numpy(model.encode(X, coords)).to(model.device)
    with torch.no_grad():
        return model.gae.decoder(z).float().cpu().numpy()


def _curve(values: list[float]) -> list[float]:
    n = len(values)
    return [round(values[i], 4) for i in (0, n // 10, n // 2, n - 1)] if n else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("xenium", "merfish"), default="xenium")
    parser.add_argument("--bin-size", type=float, default=10.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--model-options", default="{}", help="JSON: extra SUICA(...) options")
    parser.add_argument("--fit-options", default="{}", help="JSON: extra SUICA.fit options")
    parser.add_argument("--no-stages", action="store_true", help="skip the pre-trained decoder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.dataset == "xenium":
        adata = stfield.datasets.xenium_breast_binned(args.bin_size)
    else:
        adata = stfield.io.read(SHARED / "merfish_u2os" / "batch1.h5ad")
    stfield.pp.normalize_suica(adata)
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    coords = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    base_model, base_fit = MODELS[args.model]
    model_options = {**base_model, **json.loads(args.model_options)}
    fit_options = {**base_fit, **json.loads(args.fit_options)}

    rows: dict[str, list[list[float]]] = {k: [] for k in STAGE_ROWS}
    runs = []
    t0 = time.perf_counter()
    for seed in (int(s) for s in args.seeds.split(",")):
        split = spatial_split(adata.n_obs, 0.2, seed=seed)
        Xt, Ct, truth = X[split.train], coords[split.train], X[split.test]
        model = stfield.models.SUICA(seed=seed, **model_options)
        model.fit(Xt, Ct, progress=False, **fit_options)
        rows["field"].append(_scores(truth, model.predict(coords[split.test], interpolate=False)))
        if model.blend_ is not None:
            rows["blend"].append(_scores(truth, model.predict(coords[split.test])))
        rows["gae_finetuned"].append(_scores(Xt, _reconstruct(model, Xt, Ct)))
        if not args.no_stages:
            before = stfield.models.SUICA(seed=seed, **model_options)
            before.fit(Xt, Ct, progress=False, **{**fit_options, "epochs_decoder": 0})
            rows["gae_pretrained"].append(_scores(Xt, _reconstruct(before, Xt, Ct)))
            pred = before.predict(coords[split.test], interpolate=False)
            rows["inr_pretrained"].append(_scores(truth, pred))
        runs.append(
            {
                "seed": seed,
                "blend": model.fit_params.get("blend"),
                "loss_first_10pct_50pct_last": {k: _curve(v) for k, v in model.history.items()},
                "epochs_run": {k: len(v) for k, v in model.history.items()},
            }
        )
        print(seed, json.dumps(runs[-1]), flush=True)

    means = {k: np.mean(v, axis=0).round(4).tolist() for k, v in rows.items() if v}
    name = args.name or f"stages_{args.dataset}_{args.model}_{args.bin_size:g}"
    out = HERE / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "command": "python benchmarks/suica_stages.py "
        + " ".join(f"{k}={v}" for k, v in vars(args).items()),
        "seconds": round(time.perf_counter() - t0),
        "measures": MEASURES,
        "mean": means,
        "per_seed": rows,
        "runs": runs,
    }
    (out / "stages.json").write_text(json.dumps(report, indent=2))
    lines = ["| stage | " + " | ".join(MEASURES) + " |", "|---" * (len(MEASURES) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(f"{v:.4g}" for v in means[k]) + " |" for k in means]
    (out / "stages.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
