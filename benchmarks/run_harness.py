"""Run the benchmark harness on a real slice with a named, recorded configuration.

    python benchmarks/run_harness.py xenium --tasks spatial --seeds 0,1,2 --config cpu
    python benchmarks/run_harness.py merfish --tasks spatial --seeds 0 --config cpu

``xenium``: the bundled Xenium crop binned at --bin-size µm. ``merfish``: shared MERFISH U-2 OS
batch 1 (10k genes; needs ../shared/data). ``--config paper`` uses every method's published /
default size (hours on a CPU); ``cpu`` uses the demo-sized networks below, the same for every
neural method, so the comparison stays fair. Results go to benchmarks/results/<name>/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import stfield
from stfield.bench.harness import run_benchmark

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "data"

WIDTH = 256
#: The stfield default ("suica") is already CPU-sized (SIREN width 256, GAE 512-128-64, the
#: "stfield" schedule), so it runs unchanged in both configurations. "cpu" gives the published
#: architecture and its variants the same widths and schedule, so the comparison stays fair.
_CPU_SUICA = {"preset": "fast", "gae_hidden": (512, 128, 64), "backbone_kwargs": {"width": WIDTH}}
CONFIGS = {
    "paper": {},
    "cpu": {
        **{
            name: dict(_CPU_SUICA)
            for name in (
                "suica-paper",
                "suica-nodice",
                "suica-nograph",
                "suica-siren",
                "suica-leaky",
                "suica-knn",
            )
        },
        "suica-noae": {"epochs_inr": 300, "backbone_kwargs": {"width": WIDTH}},
        "ffn": {"epochs": 300, "backbone_kwargs": {"width": WIDTH}, "lr": 1e-4},
        "siren": {"epochs": 300, "backbone_kwargs": {"width": WIDTH}, "lr": 1e-4},
        "hashgrid": {"epochs": 300, "lr": 1e-2},
        "stage": {"epochs": 300},
    },
}


def load(dataset: str, bin_size: float):
    if dataset == "xenium":
        adata = stfield.datasets.xenium_breast_binned(bin_size)
    elif dataset == "merfish":
        adata = stfield.io.read(SHARED / "merfish_u2os" / "batch1.h5ad")
    else:
        raise SystemExit(f"unknown dataset {dataset!r}")
    stfield.pp.normalize_suica(adata)
    return adata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("xenium", "merfish"))
    parser.add_argument("--tasks", default="spatial")
    parser.add_argument(
        "--methods",
        default="suica,suica-paper,suica-siren,ffn,siren,hashgrid,stage,knn,gaussian,mean",
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--bin-size", type=float, default=10.0)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()

    import torch

    adata = load(args.dataset, args.bin_size)
    name = args.name or f"{args.dataset}_{args.config}_{args.tasks.replace(',', '-')}"
    out = HERE / "results" / name
    t0 = time.perf_counter()
    run_benchmark(
        adata,
        out,
        tasks=args.tasks,
        methods=args.methods,
        seeds=[int(s) for s in args.seeds.split(",")],
        method_options=CONFIGS[args.config],
        progress=True,
    )
    meta = {
        "command": "python benchmarks/"
        + Path(__file__).name
        + " "
        + " ".join(f"{k}={v}" for k, v in vars(args).items()),
        "seconds": round(time.perf_counter() - t0),
        "torch_threads": torch.get_num_threads(),
        "spots": adata.n_obs,
        "genes": adata.n_vars,
    }
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
