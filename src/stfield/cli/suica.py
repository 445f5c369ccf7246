"""SUICA subcommands: ``stfield fit`` and ``stfield predict``.

Thin wrappers over :func:`stfield.tl.suica.fit_suica` and :class:`stfield.models.suica.SUICA`;
bad input raises ``ValueError``/``FileNotFoundError``, which ``stfield.cli.main`` turns into one
line and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd

from .._constants import SPATIAL_KEY, UNS_KEY
from .._errors import StfieldFileNotFoundError, input_error
from ._common import read_slice, suica_epoch_options

_BACKBONES = ("ffn", "siren", "hashgrid")


@click.command("fit")
@suica_epoch_options
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Model directory to write (replaced atomically if it exists).",
)
@click.option(
    "--preset",
    type=click.Choice(("stfield", "paper", "fast")),
    default="stfield",
    show_default=True,
    help="stfield: the configuration measured best on real slices (SIREN field blended with kernel interpolation); "
    "paper: the published SUICA configuration, exactly; fast: the stfield model on the short "
    "schedule used by the tests.",
)
@click.option(
    "--backbone",
    type=click.Choice(_BACKBONES),
    default=None,
    help="Coordinate network: ffn (denser slices), siren (sparser slices) or hashgrid "
    "[default: the preset's: siren for stfield, ffn for paper].",
)
@click.option(
    "--bin-size",
    type=float,
    default=10.0,
    show_default=True,
    help="Spot size in µm used to bin a transcripts table (ignored for spot × gene inputs).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the fit.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also checkpoint every N epochs inside a stage (a checkpoint is always written at the "
    "end of each stage) to OUT_checkpoints/checkpoint.pt.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted fit from OUT_checkpoints/ (same INPUT and options).",
)
def fit(
    input_path: Path,
    out_dir: Path,
    preset: str,
    backbone: str | None,
    bin_size: float,
    epochs_gae: int | None,
    epochs_inr: int | None,
    epochs_decoder: int | None,
    seed: int,
    checkpoint_every: int,
    resume: bool,
) -> None:
    """Fit SUICA on INPUT (anything stfield.io.read reads) and save the model to --out.

    Transcript tables are binned into square spots of --bin-size µm first. The counts are fitted
    as given; --preset gives every option not set here. A checkpoint is written at the end of every stage to OUT_checkpoints/; after an
    interruption, the same command with --resume continues where it stopped. The checkpoint
    folder is removed once the model is saved.
    """
    import shutil

    from ..tl.suica import fit_suica

    ckpt_dir = checkpoint_dir_for(out_dir)
    if resume and not (ckpt_dir / "checkpoint.pt").exists():
        raise StfieldFileNotFoundError(
            f"{ckpt_dir}: no checkpoint to resume from. Fix: run without --resume, or pass the "
            "--out of the interrupted fit"
        )
    adata = read_slice(input_path, bin_size)
    model = fit_suica(
        adata,
        preset=preset,
        **({"backbone": backbone} if backbone else {}),
        seed=seed,
        epochs_gae=epochs_gae,
        epochs_inr=epochs_inr,
        epochs_decoder=epochs_decoder,
        checkpoint_dir=ckpt_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    model.save(out_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    losses = ", ".join(f"{k} {v[-1]:.4g}" for k, v in model.history.items() if v)
    click.echo(
        f"fitted SUICA ({preset} preset, {model.backbone_name}) on {adata.n_obs:,} spots × {adata.n_vars:,} genes "
        f"in {sum(model.timings_.values()):.1f} s; final losses: {losses or 'n/a'}"
    )
    click.echo(f"model: {out_dir}")


def checkpoint_dir_for(out_dir: Path) -> Path:
    """Checkpoint folder of the fit writing ``out_dir``: a sibling named ``<out>_checkpoints``."""
    return out_dir.parent / f"{out_dir.name}_checkpoints"


def _read_coords_csv(path: Path, dim: int) -> tuple[np.ndarray, pd.Index]:
    if not path.exists():
        raise StfieldFileNotFoundError(f"{path}: no such file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise input_error(f"not a readable CSV ({exc})", str(path)) from None
    lower = {str(c).lower(): c for c in df.columns}
    axes = ["x", "y", "z"][:dim]
    if all(a in lower for a in axes):
        cols = [lower[a] for a in axes]
    else:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        if len(numeric) != dim:
            raise input_error(
                f"cannot find the coordinate columns (columns: {list(df.columns)[:8]})",
                str(path),
                f"name the columns {', '.join(axes)} (µm), or give exactly {dim} numeric columns",
            )
        cols = numeric
    return df[cols].to_numpy(dtype=np.float64), pd.Index(df.index.astype(str))


@click.command("predict")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Output .h5ad (written atomically): predictions in X (CSR), positions in obsm['spatial'].",
)
@click.option(
    "--coords",
    "coords_csv",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV of query points in µm, columns x, y (and z for a 3-D model).",
)
@click.option(
    "--grid-step",
    type=float,
    default=None,
    help="Predict on a regular grid of this step (µm) over the fitted slice's bounding box.",
)
@click.option(
    "--like",
    "like_h5ad",
    type=click.Path(path_type=Path),
    default=None,
    help="Predict at the spots of this .h5ad (its obsm['spatial'], µm); obs is copied.",
)
def predict(
    model_dir: Path,
    out_path: Path,
    coords_csv: Path | None,
    grid_step: float | None,
    like_h5ad: Path | None,
) -> None:
    """Predict expression with the SUICA model in MODEL_DIR at new coordinates.

    Give exactly one of --coords, --grid-step or --like.
    """
    from anndata import AnnData

    from .._utils import write_h5ad
    from .._validate import check_coordinates
    from ..models.suica import SUICA

    given = [
        name
        for name, value in (
            ("--coords", coords_csv),
            ("--grid-step", grid_step),
            ("--like", like_h5ad),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise input_error(
            f"got {len(given)} query option(s) ({', '.join(given) or 'none'})",
            "stfield predict",
            "give exactly one of --coords CSV, --grid-step UM or --like H5AD",
        )
    if grid_step is not None and not (np.isfinite(grid_step) and grid_step > 0):
        raise input_error(
            f"grid step must be a positive number of µm, got {grid_step}",
            "--grid-step",
            "pass e.g. --grid-step 5",
        )
    model = SUICA.load(model_dir)
    genes = pd.Index(model.gene_names)
    if grid_step is not None:
        result = model.render_grid(grid_step)
        source = {"grid_step_um": float(grid_step)}
    else:
        if coords_csv is not None:
            coords, names = _read_coords_csv(coords_csv, int(model.coord_dim))
            obs = pd.DataFrame(index=names)
            source = {"coords_csv": str(coords_csv)}
        else:
            from .. import io

            if not like_h5ad.exists():
                raise StfieldFileNotFoundError(f"{like_h5ad}: no such file")
            like = io.read(like_h5ad)
            if not isinstance(like, AnnData) or SPATIAL_KEY not in like.obsm:
                raise input_error(
                    f"no obsm[{SPATIAL_KEY!r}] to predict at",
                    str(like_h5ad),
                    "pass an .h5ad with spot coordinates in µm",
                )
            coords = check_coordinates(
                like.obsm[SPATIAL_KEY], f"{like_h5ad} obsm['spatial']", dims=(2, 3)
            )
            obs = like.obs.copy()
            source = {"like_h5ad": str(like_h5ad)}
        X = model.predict(coords, sparse=True)
        result = AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
        result.obsm[SPATIAL_KEY] = coords
        result.uns[UNS_KEY] = {"spatial_unit": "um"}
    result.uns.setdefault(UNS_KEY, {})["suica_predict"] = {"model_dir": str(model_dir), **source}
    write_h5ad(result, out_path)
    click.echo(f"wrote {out_path}: {result.n_obs:,} points × {result.n_vars:,} genes")


__all__ = ["fit", "predict"]
