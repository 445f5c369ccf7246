"""`stfield benchmark`: every method, every task, the same stored splits, one table.

A row counts only when all methods ran in the same command on the same splits: the harness
makes the protocols once per seed, stores them beside the results, and fits a fresh instance of
every method on each (task, seed).
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from tqdm.auto import tqdm

from .._constants import UNS_KEY
from .._errors import input_error
from .._utils import atomic_path, seed_everything
from .._validate import check_adata
from ._memory import PeakRSS
from .baselines import BASELINES
from .protocols import TASKS, make_protocols, run_task

logger = logging.getLogger(__name__)

#: Columns of results.csv, in order.
METRIC_COLUMNS = (
    "mae",
    "mse",
    "cosine",
    "pearson",
    "spearman",
    "mae_gene",
    "mse_gene",
    "cosine_gene",
    "pearson_gene",
    "spearman_gene",
    "iou",
    "ari",
)
RESULT_COLUMNS = (
    "method",
    "task",
    "seed",
    *METRIC_COLUMNS,
    "fit_seconds",
    "predict_seconds",
    "peak_rss_mb",
)
#: Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = frozenset(
    {"mae", "mse", "mae_gene", "mse_gene", "fit_seconds", "predict_seconds", "peak_rss_mb"}
)
#: Figures: one bar chart per metric.
FIGURE_METRICS = ("cosine", "mse", "pearson", "pearson_gene", "spearman", "iou", "ari")


def method_registry() -> dict[str, Callable[..., Any]]:
    """Every benchmarkable method: the baselines plus SUICA and its ablations."""
    from .baselines import suica as suica_methods

    return {**suica_methods.SUICA_METHODS, **BASELINES}


def _parse_list(value: str | Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    items = [v for v in items if v]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise input_error(
            f"unknown {what} {unknown or value!r}", what, f"choose from {', '.join(allowed)}"
        )
    return items


def run_benchmark(
    adata: AnnData,
    out_dir: str | os.PathLike[str],
    tasks: str | Sequence[str] = TASKS,
    methods: str | Sequence[str] = (
        "suica",
        "suica-paper",
        "ffn",
        "siren",
        "hashgrid",
        "stage",
        "knn",
        "gaussian",
        "mean",
    ),
    seeds: Sequence[int] = (0, 1, 2),
    labels_key: str | None = None,
    method_options: dict[str, dict[str, Any]] | None = None,
    marker_genes: Sequence[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``methods`` × ``tasks`` × ``seeds`` on one (normalised) slice and write the report.

    Parameters
    ----------
    adata
        Preprocessed slice (e.g. :func:`stfield.pp.normalize_suica`), counts in ``X``.
    out_dir
        Receives ``results.csv``, ``results.md``, ``figures/``, ``protocols/`` and
        ``config.json``.
    tasks
        ``"spatial"``, ``"genes"``, ``"denoise"`` (or ``"all"``).
    methods
        Names from :func:`method_registry`.
    seeds
        One set of protocols per seed; each method is fitted with that seed too.
    labels_key
        ``obs`` column of cell-type / region labels: adds ARI of clustered predictions.
    method_options
        ``{method: {option: value}}`` passed to the method factories (e.g. epochs).
    marker_genes
        Genes shown in the maps (default: the 4 with the highest Moran's I).
    """
    check_adata(adata, min_spots=10)
    registry = method_registry()
    tasks = list(TASKS) if tasks == "all" else _parse_list(tasks, TASKS, "task")
    methods = _parse_list(methods, list(registry), "method")
    labels = None
    if labels_key is not None:
        if labels_key not in adata.obs:
            raise input_error(
                f"obs[{labels_key!r}] not found (obs columns: {list(adata.obs.columns)})",
                "--labels",
                "name an existing obs column of labels",
            )
        labels = adata.obs[labels_key].astype(str).to_numpy()
    options = method_options or {}
    out = Path(out_dir)
    (out / "protocols").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any]] = []
    spatial_preds: dict[str, np.ndarray] = {}
    first_test = np.arange(0)
    total = len(seeds) * len(tasks) * len(methods)
    bar = tqdm(total=total, desc="benchmark", disable=not progress, dynamic_ncols=True)
    for seed in seeds:
        protocols = make_protocols(adata.X, seed)
        protocols.split.save(out / "protocols" / f"split_seed{seed}.npz")
        protocols.mask.save(out / "protocols" / f"gene_mask_seed{seed}.npz")
        for task in tasks:
            for name in methods:
                bar.set_postfix_str(f"{name}/{task}/seed {seed}")
                seed_everything(seed)

                def factory(name: str = name, seed: int = seed) -> Any:
                    return registry[name](seed=seed, **options.get(name, {}))

                with PeakRSS() as mem:
                    scores, pred = run_task(task, factory, adata, protocols, labels)
                row = {
                    "method": name,
                    "task": task,
                    "seed": seed,
                    **scores,
                    "peak_rss_mb": round(mem.peak_mb, 1),
                }
                rows.append(row)
                logger.info(
                    "%s/%s/seed %d: cosine %.3f mse %.3f pearson_gene %.3f",
                    name,
                    task,
                    seed,
                    scores["cosine"],
                    scores["mse"],
                    scores["pearson_gene"],
                )
                if task == "spatial" and seed == seeds[0]:
                    spatial_preds[name] = pred
                    first_test = protocols.split.test
                bar.update()
    bar.close()
    table = pd.DataFrame(rows)
    for col in RESULT_COLUMNS:
        if col not in table:
            table[col] = np.nan
    table = table[list(RESULT_COLUMNS)]
    with atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(summary_markdown(table))
    config = {
        "tasks": tasks,
        "methods": methods,
        "seeds": list(seeds),
        "labels_key": labels_key,
        "method_options": options,
        "spots": adata.n_obs,
        "genes": adata.n_vars,
        "preprocessing": adata.uns.get(UNS_KEY, {}).get("normalize"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
    }
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2, default=str))
    _figures(table, adata, spatial_preds, first_test, out / "figures", marker_genes)
    return table


def summary_markdown(table: pd.DataFrame) -> str:
    """Mean ± sd over seeds per method and task; the best mean of each column in bold."""
    metrics = [m for m in (*METRIC_COLUMNS, "fit_seconds") if table[m].notna().any()]
    lines = []
    for task, sub in table.groupby("task", sort=False):
        grouped = sub.groupby("method", sort=False)[metrics]
        mean, sd = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
        lines += [
            f"### {task}",
            "",
            "| method | " + " | ".join(metrics) + " |",
            "|---|" + "---|" * len(metrics),
        ]
        best = {m: (mean[m].min() if m in LOWER_IS_BETTER else mean[m].max()) for m in metrics}
        for method in mean.index:
            cells = []
            for m in metrics:
                v, s = mean.loc[method, m], sd.loc[method, m]
                if np.isnan(v):
                    cells.append("—")
                    continue
                text = f"{v:.3f} ± {s:.3f}" if abs(v) < 1000 else f"{v:.0f} ± {s:.0f}"
                cells.append(f"**{text}**" if v == best[m] and m != "fit_seconds" else text)
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    n_seeds = table["seed"].nunique()
    lines.append(
        f"Mean ± sd over {n_seeds} seed(s). Per-spot metrics over non-zero ground-truth "
        "entries; `_gene`: per gene; iou: zero-map IoU; — : undefined (e.g. a constant "
        "prediction has no correlation)."
    )
    return "\n".join(lines) + "\n"


def _figures(
    table: pd.DataFrame,
    adata: AnnData,
    spatial_preds: dict[str, np.ndarray],
    test: np.ndarray,
    fig_dir: Path,
    marker_genes: Sequence[str] | None,
) -> None:
    import matplotlib.pyplot as plt

    from ..pl import save_figure, spatial_genes

    for metric in FIGURE_METRICS:
        if not table[metric].notna().any():
            continue
        pivot = table.groupby(["task", "method"], sort=False)[metric].agg(["mean", "std"])
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(pivot), 3.2), layout="constrained")
        labels = [f"{m}\n{t}" for t, m in pivot.index]
        ax.bar(
            range(len(pivot)),
            pivot["mean"],
            yerr=pivot["std"].fillna(0),
            capsize=3,
            color=[f"C{list(dict.fromkeys(table['method'])).index(m)}" for _, m in pivot.index],
        )
        ax.set_xticks(range(len(pivot)), labels, fontsize=7)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} ({'lower' if metric in LOWER_IS_BETTER else 'higher'} is better)")
        save_figure(fig, fig_dir / f"bar_{metric}.png")
    if not spatial_preds:
        return
    from ..tl import morans_i

    if marker_genes is None:
        marker_genes = list(morans_i(adata, key_added=None).sort_values(ascending=False).index[:4])
    held = adata[test].copy()
    panels: dict[str, tuple[AnnData, str | None]] = {"measured": (held, None)}
    for name, pred in spatial_preds.items():
        held.layers[f"stfield_{name}"] = pred
        panels[name] = (held, f"stfield_{name}")
    spatial_genes(panels, list(marker_genes), save=fig_dir / "maps_spatial.png")
