"""The `stfield demo` job on the bundled Xenium crop, as a library function."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import datasets, pp
from .._constants import UNS_KEY
from .._utils import atomic_path, seed_everything, write_h5ad
from ..pl import spatial_genes
from .baselines import BASELINES
from .protocols import TASKS, make_protocols, run_task

logger = logging.getLogger(__name__)

REPORT_METRICS = ("cosine", "mse", "pearson", "pearson_gene", "iou")
#: The reference methods every demo score is shown beside (seconds to fit).
DEMO_BASELINES = ("knn", "gaussian", "mean")


def _markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [
            ("—" if np.isnan(v) else format(v, floatfmt)) if isinstance(v, float) else str(v)
            for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(
    out_dir: str | os.PathLike[str],
    bin_size_um: float = 10.0,
    seed: int = 0,
    n_genes_shown: int = 4,
    models: bool = True,
) -> dict[str, Any]:
    """Bin the bundled Xenium crop, build the graph, run the protocols, write a report.

    Writes ``report.md``, ``maps_measured_vs_knn.png``, ``protocol_scores.csv``,
    ``slice.h5ad`` and the stored protocols (``split.npz``, ``gene_mask.npz``) under
    ``out_dir`` and returns a summary dict.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)

    tx = datasets.xenium_breast()
    raw = pp.bin_transcripts(tx, bin_size_um)
    adata = pp.normalize_suica(raw, copy=True)
    assert adata is not None
    graph = pp.spatial_neighbors(adata)
    from ..tl import morans_i

    moran = morans_i(adata).sort_values(ascending=False)
    genes = list(moran.index[:n_genes_shown])

    protocols = make_protocols(adata.X, seed)
    protocols.split.save(out / "split.npz")
    protocols.mask.save(out / "gene_mask.npz")
    rows = []
    predictions: dict[str, np.ndarray] = {}
    for task in TASKS:
        for name in DEMO_BASELINES:
            scores, pred = run_task(task, BASELINES[name], adata, protocols)
            rows.append({"method": name, "task": task, "seed": seed, **scores})
            predictions[f"{task}/{name}"] = pred
    table = pd.DataFrame(rows)
    with atomic_path(out / "protocol_scores.csv") as tmp:
        table.to_csv(tmp, index=False)

    # Measured vs kNN on the held-out spots of the spatial split.
    test = protocols.split.test
    held_out = adata[test].copy()
    held_out.layers["stfield_knn"] = predictions["spatial/knn"]
    held_out.uns[UNS_KEY] = dict(adata.uns[UNS_KEY])
    spatial_genes(
        {
            "measured (held-out spots)": (held_out, None),
            "kNN interpolation": (held_out, "stfield_knn"),
        },
        genes,
        save=out / "maps_measured_vs_knn.png",
    )
    write_h5ad(adata, out / "slice.h5ad")

    vq_summary = suica_summary = None
    if models:
        from ..tl.vq import vq_demo

        suica_summary = _suica_demo(adata, protocols.split, genes, predictions, out, seed)
        table = pd.concat([table, pd.DataFrame([suica_summary.pop("row")])], ignore_index=True)
        with atomic_path(out / "protocol_scores.csv") as tmp:
            table.to_csv(tmp, index=False)

        vq_summary = vq_demo(tx, out / "vq", seed=seed, progress=False)

    summary = {
        "dataset": datasets.CREDITS,
        "molecules": len(tx),
        "bin_size_um": bin_size_um,
        "spots_binned": raw.n_obs,
        "spots": adata.n_obs,
        "genes": adata.n_vars,
        "zeros_fraction": 1.0 - adata.X.nnz / (adata.n_obs * adata.n_vars),
        "graph_edges": int(graph.nnz),
        "marker_genes": genes,
        "seconds": time.perf_counter() - t_start,
    }
    order = {t: i for i, t in enumerate(TASKS)}
    table = table.sort_values("task", key=lambda col: col.map(order), kind="stable")
    summary["vq"] = vq_summary
    summary["suica"] = suica_summary
    _write_report(out, summary, table, adata.uns[UNS_KEY]["normalize"], moran)
    summary["report"] = str(out / "report.md")
    return summary


def _write_report(
    out: Path, summary: dict[str, Any], table: pd.DataFrame, norm: dict[str, Any], moran: pd.Series
) -> None:
    shown = table[["task", "method", *REPORT_METRICS]].copy()
    lines = [
        "# stfield demo report",
        "",
        f"Data: {summary['dataset']}",
        "",
        f"- {summary['molecules']:,} molecules binned at {summary['bin_size_um']:g} µm → "
        f"{summary['spots_binned']:,} spots; after SUICA appendix-G filtering "
        f"(min spot counts {norm['min_spot_counts']}, min gene counts {norm['min_gene_counts']}, "
        f"max gene count {norm['max_gene_count']}) and normalisation to {norm['target_sum']:g} "
        f"per spot: **{summary['spots']:,} spots × {summary['genes']} genes**, "
        f"{100 * summary['zeros_fraction']:.1f}% zeros.",
        f"- Spatial kNN graph (k = 5 incl. self, symmetric GCN normalisation): "
        f"{summary['graph_edges']:,} edges.",
        "- Most spatially structured genes (Moran's I): "
        + ", ".join(f"{g} ({moran[g]:.2f})" for g in summary["marker_genes"]),
        "",
        "## Protocols (seeded; splits and masks stored beside this report)",
        "",
        "spatial = 80/20 held-out spots; genes = 70% of non-zero entries muted; "
        "denoise = N(0, 1) noise clipped at 0. Metrics over non-zero ground-truth entries, "
        "per spot (cosine, mse, pearson) and per gene (pearson_gene); iou = zero-map IoU.",
        "",
        _markdown_table(shown),
        "",
        "## Maps",
        "",
        "![measured vs kNN](maps_measured_vs_knn.png)",
        "",
        *_suica_section(summary.get("suica")),
        *_vq_section(summary.get("vq")),
        f"Total time: {summary['seconds']:.1f} s.",
        "",
    ]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(lines))


def _suica_demo(
    adata: AnnData,
    split: Any,
    genes: list[str],
    predictions: dict[str, np.ndarray],
    out: Path,
    seed: int,
) -> dict[str, Any]:
    """Fit SUICA on the training spots, score held-out spots, render a 2x denser grid."""
    from ..models import SUICA
    from .metrics import evaluate

    X, coords = adata.X, np.asarray(adata.obsm["spatial"])
    t0 = time.perf_counter()
    # stfield's default model (the "stfield" preset: CPU-sized, ~30 s on 2 cores here).
    model = SUICA(seed=seed).fit(
        X[split.train], coords[split.train], gene_names=list(adata.var_names), progress=False
    )
    fit_s = time.perf_counter() - t0
    pred = model.predict(coords[split.test])
    scores = evaluate(X[split.test], pred)
    model.save(out / "suica_model")

    held = adata[split.test].copy()
    held.layers["stfield_suica"] = pred
    held.layers["stfield_knn"] = predictions["spatial/knn"]
    spatial_genes(
        {
            "measured (held-out spots)": (held, None),
            "SUICA": (held, "stfield_suica"),
            "kNN interpolation": (held, "stfield_knn"),
        },
        genes,
        save=out / "maps_measured_vs_suica.png",
    )
    step = adata.uns[UNS_KEY]["bin_size_um"] / 2
    t1 = time.perf_counter()
    grid = model.render_grid(step)
    render_s = time.perf_counter() - t1
    spatial_genes(
        {"measured (all spots)": (adata, None), f"SUICA, {step:g} µm grid": (grid, None)},
        genes,
        save=out / "suica_grid_2x.png",
    )
    row = {
        "method": "suica",
        "task": "spatial",
        "seed": seed,
        **scores,
        "fit_seconds": fit_s,
        "predict_seconds": 0.0,
    }
    return {
        "row": row,
        "fit_seconds": fit_s,
        "grid_points": grid.n_obs,
        "grid_step_um": step,
        "render_seconds": render_s,
        "stage_seconds": dict(model.timings_),
        "blend_weight": model.blend_.weight if model.blend_ is not None else 0.0,
    }


def _suica_section(suica: dict[str, Any] | None) -> list[str]:
    if not suica:
        return []
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in suica["stage_seconds"].items())
    return [
        "## Continuous field (SUICA)",
        "",
        "stfield's default model (SIREN field blended with Gaussian-kernel interpolation, weight "
        f"{suica.get('blend_weight', float('nan')):.2f} chosen on held-out training spots), "
        f"fitted on the training spots in {suica['fit_seconds']:.0f} s "
        f"({stages}); its held-out scores are the `suica` row of the table above. The model "
        "is saved in `suica_model/` (reload with `stfield.models.SUICA.load`).",
        "",
        "![measured vs SUICA vs kNN](maps_measured_vs_suica.png)",
        "",
        f"Queried on a regular {suica['grid_step_um']:g} µm grid (2× denser than the spots): "
        f"{suica['grid_points']:,} points in {suica['render_seconds']:.1f} s.",
        "",
        "![SUICA on a 2x denser grid](suica_grid_2x.png)",
        "",
    ]


def _vq_section(vq: dict[str, Any] | None) -> list[str]:
    if not vq:
        return []
    perplexity = ", ".join(f"{k} {v:.1f}" for k, v in vq["perplexity"].items())
    used = ", ".join(f"{k} {v}" for k, v in vq["codes_used"].items())
    return [
        "## Discrete codes (hierarchical VQ-VAE)",
        "",
        f"Tiles of {vq['n_tiles']} windows rasterised from the raw molecules, codebook "
        f"K = {vq['codebook_size']} per branch; fitted in {vq['fit_seconds']:.0f} s.",
        "",
        f"- Held-out tiles: reconstruction MSE {vq['val_mse']:.4f}, SSIM {vq['val_ssim']:.3f}.",
        f"- Codebook perplexity per branch: {perplexity}; codes used: {used}.",
        f"- {vq['n_cells']} cells tokenised into {vq['n_neighbourhoods']} neighbourhoods; "
        f"top spatially variable genes by code frequency: {', '.join(vq['top_svg'])}.",
        "",
        "![neighbourhoods](vq/neighbourhoods.png) ![code map](vq/code_map.png)",
        "",
    ]
