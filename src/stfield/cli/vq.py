"""``stfield vq`` subcommands: ``fit``, ``encode`` and ``benchmark``.

Thin wrappers over :mod:`stfield.tl.vq` and :mod:`stfield.bench.vq`: options left unset take the
library's defaults (the paper's where it gives them), so the command line has no defaults of its
own. Bad input raises ``ValueError`` / ``FileNotFoundError``, which ``stfield.cli.main`` turns
into one line and exit status 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .._errors import StfieldFileNotFoundError, input_error


def _read(path: Path, columns: str | None) -> Any:
    from .. import io
    from ..data.shards import ShardStore

    if not path.exists():
        raise StfieldFileNotFoundError(f"{path}: no such file or directory")
    if ShardStore.is_store(path):  # written by `stfield shard`: read tile by tile
        if columns is not None:
            raise input_error(
                "--columns does not apply to a shard folder (its columns were mapped when it "
                "was written)",
                str(path),
                "leave --columns out",
            )
        return ShardStore(path)
    opts = {} if columns is None else {"columns": io.parse_column_map(columns)}
    return io.read_transcripts(path, **opts)


def _set(**kwargs: Any) -> dict[str, Any]:
    """Only the options the user gave."""
    return {k: v for k, v in kwargs.items() if v is not None}


_columns = click.option(
    "--columns",
    default=None,
    help="Column map for a generic transcripts table: gene=COL,x=COL,y=COL[,z=COL,cell=COL].",
)
_accelerator = click.option(
    "--accelerator", default=None, help="auto, cpu, cuda or cuda:N [default: auto]."
)


@click.group("vq")
def vq() -> None:
    """Hierarchical VQ-VAE over raw transcripts: tokens, neighbourhoods, benchmark."""


@vq.command("fit")
@click.argument("transcripts", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Model directory."
)
@click.option("--pixel-size", type=float, default=None, help="µm per pixel [default: 1.0].")
@click.option("--tile", type=int, default=None, help="Tile side I in pixels [default: 256].")
@click.option("--stride", type=int, default=None, help="Window stride in pixels [default: tile].")
@click.option("--codebook-size", type=int, default=None, help="Codes per branch K [default: 8192].")
@click.option("--dim", type=int, default=None, help="Code dimension D [default: 64].")
@click.option("--epochs", type=int, default=None, help="Training epochs [default: 10].")
@click.option("--batch-size", type=int, default=None, help="Tiles per batch [default: 8].")
@click.option("--lr", type=float, default=None, help="AdamW learning rate [default: 3e-4].")
@click.option("--seed", type=int, default=None, help="Random seed [default: 0].")
@click.option(
    "--checkpoint-every", type=int, default=None, help="Save a checkpoint every N epochs."
)
@click.option(
    "--resume",
    is_flag=True,
    default=None,
    help="Continue an interrupted fit from OUT_checkpoints/ (same input and options).",
)
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=None,
    help="Train data-parallel on N local processes (one per GPU with CUDA, gloo on CPU); "
    "--batch-size is then per process. Under torchrun leave it out [default: 1].",
)
@_accelerator
@_columns
def fit(
    transcripts: Path,
    out_dir: Path,
    pixel_size: float | None,
    tile: int | None,
    stride: int | None,
    codebook_size: int | None,
    dim: int | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int | None,
    checkpoint_every: int | None,
    resume: bool | None,
    devices: int | None,
    accelerator: str | None,
    columns: str | None,
) -> None:
    """Train a hierarchical VQ-VAE on TRANSCRIPTS and save it to --out.

    TRANSCRIPTS is a transcripts file or folder, or a tile-shard folder written by
    `stfield shard` (for tables larger than memory). With --checkpoint-every N, the state is
    saved every N epochs under OUT_checkpoints/; after an interruption the same command with
    --resume continues from there.

    \b
    Data-parallel training (DistributedDataParallel; codebooks, BatchNorm and metrics are
    synchronised, each process trains on its own shard of the tiles; see docs/distributed.md):
      N local processes:  stfield vq fit TX --out M --devices N
      torchrun, 1 node:   torchrun --standalone --nproc-per-node N --no-python stfield vq fit ...
      torchrun, K nodes:  the same on every node with --nnodes K --rdzv-backend c10d
                          --rdzv-endpoint HOST:PORT --rdzv-id ID instead of --standalone
    --batch-size is per process. Only rank 0 writes the model, checkpoints and the summary.
    """
    from ..train import distributed as dist_utils

    options = _set(
        pixel_size=pixel_size,
        tile=tile,
        stride=stride,
        codebook_size=codebook_size,
        dim=dim,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        checkpoint_every=checkpoint_every,
        accelerator=accelerator,
        resume=resume or None,
    )
    if dist_utils.launched_by_torchrun():
        # torchrun started this process: join its group (one process per --nproc-per-node)
        local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
        if devices is not None and devices != local:
            raise input_error(
                f"--devices {devices} but torchrun started {local} process(es) on this node",
                "--devices",
                "leave --devices out under torchrun (set --nproc-per-node instead)",
            )
        dist_utils.init_process_group(accelerator or "auto")
        try:
            _fit_worker(transcripts, columns, out_dir, options)
        finally:
            dist_utils.destroy_process_group()
    elif devices is not None and devices > 1:
        if not transcripts.exists():  # fail here, in one line, rather than in N processes
            raise StfieldFileNotFoundError(f"{transcripts}: no such file or directory")
        dist_utils.launch(
            _fit_worker,
            devices,
            args=(transcripts, columns, out_dir, options),
            accelerator=accelerator or "auto",
        )
    else:
        _fit_worker(transcripts, columns, out_dir, options)


def _fit_worker(
    transcripts: Path, columns: str | None, out_dir: Path, options: dict[str, Any]
) -> None:
    """Body of ``vq fit``: one process, or every rank of a data-parallel run."""
    from ..tl.vq import vq_fit
    from ..train.distributed import is_main_process

    df = _read(transcripts, columns)
    model = vq_fit(df, out=out_dir, **options)
    if not is_main_process():
        return
    last = model.history[-1] if model.history else {}
    perp = ", ".join(
        f"{k[len('val_perplexity_') :]}={v:.2f}"
        for k, v in last.items()
        if k.startswith("val_perplexity_")
    )
    click.echo(
        f"fitted {model!r} on {model.info['tiles']['n_tiles']} tiles in "
        f"{model.info['fit_seconds']:.1f} s; val MSE {last.get('val_mse', float('nan')):.4g}, "
        f"SSIM {last.get('val_ssim', float('nan')):.3f}, perplexity {perp or 'n/a'}"
    )
    click.echo(f"model: {out_dir}")


@vq.command("encode")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("transcripts", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_path", required=True, type=click.Path(path_type=Path), help="Output .h5ad."
)
@click.option(
    "--neighbourhoods",
    type=int,
    default=None,
    help="Also group cells into this many neighbourhoods (code-frequency profiles).",
)
@click.option("--batch-size", type=int, default=None, help="Tiles per batch [default: 8].")
@click.option("--no-code-maps", is_flag=True, help="Do not store the per-tile code maps.")
@_accelerator
@_columns
def encode(
    model_dir: Path,
    transcripts: Path,
    out_path: Path,
    neighbourhoods: int | None,
    batch_size: int | None,
    no_code_maps: bool,
    accelerator: str | None,
    columns: str | None,
) -> None:
    """Tokenise TRANSCRIPTS with MODEL_DIR; write a cell × gene .h5ad with codes in obs."""
    from .._utils import write_h5ad
    from ..tl.vq import VQModel, vq_encode, vq_neighbourhoods

    model = VQModel.load(model_dir)
    df = _read(transcripts, columns)
    adata = vq_encode(
        model,
        df,
        code_maps=not no_code_maps,
        **_set(batch_size=batch_size, accelerator=accelerator),
    )
    if neighbourhoods:
        vq_neighbourhoods(adata, method="profile", n_neighbourhoods=neighbourhoods)
    write_h5ad(adata, out_path)
    uns = adata.uns["stfield"]["vq"]
    perp = ", ".join(f"{k}={v:.2f}" for k, v in uns["perplexity"].items())
    click.echo(
        f"encoded {adata.n_obs:,} cells in {uns['n_tiles']} tiles "
        f"({uns['tiles_per_s']:.1f} tiles/s, {uns['cells_per_s']:.0f} cells/s); "
        f"perplexity {perp}"
    )
    click.echo(f"cells: {out_path}")


@vq.command("benchmark")
@click.argument("transcripts", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Report folder."
)
@click.option("--pixel-size", type=float, default=None, help="µm per pixel [default: 2.0].")
@click.option("--tile", type=int, default=None, help="Tile side in pixels [default: 32].")
@click.option("--codebook-size", type=int, default=None, help="K [default: 64].")
@click.option("--dim", type=int, default=None, help="D [default: 16].")
@click.option("--epochs", type=int, default=None, help="Training epochs [default: 10].")
@click.option("--seed", type=int, default=None, help="Random seed [default: 0].")
@click.option(
    "--no-ablation", is_flag=True, help="Skip the K × D ablation of the hierarchical model."
)
@_accelerator
@_columns
def benchmark(
    transcripts: Path,
    out_dir: Path,
    pixel_size: float | None,
    tile: int | None,
    codebook_size: int | None,
    dim: int | None,
    epochs: int | None,
    seed: int | None,
    no_ablation: bool,
    accelerator: str | None,
    columns: str | None,
) -> None:
    """Hierarchical VQ-VAE vs VAE vs single-branch VQ-VAE on the same held-out tiles."""
    from ..bench.vq import run_vq_benchmark

    df = _read(transcripts, columns)
    extra: dict[str, Any] = {"ablation_sizes": ()} if no_ablation else {}
    res = run_vq_benchmark(
        df,
        out_dir,
        **extra,
        **_set(
            pixel_size=pixel_size,
            tile=tile,
            codebook_size=codebook_size,
            dim=dim,
            epochs=epochs,
            seed=seed,
            accelerator=accelerator,
        ),
    )
    main = res[res.experiment == "models"]
    for _, r in main.iterrows():
        click.echo(
            f"{r['model']:>13}: MSE {r['mse']:.4g}  SSIM {r['ssim']:.3f}  "
            f"perplexity {r['perplexity']:.2f}  {r['tiles_per_s']:.1f} tiles/s"
        )
    click.echo(f"report: {out_dir / 'results.md'}")


__all__ = ["vq"]
