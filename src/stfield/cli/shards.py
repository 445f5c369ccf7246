"""``stfield shard``: write a transcripts table of any size as per-tile parquet shards.

A thin wrapper over :func:`stfield.data.shards.write_tile_shards`. Bad input raises
``ValueError`` / ``FileNotFoundError``, which ``stfield.cli.main`` turns into one line and exit
status 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from .._errors import input_error


def _genes(value: str | None) -> list[str] | None:
    """``--genes``: a comma-separated list, or a text file with one gene per line."""
    if value is None:
        return None
    path = Path(value)
    items = path.read_text().splitlines() if path.is_file() else value.split(",")
    genes = [g.strip() for g in items if g.strip()]
    if not genes:
        raise input_error("no gene given", "--genes", "e.g. --genes EPCAM,KRT8 or a file")
    return genes


def _config(tile_um: float, pixel_size: float | None) -> dict:
    """``tile_um=`` alone, or a RasterConfig when a pixel size is given (recorded in the store)."""
    from ..data.raster import RasterConfig

    if pixel_size is None:
        return {"tile_um": tile_um}
    if not (math.isfinite(pixel_size) and pixel_size > 0):
        raise input_error(f"--pixel-size must be > 0 µm, got {pixel_size}", "--pixel-size")
    tile = round(tile_um / pixel_size)
    if tile < 1 or not math.isclose(tile * pixel_size, tile_um, rel_tol=1e-9):
        raise input_error(
            f"--tile-um {tile_um:g} is not a whole number of {pixel_size:g} µm pixels",
            "--tile-um",
            f"use e.g. --tile-um {max(tile, 1) * pixel_size:g}",
        )
    return {"config": RasterConfig(pixel_size=pixel_size, tile=tile)}


@click.command("shard")
@click.argument("source", metavar="INPUT")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Store folder."
)
@click.option("--tile-um", type=float, required=True, help="Tile side in µm.")
@click.option(
    "--pixel-size",
    type=float,
    default=None,
    help="µm per raster pixel, recorded as the store's default raster (tile = tile-um / this).",
)
@click.option(
    "--platform",
    type=click.Choice(["xenium", "merscope", "cosmx", "generic"]),
    default=None,
    help="Column layout [default: detected from the columns].",
)
@click.option(
    "--columns",
    "--column-map",
    "columns",
    default=None,
    help="Column map for a generic table: gene=COL,x=COL,y=COL[,cell=COL].",
)
@click.option("--genes", default=None, help="Channel genes: G1,G2,... or a file (one per line).")
@click.option("--min-qv", type=float, default=None, help="Xenium quality threshold [default: 20].")
@click.option("--keep-controls", is_flag=True, help="Keep control probes / blank codewords.")
@click.option(
    "--pixel-size-um",
    type=float,
    default=None,
    help="µm per coordinate pixel (CosMx [default: 0.12028], generic *_px columns).",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Partitions processed at once."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def shard(
    source: str,
    out_dir: Path,
    tile_um: float,
    pixel_size: float | None,
    platform: str | None,
    columns: str | None,
    genes: str | None,
    min_qv: float | None,
    keep_controls: bool,
    pixel_size_um: float | None,
    workers: int,
    overwrite: bool,
) -> None:
    """Write INPUT as per-tile parquet shards under --out (out of core, with dask).

    INPUT is a parquet file or folder of parts, a CSV(.gz) file or quoted glob, or a Xenium /
    MERSCOPE / CosMx output folder. The rasteriser then reads one tile at a time
    (TileIndex.from_shards).
    """
    from ..data.shards import write_tile_shards
    from ..io.xenium import XENIUM_MIN_QV

    if not (math.isfinite(tile_um) and tile_um > 0):
        raise input_error(f"--tile-um must be > 0 µm, got {tile_um}", "--tile-um", "e.g. 256")
    store = write_tile_shards(
        source,
        out_dir,
        **_config(tile_um, pixel_size),
        platform=platform,
        columns=columns,
        genes=_genes(genes),
        min_qv=XENIUM_MIN_QV if min_qv is None else min_qv,
        keep_controls=keep_controls,
        pixel_size_um=pixel_size_um,
        workers=workers,
        overwrite=overwrite,
    )
    m = store.manifest
    click.echo(
        f"sharded {m['n_molecules']:,} molecules of {len(store.genes)} genes into "
        f"{m['n_tiles']:,} tiles of {store.tile_um:g} µm ({len(m['shards'])} file(s), "
        f"{m['n_cells']:,} cells) in {m['seconds']:.1f} s"
    )
    click.echo(f"store: {out_dir}")


__all__ = ["shard"]
