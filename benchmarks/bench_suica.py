"""SUICA speed / memory / quality benchmark on the bundled Xenium crop.

For each bin size, in a fresh process (so peak RSS is per configuration): bin the crop, apply the
appendix-G normalisation (``stfield.pp.normalize_suica``), draw the seeded 80/20 spatial split,
fit SUICA on the training spots, predict the held-out spots and score them beside kNN
interpolation and the per-gene mean. Records time per stage (and per epoch), peak RSS and the
headline metrics, and writes JSON + markdown to ``benchmarks/results/`` (git-ignored).

Examples::

    python benchmarks/bench_suica.py                                   # paper schedule, 10 & 5 µm
    python benchmarks/bench_suica.py --epochs-gae 50 --epochs-inr 200 --epochs-decoder 200
    python benchmarks/bench_suica.py --bin-sizes 10 --preset fast --accelerator cuda --bf16
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

HEADLINE = ("cosine", "mse", "pearson", "pearson_gene", "iou", "mse_all")


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _run_one(cfg: dict[str, Any], queue: mp.Queue) -> None:
    try:
        queue.put(_measure(cfg))
    except Exception as exc:  # report the failure to the parent instead of hanging
        queue.put({"error": f"{type(exc).__name__}: {exc}", "bin_size_um": cfg["bin_size_um"]})


def _in_child(ctx: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a fresh process; report its death instead of hanging."""
    import queue as queue_mod

    queue = ctx.Queue()
    proc = ctx.Process(target=_run_one, args=(cfg, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except queue_mod.Empty:
            if not proc.is_alive():
                result = {
                    "error": f"benchmark process died (exit code {proc.exitcode})",
                    "bin_size_um": cfg["bin_size_um"],
                }
                break
    proc.join()
    return result


def _measure(cfg: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    from stfield import datasets, pp
    from stfield.bench.baselines import BASELINES
    from stfield.bench.metrics import evaluate
    from stfield.bench.tasks import spatial_split
    from stfield.models.suica import SUICA

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    rss_start = _rss_mb()
    t0 = time.perf_counter()
    raw = datasets.xenium_breast_binned(cfg["bin_size_um"])
    adata = pp.normalize_suica(raw, copy=True)
    prep_s = time.perf_counter() - t0
    X = adata.X.tocsr()
    coords = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    split = spatial_split(adata.n_obs, 0.2, cfg["seed"])
    train, test = split.train, split.test
    truth = X[test]

    model = SUICA(
        cfg["backbone"],
        backbone_kwargs=cfg["backbone_kwargs"],
        accelerator=cfg["accelerator"],
        bf16=cfg["bf16"],
        seed=cfg["seed"],
    )
    if str(model.device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    fit_kw = {
        k: cfg[k] for k in ("epochs_gae", "epochs_inr", "epochs_decoder") if cfg[k] is not None
    }
    t0 = time.perf_counter()
    model.fit(X[train], coords[train], preset=cfg["preset"], progress=cfg["progress"], **fit_kw)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = model.predict(coords[test])
    predict_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    grid = model.render_grid(cfg["bin_size_um"] / 2.0)
    render_s = time.perf_counter() - t0
    gpu_peak = (
        torch.cuda.max_memory_allocated() / 2**20 if str(model.device).startswith("cuda") else None
    )

    scores = {"suica": evaluate(truth, pred)}
    for name in cfg["baselines"]:
        base = BASELINES[name]()
        base.fit(X[train], coords[train])
        scores[name] = evaluate(truth, base.predict(coords[test]))

    epochs = {stage: len(model.history.get(stage, [])) for stage in ("gae", "inr", "decoder")}
    return {
        "bin_size_um": cfg["bin_size_um"],
        "spots": int(adata.n_obs),
        "genes": int(adata.n_vars),
        "zeros_fraction": float(1 - X.nnz / (adata.n_obs * adata.n_vars)),
        "train_spots": int(train.size),
        "device": str(model.device),
        "threads": torch.get_num_threads(),
        "preset": cfg["preset"],
        "backbone": cfg["backbone"],
        "epochs": epochs,
        "fit_params": {
            k: v for k, v in model.fit_params.items() if k.startswith(("lr_", "batch_size_"))
        },
        "prep_s": prep_s,
        "stage_s": dict(model.timings_),
        "per_epoch_s": {
            s: (model.timings_[s] / epochs[s] if epochs[s] else None) for s in model.timings_
        },
        "fit_s": fit_s,
        "predict_test_s": predict_s,
        "render_grid_s": render_s,
        "render_grid_points": int(grid.n_obs),
        "final_loss": {k: float(v[-1]) for k, v in model.history.items() if v},
        "first_loss": {k: float(v[0]) for k, v in model.history.items() if v},
        "peak_rss_mb": _rss_mb(),
        "rss_after_imports_mb": rss_start,
        "gpu_peak_mb": gpu_peak,
        "scores": {m: {k: float(s[k]) for k in HEADLINE} for m, s in scores.items()},
    }


def _markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# SUICA benchmark (bundled Xenium breast crop)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}; {meta['date']}",
        "",
        "| bin µm | spots × genes | zeros | device | epochs gae/inr/dec | GAE s | INR s | "
        "decoder s | s/epoch gae/inr/dec | fit s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['bin_size_um']:g} | error: {r['error']} |")
            continue
        e, s, pe = r["epochs"], r["stage_s"], r["per_epoch_s"]
        lines.append(
            f"| {r['bin_size_um']:g} | {r['spots']:,} × {r['genes']} | {r['zeros_fraction']:.1%} | "
            f"{r['device']} ({r['threads']} thr) | {e['gae']}/{e['inr']}/{e['decoder']} | "
            f"{s['gae']:.1f} | {s['inr']:.1f} | {s['decoder']:.1f} | "
            f"{pe['gae'] or 0:.3f}/{pe['inr'] or 0:.3f}/{pe['decoder'] or 0:.3f} | "
            f"{r['fit_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "Held-out spots (80/20 split, seed 0); metrics over non-zero truth except mse_all/iou:",
        "",
    ]
    lines.append("| bin µm | method | " + " | ".join(HEADLINE) + " |")
    lines.append("|---|---|" + "---|" * len(HEADLINE))
    for r in results:
        for method, sc in r.get("scores", {}).items():
            lines.append(
                f"| {r['bin_size_um']:g} | {method} | "
                + " | ".join(f"{sc[k]:.3f}" for k in HEADLINE)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-sizes", type=float, nargs="+", default=[10.0, 5.0])
    parser.add_argument("--preset", default="paper", choices=["paper", "fast"])
    parser.add_argument("--backbone", default="ffn", choices=["ffn", "siren", "hashgrid"])
    parser.add_argument(
        "--ffn-scale",
        type=lambda v: v if v == "auto" else float(v),
        default=None,
        help="FFN Fourier scale: a number (paper: 10) or 'auto' (Nyquist/4)",
    )
    parser.add_argument("--epochs-gae", type=int, default=None)
    parser.add_argument("--epochs-inr", type=int, default=None)
    parser.add_argument("--epochs-decoder", type=int, default=None)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=["knn", "mean"],
        help="stfield.bench baselines scored on the same split (default: knn mean)",
    )
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--inline", action="store_true", help="run in this process (peak RSS is then cumulative)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="suica", help="file stem of the JSON/markdown outputs")
    args = parser.parse_args(argv)

    import torch

    backbone_kwargs = {}
    if args.ffn_scale is not None:
        backbone_kwargs["scale"] = args.ffn_scale
    ctx = mp.get_context("spawn")
    results = []
    for bin_size in args.bin_sizes:
        cfg = {
            "bin_size_um": bin_size,
            "preset": args.preset,
            "backbone": args.backbone,
            "backbone_kwargs": backbone_kwargs,
            "epochs_gae": args.epochs_gae,
            "epochs_inr": args.epochs_inr,
            "epochs_decoder": args.epochs_decoder,
            "accelerator": args.accelerator,
            "bf16": args.bf16,
            "threads": args.threads,
            "seed": args.seed,
            "progress": args.progress,
            "baselines": args.baselines,
        }
        if args.inline:
            result = _measure(cfg)
        else:
            result = _in_child(ctx, cfg)
        results.append(result)
        print(json.dumps(result, indent=None, default=str)[:2000], flush=True)

    meta = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} CPU(s)",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, default=str)
    )
    (args.out / f"{args.name}.md").write_text(_markdown(results, meta))
    print(f"wrote {args.out / (args.name + '.json')} and {args.out / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
