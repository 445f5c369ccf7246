"""Core subcommands: ``info`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd
import scipy.sparse as sp


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default=None, help="Force a format instead of detecting it.")
@click.option(
    "--columns",
    default=None,
    help="Column map for a generic transcripts table: gene=COL,x=COL,y=COL[,z=COL,cell=COL].",
)
@click.option("--genes", "n_genes", default=10, show_default=True, help="Number of genes to list.")
def info(path: Path, fmt: str | None, columns: str | None, n_genes: int) -> None:
    """Describe a dataset: format, shape, coordinate ranges and unit, sparsity, genes."""
    from .. import io

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    detected = fmt or io.detect_format(path)
    opts = {} if columns is None else {"columns": io.parse_column_map(columns)}
    data = io.read(path, format=detected, **opts)
    click.echo(f"path:    {path}")
    click.echo(f"format:  {detected}")
    if isinstance(data, pd.DataFrame):
        _describe_transcripts(data, n_genes)
    else:
        _describe_adata(data, n_genes)


def _ranges(coords: np.ndarray, unit: str) -> str:
    axes = "xyz"
    return (
        ", ".join(
            f"{axes[i]} {coords[:, i].min():.1f}–{coords[:, i].max():.1f}"
            for i in range(coords.shape[1])
        )
        + f" {unit}"
    )


def _describe_adata(adata, n_genes: int) -> None:
    X = adata.X
    nnz = X.nnz if sp.issparse(X) else int(np.count_nonzero(X))
    unit = adata.uns.get("stfield", {}).get("spatial_unit", "?")
    click.echo(f"kind:    AnnData ({'CSR' if sp.issparse(X) else 'dense'} {X.dtype})")
    click.echo(f"shape:   {adata.n_obs:,} spots × {adata.n_vars:,} genes")
    click.echo(f"zeros:   {100 * (1 - nnz / max(adata.n_obs * adata.n_vars, 1)):.1f}%")
    if "spatial" in adata.obsm:
        click.echo(f"coords:  {_ranges(np.asarray(adata.obsm['spatial']), unit)}")
    else:
        click.echo("coords:  none (obsm['spatial'] missing)")
    click.echo(
        f"genes:   {', '.join(map(str, adata.var_names[:n_genes]))}"
        + (" ..." if adata.n_vars > n_genes else "")
    )


def _describe_transcripts(df: pd.DataFrame, n_genes: int) -> None:
    unit = df.attrs.get("stfield", {}).get("spatial_unit", "um")
    cols = [c for c in ("x", "y", "z") if c in df and df[c].notna().any()]
    genes = df["gene"].value_counts()
    cells = df["cell_id"].nunique() if "cell_id" in df else 0
    click.echo("kind:    transcripts table")
    click.echo(f"shape:   {len(df):,} molecules, {genes.size:,} genes, {cells:,} cells")
    click.echo(f"coords:  {_ranges(df[cols].to_numpy(dtype=np.float64), unit)}")
    click.echo(
        f"genes:   {', '.join(f'{g} ({n:,})' for g, n in genes.head(n_genes).items())}"
        + (" ..." if genes.size > n_genes else "")
    )


@click.command()
@click.option(
    "--out",
    "out_dir",
    default="stfield_demo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder for the report, figures and data.",
)
@click.option("--bin-size", default=10.0, show_default=True, help="Spot size in µm for binning.")
@click.option("--seed", default=0, show_default=True, help="Random seed of every protocol.")
@click.option(
    "--models/--no-models",
    default=True,
    show_default=True,
    help="Fit the learned models (SUICA, VQ-VAE); --no-models runs the protocols "
    "with the kNN and mean baselines only (seconds).",
)
def demo(out_dir: Path, bin_size: float, seed: int, models: bool) -> None:
    """Run the main job on the bundled real Xenium crop and write a report."""
    from ..bench.demo import run_demo

    summary = run_demo(out_dir, bin_size_um=bin_size, seed=seed, models=models)
    click.echo(
        f"{summary['spots']:,} spots × {summary['genes']} genes "
        f"({100 * summary['zeros_fraction']:.1f}% zeros) in {summary['seconds']:.1f} s"
    )
    click.echo(f"report: {summary['report']}")
