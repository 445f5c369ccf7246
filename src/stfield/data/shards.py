"""Out-of-core transcripts: per-tile shards written once, read one tile at a time.

:func:`write_tile_shards` reads a molecule table of any size with :mod:`dask.dataframe` (a
parquet file, a folder of parquet parts, a CSV(.gz) file or glob, or an in-memory DataFrame),
canonicalises it with the platform's column map (Xenium, MERSCOPE, CosMx, or a generic map),
assigns every molecule to one non-overlapping ``tile_um`` window and writes a *shard store*::

    store/
      manifest.json          genes (channel order), origin, tile_um, per-tile index, column map
      centroids.parquet      cell_id, x, y, n_molecules, source (one row per cell)
      tiles/shard-00000.parquet
      tiles/shard-00001.parquet  ...   (gene, x, y) with one row group per tile

The writer makes three passes, each holding one partition (or one output shard) in memory:

1. *scan*: per-gene count and extent of the kept molecules (gene, x, y columns only). This fixes
   the channel order and the global tile origin before anything is written.
2. *spill*: each partition is canonicalised, its molecules get a tile key, are sorted by it and
   spilled to a temporary parquet file; per-cell coordinate sums are reduced with a dask
   ``groupby`` into centroids (the rule of :func:`~stfield.data.raster.estimate_centroids`).
3. *compact*: consecutive tiles are gathered from the spill files into output shards of about
   ``shard_rows`` molecules, one parquet row group per tile.

Everything is written under a temporary folder renamed onto ``out`` at the end, so a failure
leaves nothing behind. :class:`ShardStore` opens a store; reading tile ``i`` reads one row group
of one file. :class:`~stfield.data.raster.TileIndex` accepts a store in place of a DataFrame.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import __version__
from .._constants import TX_CELL, TX_GENE, TX_NUCLEUS, TX_X, TX_Y
from .._errors import StfieldInputError, input_error
from .._utils import atomic_path
from .._validate import check_transcripts
from ..io._common import (
    READ_ERRORS,
    as_categorical,
    as_path,
    control_mask,
    is_gz,
    is_parquet,
    require_columns,
    table_columns,
    to_cell_ids,
    unit_scale,
)
from ..io.cosmx import COSMX_PIXEL_SIZE_UM
from ..io.generic import _UNASSIGNED as GENERIC_UNASSIGNED
from ..io.generic import parse_column_map, resolve_transcript_columns
from ..io.xenium import _UNASSIGNED as XENIUM_UNASSIGNED
from ..io.xenium import XENIUM_MIN_QV
from .raster import RasterConfig, _assigned_mask, window_index

if TYPE_CHECKING:  # pragma: no cover
    from .raster import TileIndex

logger = logging.getLogger(__name__)

FORMAT = "stfield.tile_shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CENTROIDS = "centroids.parquet"
TILES_DIR = "tiles"
#: Platforms whose column layout :func:`write_tile_shards` knows.
PLATFORMS = ("xenium", "merscope", "cosmx", "generic")
_FORMAT_PLATFORM = {
    "xenium_transcripts": "xenium",
    "merscope_transcripts": "merscope",
    "cosmx_transcripts": "cosmx",
    "generic_transcripts": "generic",
}
_SPILL_ROW_GROUP = 1 << 16  # small enough that compaction reads little beyond its tile range
_MAX_TILES_PER_SHARD = 4096  # bounds a shard's footer (one row group per tile)
_MAX_OPEN_FILES = 32
_COLUMNS_FIX = (
    "pass platform= (xenium, merscope, cosmx) or a column map columns={'gene': COL, 'x': COL, "
    "'y': COL[, 'cell': COL]} (CLI: --platform, --columns gene=COL,x=COL,y=COL)"
)

PathLike = str | os.PathLike[str]


# ------------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class _Layout:
    """How one platform's raw columns become canonical molecules.

    ``columns`` maps roles to source columns: ``gene, x, y`` always; optionally ``cell``,
    ``nucleus`` (truthy = overlaps the nucleus), ``qv`` and ``is_gene`` (Xenium filters),
    ``fov`` (CosMx cell ids are per field of view).
    """

    platform: str
    columns: dict[str, str]
    scale: float = 1.0
    unassigned: tuple[Any, ...] = ()
    min_qv: float | None = None
    keep_controls: bool = False
    gene_order: tuple[str, ...] | None = None  # category order of an in-memory table

    def scan_columns(self) -> list[str]:
        """Source columns the first (extent) pass needs."""
        return self._cols(("gene", "x", "y", "qv", "is_gene"))

    def all_columns(self) -> list[str]:
        """Source columns the spill pass needs."""
        return self._cols(("gene", "x", "y", "qv", "is_gene", "cell", "fov", "nucleus"))

    def _cols(self, roles: Sequence[str]) -> list[str]:
        out: list[str] = []
        for role in roles:
            col = self.columns.get(role)
            if col is not None and col not in out:
                out.append(col)
        return out


def _optional(found: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    return {role: col for role, col in mapping.items() if col in found}


def _platform_layout(
    platform: str,
    found: Sequence[str],
    where: str,
    *,
    min_qv: float | None,
    keep_controls: bool,
    pixel_size_um: float | None,
) -> _Layout:
    """The layout of a known platform, after checking its required columns are present."""
    # Raw column names are those the platform readers in stfield.io read.
    if platform == "xenium":
        require_columns(found, ["feature_name", "x_location", "y_location"], where, _COLUMNS_FIX)
        cols = {"gene": "feature_name", "x": "x_location", "y": "y_location"}
        cols |= _optional(
            found,
            {"cell": "cell_id", "nucleus": "overlaps_nucleus", "qv": "qv", "is_gene": "is_gene"},
        )
        use_qv = "qv" in cols and min_qv is not None and min_qv > 0
        if not use_qv:
            cols.pop("qv", None)
        if keep_controls:
            cols.pop("is_gene", None)
        return _Layout(
            "xenium",
            cols,
            unassigned=XENIUM_UNASSIGNED,
            min_qv=float(min_qv) if use_qv else None,
            keep_controls=keep_controls,
        )
    if platform == "merscope":
        require_columns(found, ["gene", "global_x", "global_y"], where, _COLUMNS_FIX)
        cols = {"gene": "gene", "x": "global_x", "y": "global_y"}
        cols |= _optional(found, {"cell": "cell_id"})
        return _Layout("merscope", cols, unassigned=("-1",), keep_controls=keep_controls)
    if platform == "cosmx":
        needed = ["fov", "cell_ID", "x_global_px", "y_global_px", "target"]
        require_columns(found, needed, where, _COLUMNS_FIX)
        cols = {"gene": "target", "x": "x_global_px", "y": "y_global_px"}
        cols |= {"cell": "cell_ID", "fov": "fov"} | _optional(found, {"nucleus": "CellComp"})
        scale, _ = unit_scale(
            "px", COSMX_PIXEL_SIZE_UM if pixel_size_um is None else pixel_size_um, where
        )
        return _Layout("cosmx", cols, scale=scale, keep_controls=keep_controls)
    raise input_error(f"unknown platform {platform!r}", "platform", f"use one of {PLATFORMS}")


def _generic_layout(
    found: list[str],
    columns: Mapping[str, str] | None,
    where: str,
    *,
    keep_controls: bool,
    pixel_size_um: float | None,
) -> _Layout:
    """A generic table: the same column resolution and units as ``read_transcript_table``."""
    cmap = resolve_transcript_columns(found, columns, where)
    # a *_px coordinate column means pixels (needs pixel_size_um), as in read_transcript_table
    unit = "px" if cmap["x"].lower().endswith("_px") else None
    scale, _ = unit_scale(unit, pixel_size_um, where)
    cols = {k: cmap[k] for k in ("gene", "x", "y", "cell") if k in cmap}
    return _Layout(
        "generic", cols, scale=scale, unassigned=GENERIC_UNASSIGNED, keep_controls=keep_controls
    )


def _frame_layout(df: pd.DataFrame, columns: Mapping[str, str] | None) -> pd.DataFrame:
    """An in-memory canonical table, optionally renamed with ``columns`` first."""
    if columns:
        canon = {"gene": TX_GENE, "x": TX_X, "y": TX_Y, "cell": TX_CELL, "cell_id": TX_CELL}
        df = df.rename(columns={col: canon.get(key, key) for key, col in columns.items()})
    check_transcripts(df, "transcripts")
    return df


# ------------------------------------------------------------------------------- sources
@dataclass
class _Source:
    """Where molecules come from: files (parquet or CSV) or an in-memory DataFrame."""

    where: str
    files: list[Path] = field(default_factory=list)
    kind: str = "parquet"  # "parquet" | "csv" | "frame"
    frame: pd.DataFrame | None = None
    sep: str = ","
    n_comments: int = 0


def _is_table(path: Path) -> bool:
    name = path.name.lower()
    return is_parquet(path) or name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt.gz"))


def _platform_file(folder: Path) -> Path | None:
    """The transcripts file of a platform output folder (Xenium, MERSCOPE, CosMx), if any."""
    from ..io import cosmx, merscope, xenium
    from ..io._dispatch import detect_format

    try:
        fmt = detect_format(folder)
    except (StfieldInputError, FileNotFoundError):
        return None
    finders = {
        "xenium_cells": xenium.transcripts_file,
        "xenium_transcripts": xenium.transcripts_file,
        "merscope_cells": merscope.transcripts_file,
        "merscope_transcripts": merscope.transcripts_file,
        "cosmx_transcripts": cosmx.transcripts_file,
    }
    return finders[fmt](folder) if fmt in finders else None


def _resolve_source(source: Any) -> _Source:
    """Expand ``source`` (DataFrame, file, folder of parts, or glob) into a :class:`_Source`."""
    if isinstance(source, pd.DataFrame):
        return _Source("transcripts", kind="frame", frame=source)
    if not isinstance(source, str | os.PathLike):
        raise input_error(
            f"expected a path, a glob or a DataFrame, got {type(source).__name__}",
            "source",
            "pass a parquet/CSV file, a folder of parquet parts, a glob or a DataFrame",
        )
    text = os.fspath(source)
    if any(ch in text for ch in "*?["):
        pattern = Path(text).expanduser()
        files = sorted(p for p in pattern.parent.glob(pattern.name) if p.is_file())
        if not files:
            raise input_error("no file matches the pattern", text, "check the glob")
        where = text
    else:
        p = as_path(text)
        where = str(p)
        if p.is_file():
            files = [p]
        else:
            own = _platform_file(p)
            files = [own] if own is not None else _folder_tables(p)
    parquet = [f for f in files if is_parquet(f)]
    if parquet and len(parquet) != len(files):
        raise input_error(
            "mixes parquet and text tables", where, "keep one kind of table per input"
        )
    bad = [f.name for f in files if not _is_table(f)]
    if bad:
        raise input_error(
            f"not a parquet/CSV table: {bad[:5]}", where, "pass .parquet, .csv(.gz) or .tsv(.gz)"
        )
    if parquet:
        return _Source(where, files, "parquet")
    _, sep, n_comments = table_columns(files[0])
    return _Source(where, files, "csv", sep=sep, n_comments=n_comments)


def _folder_tables(folder: Path) -> list[Path]:
    """The parquet parts under ``folder`` (recursively: hive layouts), else its CSV files."""
    parts = sorted(p for p in folder.rglob("*") if p.is_file() and is_parquet(p))
    if not parts:
        parts = sorted(p for p in folder.iterdir() if p.is_file() and _is_table(p))
    if not parts:
        raise input_error(
            "no parquet or CSV table in the folder",
            str(folder),
            "pass a folder of parquet parts, a platform output folder or a table file",
        )
    return parts


def _layout_for(
    src: _Source,
    platform: str | None,
    columns: Mapping[str, str] | None,
    *,
    min_qv: float | None,
    keep_controls: bool,
    pixel_size_um: float | None,
) -> _Layout:
    if src.kind == "frame":
        df = src.frame
        assert df is not None
        cols = {"gene": TX_GENE, "x": TX_X, "y": TX_Y}
        cols |= _optional(list(df.columns), {"cell": TX_CELL, "nucleus": TX_NUCLEUS})
        gene = df[TX_GENE]
        order = None
        if isinstance(gene.dtype, pd.CategoricalDtype):  # TileIndex's default channel order
            order = tuple(str(c) for c in gene.cat.categories)
        # A DataFrame is already canonical: the reader that built it applied the filters.
        return _Layout("canonical", cols, keep_controls=True, gene_order=order)
    found = table_columns(src.files[0], src.sep if src.kind == "csv" else None)[0]
    where = str(src.files[0])
    if platform is not None:
        platform = _FORMAT_PLATFORM.get(platform, platform)
        if platform not in PLATFORMS:
            raise input_error(
                f"unknown platform {platform!r}", "platform", f"use one of {PLATFORMS}"
            )
    if columns is not None or platform == "generic":
        if platform not in (None, "generic"):
            raise input_error(
                f"a column map applies to generic tables, not to platform {platform!r}",
                "columns",
                "drop the column map or the platform",
            )
        opts = {"keep_controls": keep_controls, "pixel_size_um": pixel_size_um}
        return _generic_layout(found, columns, where, **opts)
    if platform is None:
        platform = _detect_platform(src.files[0])
    if platform == "generic":
        opts = {"keep_controls": keep_controls, "pixel_size_um": pixel_size_um}
        return _generic_layout(found, None, where, **opts)
    return _platform_layout(
        platform,
        found,
        where,
        min_qv=min_qv,
        keep_controls=keep_controls,
        pixel_size_um=pixel_size_um,
    )


def _detect_platform(path: Path) -> str:
    from ..io._dispatch import detect_format

    try:
        fmt = detect_format(path)
    except StfieldInputError:
        return "generic"
    return _FORMAT_PLATFORM.get(fmt, "generic")


# ----------------------------------------------------------------------------- dask I/O
def _dask() -> Any:
    try:
        import dask
        import dask.dataframe  # the dataframe extra (pandas, pyarrow glue) must be there too
    except ImportError:  # pragma: no cover - dask is installed where shards are used
        raise input_error(
            "dask is not installed", "write_tile_shards", "pip install 'dask[dataframe]'"
        ) from None
    return dask


def _csv_dtypes(layout: _Layout) -> dict[str, Any]:
    roles: dict[str, Any] = {
        "gene": str,
        "x": np.float64,
        "y": np.float64,
        "qv": np.float64,
        "is_gene": str,
        "cell": str,
        "fov": str,
        "nucleus": str,
    }
    if layout.platform == "cosmx":
        roles |= {"cell": np.int64, "fov": np.int64}
    if layout.platform == "xenium":
        roles["nucleus"] = np.float64
    return {col: roles[role] for role, col in layout.columns.items()}


def _read(src: _Source, layout: _Layout, columns: list[str], opts: _Options) -> Any:
    """A dask DataFrame of ``columns`` of the source (one partition per file or block)."""
    dd = _dask().dataframe
    if src.kind == "frame":
        assert src.frame is not None
        return dd.from_pandas(src.frame[columns], chunksize=opts.partition_rows, sort=False)
    files = [str(f) for f in src.files]
    if src.kind == "parquet":
        return dd.read_parquet(files, columns=columns, index=False, blocksize=opts.blocksize)
    dtype = {c: t for c, t in _csv_dtypes(layout).items() if c in columns}
    # gzip is not splittable and a comment header only sits in the first block: whole files.
    whole = any(is_gz(f) for f in src.files) or src.n_comments > 0
    return dd.read_csv(
        files,
        sep=src.sep,
        usecols=columns,
        dtype=dtype,
        skiprows=src.n_comments or None,
        blocksize=None if whole else opts.blocksize,
        keep_default_na=True,
    )


def _compute(opts: _Options, *collections: Any) -> tuple[Any, ...]:
    """Compute with a bounded scheduler.

    The synchronous scheduler (``workers=1``) holds exactly one partition at a time, which is
    what keeps peak memory flat; with ``workers > 1`` the threaded scheduler holds at most that
    many (pandas, numpy and pyarrow release the GIL in the heavy parts). A distributed or
    process scheduler would copy partitions between processes for no gain here.
    """
    dask = _dask()
    if opts.workers <= 1:
        return dask.compute(*collections, scheduler="synchronous")
    return dask.compute(*collections, scheduler="threads", num_workers=opts.workers)


def _run(opts: _Options, where: str, *collections: Any) -> tuple[Any, ...]:
    """:func:`_compute`, turning reader errors into a clear :class:`StfieldInputError`."""
    try:
        return _compute(opts, *collections)
    except StfieldInputError:
        raise
    except (ValueError, TypeError, KeyError, *READ_ERRORS) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise input_error(
            f"cannot read the table ({type(exc).__name__}: {msg})",
            where,
            "check that every part has the same columns and numeric coordinates",
        ) from exc


# --------------------------------------------------------------------- canonicalisation
@dataclass
class _Molecules:
    """Canonical molecules of one partition (after the platform's filters)."""

    gene: pd.Categorical
    x: np.ndarray
    y: np.ndarray
    cell: pd.Series | None = None
    nucleus: np.ndarray | None = None


def _numeric(pdf: pd.DataFrame, col: str, where: str) -> np.ndarray:
    s = pdf[col]
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        raise input_error(
            f"column {col!r} is not numeric (dtype {s.dtype})",
            where,
            "map x/y to the numeric coordinate columns (columns={'x': COL, 'y': COL})",
        )
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _truthy(s: pd.Series) -> np.ndarray:
    """Xenium's ``is_gene`` (bool in parquet, text in CSV); missing counts as true."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(True).to_numpy(dtype=bool)
    return (s.astype("string").str.lower() != "false").fillna(True).to_numpy(dtype=bool)


def _genes(s: pd.Series) -> pd.Categorical:
    """Gene names as a Categorical (factorised by pyarrow for arrow strings; bytes decoded)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return as_categorical(s.array)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return as_categorical(pd.Categorical.from_codes(codes, pd.Index(uniques, dtype=object)))


def _canonical(pdf: pd.DataFrame, layout: _Layout, where: str, cells: bool) -> _Molecules:
    """Apply ``layout`` to one raw partition: filters, gene names, µm coordinates, cell ids."""
    cols = layout.columns
    keep = np.ones(len(pdf), dtype=bool)
    if "qv" in cols and layout.min_qv is not None:
        keep &= _numeric(pdf, cols["qv"], where) >= layout.min_qv
    if "is_gene" in cols and not layout.keep_controls:
        keep &= _truthy(pdf[cols["is_gene"]])
    gene = _genes(pdf[cols["gene"]])
    if not layout.keep_controls:
        ctrl = np.flatnonzero(control_mask(gene.categories))
        if ctrl.size:
            keep &= ~np.isin(gene.codes, ctrl)
    if (gene.codes[keep] < 0).any():
        raise input_error(
            f"{int((gene.codes[keep] < 0).sum())} molecule(s) have no gene name",
            where,
            "drop those rows or map the gene column correctly (columns={'gene': ...})",
        )
    x = _numeric(pdf, cols["x"], where)
    y = _numeric(pdf, cols["y"], where)
    if layout.scale != 1.0:
        x, y = x * layout.scale, y * layout.scale
    all_rows = bool(keep.all())
    out = _Molecules(gene if all_rows else gene[keep], x[keep], y[keep])
    if cells and "cell" in cols:
        out.cell = _cell_ids(pdf if all_rows else pdf.loc[keep], layout)
    if cells and "nucleus" in cols:
        out.nucleus = _nucleus(pdf[cols["nucleus"]], layout)[keep]
    return out


def _cell_ids(pdf: pd.DataFrame, layout: _Layout) -> pd.Series:
    """Cell ids as the platform reader makes them (NA when unassigned)."""
    col = pdf[layout.columns["cell"]]
    if layout.platform == "canonical":
        return col.reset_index(drop=True)
    if layout.platform == "cosmx":  # cell_ID is unique within a field of view; 0 = none
        cell = col.to_numpy()
        joined = pc.binary_join_element_wise(
            pa.array(pdf[layout.columns["fov"]].to_numpy()).cast(pa.string()),
            pa.array(cell).cast(pa.string()),
            "_",
        )
        ids = pc.if_else(pa.array(cell == 0), pa.scalar(None, pa.string()), joined)
        return pd.Series(pd.arrays.ArrowStringArray(ids))
    return pd.Series(to_cell_ids(col, layout.unassigned))


def _nucleus(s: pd.Series, layout: _Layout) -> np.ndarray:
    if layout.platform == "cosmx":
        return (s.astype("string").str.lower() == "nuclear").fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).to_numpy(dtype=bool)
    return np.nan_to_num(s.to_numpy(dtype=np.float64, na_value=0.0)) > 0


# ---------------------------------------------------------------------------- pass 1: scan
_SCAN_META = pd.DataFrame(
    {
        "gene": pd.Series([], dtype=object),
        "n": pd.Series([], dtype=np.int64),
        "xmin": pd.Series([], dtype=np.float64),
        "ymin": pd.Series([], dtype=np.float64),
        "xmax": pd.Series([], dtype=np.float64),
        "ymax": pd.Series([], dtype=np.float64),
    }
)


def _scan_partition(pdf: pd.DataFrame, layout: _Layout, where: str) -> pd.DataFrame:
    """Per-gene molecule count and bounding box of one partition."""
    mol = _canonical(pdf, layout, where, cells=False)
    for name, v in (("x", mol.x), ("y", mol.y)):
        if not np.isfinite(v).all():
            raise input_error(
                f"{int((~np.isfinite(v)).sum())} molecule(s) with NaN/inf {name}",
                where,
                "drop those molecules before sharding",
            )
    if not len(mol.x):
        return _SCAN_META.copy()
    frame = pd.DataFrame({"c": mol.gene.codes, "x": mol.x, "y": mol.y})
    agg = frame.groupby("c", sort=True).agg(
        n=("x", "size"), xmin=("x", "min"), ymin=("y", "min"), xmax=("x", "max"), ymax=("y", "max")
    )
    names = np.asarray(mol.gene.categories.astype(str), dtype=object)[agg.index.to_numpy()]
    return pd.DataFrame({"gene": names, **{c: agg[c].to_numpy() for c in agg.columns}})


@dataclass(frozen=True)
class _Grid:
    """Channel genes and the global window grid, fixed before anything is written."""

    genes: tuple[str, ...]
    gene_counts: tuple[int, ...]
    x0: float
    y0: float
    tile_um: float
    nx: int
    ny: int

    def tile_keys(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Row-major key ``iy * nx + ix`` of each molecule's window."""
        # window_index is the in-memory TileIndex's own rule: both paths tile alike
        iy, ix = window_index(y, self.y0, self.tile_um), window_index(x, self.x0, self.tile_um)
        return iy * self.nx + ix


def _grid_from_scan(
    scan: pd.DataFrame, layout: _Layout, genes: Sequence[str] | None, tile_um: float, where: str
) -> _Grid:
    per_gene = scan.groupby("gene", sort=True).agg(
        n=("n", "sum"), xmin=("xmin", "min"), ymin=("ymin", "min"), xmax=("xmax", "max"),
        ymax=("ymax", "max"),
    )  # fmt: skip
    if per_gene["n"].sum() == 0:
        raise input_error(
            "the table has no molecules (after the platform's filters)",
            where,
            "check the file, min_qv and keep_controls",
        )
    observed = [str(g) for g in per_gene.index]
    if genes is None:
        if layout.gene_order is not None:
            seen = set(observed)
            genes = [g for g in layout.gene_order if g in seen]
        else:
            genes = sorted(observed)
    genes = [str(g) for g in genes]
    if not genes:
        raise input_error("no genes to shard", "genes", "give at least one gene")
    if len(set(genes)) != len(genes):
        raise input_error("duplicated gene names in genes=", "genes", "give each gene once")
    rows = per_gene.reindex(genes)
    counts = rows["n"].fillna(0).astype(np.int64).to_numpy()
    if counts.sum() == 0:
        raise input_error(
            "no molecule belongs to the requested genes",
            where,
            f"check that genes= matches the table's gene names (e.g. {observed[:5]})",
        )
    x0, y0 = float(rows["xmin"].min()), float(rows["ymin"].min())
    nx = math.floor((float(rows["xmax"].max()) - x0) / tile_um) + 2
    ny = math.floor((float(rows["ymax"].max()) - y0) / tile_um) + 2
    if nx * ny >= 2**62:
        raise input_error(
            f"tile_um={tile_um} makes a {nx} x {ny} window grid",
            "tile_um",
            "use a larger tile (the grid must have fewer than 2^62 windows)",
        )
    return _Grid(tuple(genes), tuple(int(c) for c in counts), x0, y0, float(tile_um), nx, ny)


# ---------------------------------------------------------------------------- pass 2: spill
_CELL_META = pd.DataFrame(
    {
        "cell_id": pd.Series([], dtype=object),
        "n": pd.Series([], dtype=np.int64),
        "sx": pd.Series([], dtype=np.float64),
        "sy": pd.Series([], dtype=np.float64),
        "n_nuc": pd.Series([], dtype=np.int64),
        "nx": pd.Series([], dtype=np.float64),
        "ny": pd.Series([], dtype=np.float64),
    }
)


def _gene_dtype(n_genes: int) -> Any:
    return np.int16 if n_genes <= np.iinfo(np.int16).max else np.int32


def _spill_partition(
    pdf: pd.DataFrame,
    layout: _Layout,
    grid: _Grid,
    spill: str,
    where: str,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Spill one partition sorted by tile key; return its per-cell coordinate sums."""
    mol = _canonical(pdf, layout, where, cells=True)
    sums = _cell_sums(mol)
    if partition_info is None:  # dask probing the function: no side effects
        return sums
    lookup = pd.Index(grid.genes).get_indexer(mol.gene.categories.astype(str))
    channel = lookup[mol.gene.codes] if len(mol.x) else np.zeros(0, np.int64)
    keep = channel >= 0
    x, y, channel = mol.x[keep], mol.y[keep], channel[keep]
    key = grid.tile_keys(x, y)
    order = np.argsort(key, kind="stable")  # stable: input order within a tile survives
    table = pa.table(
        {
            "tile": key[order],
            "gene": channel[order].astype(_gene_dtype(len(grid.genes))),
            "x": x[order],
            "y": y[order],
        }
    )
    stem = Path(spill) / f"part-{int(partition_info['number']):06d}"
    # scratch data, read once: compressing float coordinates costs more time than it saves
    pq.write_table(table, f"{stem}.parquet", row_group_size=_SPILL_ROW_GROUP, compression="none")
    keys, counts = np.unique(table.column("tile").to_numpy(), return_counts=True)
    np.save(f"{stem}.npy", np.stack([keys, counts]))
    return sums


def _cell_sums(mol: _Molecules) -> pd.DataFrame:
    """Per-cell molecule count and coordinate sums (all and nucleus-overlapping molecules).

    Sums are accumulated in row order by ``np.bincount``, exactly as
    :func:`~stfield.data.raster.estimate_centroids` does, so a one-partition table gives the
    very same centroids.
    """
    if mol.cell is None or not len(mol.x):
        return _CELL_META.copy()
    ids = mol.cell
    if not pd.api.types.is_string_dtype(ids.dtype) or isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(str)  # estimate_centroids groups by the ids' text
    codes, uniques = pd.factorize(ids)  # NA -> -1; arrow strings are hashed by pyarrow
    # the unassigned test runs on the few distinct ids, not on every molecule
    ok = _assigned_mask(pd.Series(uniques))
    assigned = codes >= 0
    assigned[assigned] = ok[codes[assigned]]
    if not assigned.any():
        return _CELL_META.copy()
    keep = np.flatnonzero(ok)
    codes = (np.cumsum(ok) - 1)[codes[assigned]]  # renumber the assigned ids 0..m-1
    uniques = uniques[keep]
    m = len(uniques)
    x, y = mol.x[assigned], mol.y[assigned]
    nuc = mol.nucleus[assigned] if mol.nucleus is not None else np.zeros(len(x), dtype=bool)
    return pd.DataFrame(
        {
            "cell_id": np.asarray(uniques.astype(str), dtype=object),
            "n": np.bincount(codes, minlength=m).astype(np.int64),
            "sx": np.bincount(codes, weights=x, minlength=m),
            "sy": np.bincount(codes, weights=y, minlength=m),
            "n_nuc": np.bincount(codes[nuc], minlength=m).astype(np.int64),
            "nx": np.bincount(codes[nuc], weights=x[nuc], minlength=m),
            "ny": np.bincount(codes[nuc], weights=y[nuc], minlength=m),
        }
    )


def _centroids(sums: pd.DataFrame) -> pd.DataFrame:
    """Centroids from the reduced sums: nucleus mean where available, else the mean of all."""
    sums = sums.sort_index()
    n = sums["n"].to_numpy(np.float64)
    cx, cy = sums["sx"].to_numpy() / n, sums["sy"].to_numpy() / n
    n_nuc = sums["n_nuc"].to_numpy(np.float64)
    has = n_nuc > 0
    cx[has] = sums["nx"].to_numpy()[has] / n_nuc[has]
    cy[has] = sums["ny"].to_numpy()[has] / n_nuc[has]
    return pd.DataFrame(
        {
            TX_CELL: np.asarray(sums.index.astype(str), dtype=object),
            "x": cx,
            "y": cy,
            "n_molecules": sums["n"].to_numpy(np.int64),
            "source": np.where(has, "nucleus", "all").astype(object),
        }
    )


# -------------------------------------------------------------------------- pass 3: compact
@dataclass(frozen=True)
class _Part:
    """One spill file and the tile keys it holds."""

    path: str
    keys: np.ndarray

    def holds(self, lo: int, hi: int) -> bool:
        i = np.searchsorted(self.keys, lo)
        return bool(i < len(self.keys) and self.keys[i] <= hi)

    def read(self, lo: int, hi: int) -> pa.Table:
        """Rows with ``lo <= tile <= hi``, in file order, reading only overlapping row groups."""
        pf = pq.ParquetFile(self.path)
        tile_col = pf.schema_arrow.get_field_index("tile")
        groups = []
        for g in range(pf.metadata.num_row_groups):
            stats = pf.metadata.row_group(g).column(tile_col).statistics
            if stats is None or not stats.has_min_max or (stats.max >= lo and stats.min <= hi):
                groups.append(g)
        table = pf.read_row_groups(groups, use_threads=False)
        tile = table.column("tile")
        return table.filter(pc.and_(pc.greater_equal(tile, lo), pc.less_equal(tile, hi)))


def _pack(counts: np.ndarray, shard_rows: int) -> list[tuple[int, int]]:
    """Split consecutive tiles into ``[a, b)`` runs of about ``shard_rows`` molecules."""
    runs, a, rows = [], 0, 0
    for j, c in enumerate(counts):
        if j > a and (rows + c > shard_rows or j - a >= _MAX_TILES_PER_SHARD):
            runs.append((a, j))
            a, rows = j, 0
        rows += int(c)
    runs.append((a, len(counts)))
    return runs


def _write_shard(path: str, parts: list[_Part], keys: np.ndarray, counts: np.ndarray) -> int:
    """Gather tiles ``keys`` from the spill files into ``path``, one row group per tile."""
    lo, hi = int(keys[0]), int(keys[-1])
    tables = [p.read(lo, hi) for p in parts if p.holds(lo, hi)]
    table = pa.concat_tables(tables)
    # Parts are concatenated in input order and the sort is stable: within a tile, molecules
    # keep the order of the input table.
    order = np.argsort(table.column("tile").to_numpy(), kind="stable")
    table = table.take(pa.array(order)).drop_columns(["tile"])
    if table.num_rows != int(counts.sum()):  # pragma: no cover - internal consistency
        raise RuntimeError(f"{path}: {table.num_rows} rows for {int(counts.sum())} molecules")
    start = 0
    with pq.ParquetWriter(path, table.schema, write_statistics=False) as writer:
        for c in counts:
            writer.write_table(table.slice(start, int(c)), row_group_size=max(int(c), 1))
            start += int(c)
    return int(table.num_rows)


# -------------------------------------------------------------------------------- writer
@dataclass(frozen=True)
class _Options:
    workers: int = 1
    partition_rows: int = 2_000_000
    blocksize: str | int = "256MiB"
    shard_rows: int = 2_000_000


def _tile_um(
    tile_um: float | RasterConfig | None, config: RasterConfig | None
) -> tuple[float, dict[str, Any] | None]:
    """``(tile_um, raster config to record or None)`` from either argument."""
    if isinstance(tile_um, RasterConfig):
        tile_um, config = None, tile_um
    if config is not None:
        if tile_um is not None and not math.isclose(float(tile_um), config.tile_um):
            raise input_error(
                f"tile_um={tile_um} disagrees with the config's {config.tile_um} µm",
                "tile_um",
                "give tile_um or config, not both",
            )
        return config.tile_um, config.to_dict()
    if tile_um is None:
        raise input_error(
            "no tile size", "tile_um", "pass tile_um=<µm> or config=RasterConfig(...)"
        )
    try:
        value = float(tile_um)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise input_error(f"tile_um must be a positive number of µm, got {tile_um!r}", "tile_um")
    return value, None


def write_tile_shards(
    source: PathLike | pd.DataFrame,
    out: PathLike,
    tile_um: float | RasterConfig | None = None,
    *,
    config: RasterConfig | None = None,
    platform: str | None = None,
    columns: Mapping[str, str] | str | None = None,
    genes: Sequence[str] | None = None,
    min_qv: float | None = XENIUM_MIN_QV,
    keep_controls: bool = False,
    pixel_size_um: float | None = None,
    workers: int = 1,
    partition_rows: int = 2_000_000,
    blocksize: str | int = "256MiB",
    shard_rows: int = 2_000_000,
    overwrite: bool = False,
) -> ShardStore:
    """Write a transcripts table as per-tile parquet shards (out of core, with dask).

    Parameters
    ----------
    source
        A parquet file, a folder of parquet parts (hive layouts too), a platform output folder
        (Xenium, MERSCOPE, CosMx), a CSV/TSV(.gz) file or a glob of them, or an in-memory
        canonical transcripts DataFrame (``gene, x, y[, cell_id, overlaps_nucleus]``, µm;
        taken as already filtered).
    out
        The store folder to create (written under a temporary name, then renamed).
    tile_um
        Tile side in µm (or a :class:`~stfield.data.raster.RasterConfig`); windows are
        non-overlapping and start at the minimum x/y of the kept molecules.
    config
        Alternatively, the raster config whose ``tile_um`` to use; its pixel size and tile are
        recorded so :meth:`ShardStore.tile_index` needs no config.
    platform
        ``"xenium"``, ``"merscope"``, ``"cosmx"`` or ``"generic"`` (``io`` format names work
        too); detected from the first file's columns when omitted.
    columns
        Column map of a generic table, ``{"gene": COL, "x": COL, "y": COL[, "cell": COL]}`` or
        ``"gene=COL,x=COL,y=COL"`` (as :func:`stfield.io.read_transcripts`).
    genes
        Channel genes in order; molecules of other genes are not written (cell centroids
        still use them, as in :class:`~stfield.data.raster.TileIndex`). Default: the observed
        genes, sorted (category order for a categorical DataFrame column).
    min_qv, keep_controls, pixel_size_um
        As in the platform readers: Xenium quality threshold, keeping control probes, µm per
        coordinate pixel (CosMx, ``*_px`` generic columns).
    workers
        1: dask's synchronous scheduler, one partition in memory at a time; more: threads.
    partition_rows, blocksize
        Partition size of an in-memory table (rows) and of splittable files (bytes).
    shard_rows
        Target molecules per output shard file.
    overwrite
        Replace an existing ``out``.

    Returns
    -------
    ShardStore
        The written store.
    """
    t0 = time.perf_counter()
    tile_size, raster = _tile_um(tile_um, config)
    opts = _check_options(workers, partition_rows, blocksize, shard_rows)
    if isinstance(columns, str):
        columns = parse_column_map(columns)
    out = Path(os.fspath(out)).expanduser()
    if out.exists() and not overwrite:
        raise input_error(
            "the output already exists",
            str(out),
            "pass overwrite=True (CLI: --overwrite) or another --out",
        )
    src = _resolve_source(source)
    if src.kind == "frame":
        assert src.frame is not None
        src.frame = _frame_layout(src.frame, columns)
        columns = None
    layout = _layout_for(
        src,
        platform,
        columns,
        min_qv=min_qv,
        keep_controls=keep_controls,
        pixel_size_um=pixel_size_um,
    )
    scan = _read(src, layout, layout.scan_columns(), opts).map_partitions(
        _scan_partition, layout, src.where, meta=_SCAN_META, enforce_metadata=False
    )
    (scan_df,) = _run(opts, src.where, scan)
    grid = _grid_from_scan(scan_df, layout, genes, tile_size, src.where)
    timings = {"scan": time.perf_counter() - t0}
    logger.info("scan: %d genes, origin (%.2f, %.2f) µm", len(grid.genes), grid.x0, grid.y0)
    with atomic_path(out) as tmp:
        spill = tmp / "_spill"
        (tmp / TILES_DIR).mkdir(parents=True)
        spill.mkdir()
        cells = _spill(src, layout, grid, spill, opts)
        timings["spill"] = time.perf_counter() - t0 - sum(timings.values())
        tiles = _compact(spill, tmp / TILES_DIR, grid, opts)
        timings["compact"] = time.perf_counter() - t0 - sum(timings.values())
        cent = _centroids(cells)
        pq.write_table(pa.Table.from_pandas(cent, preserve_index=False), tmp / CENTROIDS)
        manifest = _manifest(src, layout, grid, tiles, len(cent), raster)
        manifest["seconds"] = round(time.perf_counter() - t0, 3)
        manifest["timings"] = {k: round(v, 3) for k, v in timings.items()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(spill)  # scratch: the store itself never references it
    logger.info("wrote %s in %.1f s", out, time.perf_counter() - t0)
    return ShardStore(out)


def _check_options(workers: int, partition_rows: int, blocksize: Any, shard_rows: int) -> _Options:
    for name, value in (
        ("workers", workers),
        ("partition_rows", partition_rows),
        ("shard_rows", shard_rows),
    ):
        if not isinstance(value, int | np.integer) or value < 1:
            raise input_error(f"{name} must be a positive integer, got {value!r}", name)
    return _Options(int(workers), int(partition_rows), blocksize, int(shard_rows))


def _spill(src: _Source, layout: _Layout, grid: _Grid, spill: Path, opts: _Options) -> pd.DataFrame:
    """Pass 2: spill every partition by tile; reduce the per-cell sums with dask."""
    parts = _read(src, layout, layout.all_columns(), opts).map_partitions(
        _spill_partition, layout, grid, str(spill), src.where, meta=_CELL_META,
        enforce_metadata=False,
    )  # fmt: skip
    sums = parts.groupby("cell_id").sum(split_every=8)
    (cells,) = _run(opts, src.where, sums)
    return cells


def _compact(spill: Path, tiles_dir: Path, grid: _Grid, opts: _Options) -> dict[str, np.ndarray]:
    """Pass 3: gather tiles into shards; return the per-tile index."""
    dask = _dask()
    parts, keys, counts = _spill_index(spill)
    runs = _pack(counts, opts.shard_rows)
    tasks = [
        dask.delayed(_write_shard)(str(tiles_dir / _shard_name(s)), parts, keys[a:b], counts[a:b])
        for s, (a, b) in enumerate(runs)
    ]
    written = _compute(opts, *tasks)
    if int(sum(written)) != int(counts.sum()):  # pragma: no cover - internal consistency
        raise RuntimeError("shards do not hold every spilled molecule")
    shard = np.concatenate([np.full(b - a, s, np.int64) for s, (a, b) in enumerate(runs)])
    row_group = np.concatenate([np.arange(b - a, dtype=np.int64) for a, b in runs])
    iy, ix = np.divmod(keys, grid.nx)
    return {"ix": ix, "iy": iy, "n_molecules": counts, "shard": shard, "row_group": row_group}


def _spill_index(spill: Path) -> tuple[list[_Part], np.ndarray, np.ndarray]:
    """Spill files in partition order and the total molecules per tile key (sorted)."""
    parts, all_keys, all_counts = [], [], []
    for npy in sorted(spill.glob("part-*.npy")):
        keys, counts = np.load(npy)
        if keys.size:
            parts.append(_Part(str(npy.with_suffix(".parquet")), keys))
            all_keys.append(keys)
            all_counts.append(counts)
    if not parts:
        raise input_error(
            "no molecule was written", str(spill), "check the gene list and the filters"
        )
    keys, inverse = np.unique(np.concatenate(all_keys), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate(all_counts)).astype(np.int64)
    return parts, keys, counts


def _shard_name(s: int) -> str:
    return f"shard-{s:05d}.parquet"


def _manifest(
    src: _Source,
    layout: _Layout,
    grid: _Grid,
    tiles: dict[str, np.ndarray],
    n_cells: int,
    raster: dict[str, Any] | None,
) -> dict[str, Any]:
    n_shards = int(tiles["shard"].max()) + 1
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "stfield": __version__,
        "source": src.where,
        "platform": layout.platform,
        "columns": dict(layout.columns),
        "coordinate_scale_um": layout.scale,
        "filters": {"min_qv": layout.min_qv, "keep_controls": layout.keep_controls},
        "genes": list(grid.genes),
        "gene_counts": list(grid.gene_counts),
        "origin": [grid.x0, grid.y0],
        "tile_um": grid.tile_um,
        "raster": raster,
        "n_molecules": int(tiles["n_molecules"].sum()),
        "n_tiles": len(tiles["ix"]),
        "n_cells": int(n_cells),
        "centroids": CENTROIDS,
        "shards": [f"{TILES_DIR}/{_shard_name(s)}" for s in range(n_shards)],
        "tiles": {k: v.astype(np.int64).tolist() for k, v in tiles.items()},
    }


# ------------------------------------------------------------------------------- reader
class ShardStore:
    """A shard store written by :func:`write_tile_shards`, read one tile at a time.

    Parameters
    ----------
    path
        The store folder (holding ``manifest.json``).

    Attributes
    ----------
    genes
        Channel genes, in order.
    tile_um, origin
        Window side (µm) and the grid origin ``(x0, y0)``; tile ``i`` covers
        ``[origins[i], origins[i] + tile_um)`` on both axes.
    origins, tile_molecules
        ``(n_tiles, 2)`` window origins (row-major order) and molecules per tile.
    manifest
        The parsed ``manifest.json``.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = as_path(path)
        self.manifest = _load_manifest(self.path)
        m = self.manifest
        self.genes: list[str] = [str(g) for g in m["genes"]]
        self.gene_counts = np.asarray(m["gene_counts"], dtype=np.int64)
        self.tile_um = float(m["tile_um"])
        self.origin = (float(m["origin"][0]), float(m["origin"][1]))
        tiles = m["tiles"]
        self.tile_ix = np.asarray(tiles["ix"], dtype=np.int64)
        self.tile_iy = np.asarray(tiles["iy"], dtype=np.int64)
        self.tile_molecules = np.asarray(tiles["n_molecules"], dtype=np.int64)
        self._shard = np.asarray(tiles["shard"], dtype=np.int64)
        self._row_group = np.asarray(tiles["row_group"], dtype=np.int64)
        # the same expression as TileIndex's window origins, so both agree to the bit
        self.origins = np.stack(
            [
                self.origin[0] + self.tile_ix * self.tile_um,
                self.origin[1] + self.tile_iy * self.tile_um,
            ],
            axis=1,
        ).astype(np.float64)
        self._files: OrderedDict[int, pq.ParquetFile] = OrderedDict()
        self._centroids: pd.DataFrame | None = None

    def __getstate__(self) -> dict[str, Any]:
        # open file handles do not travel to other processes (spawned data-loading workers)
        return {**self.__dict__, "_files": OrderedDict()}

    @staticmethod
    def is_store(path: PathLike) -> bool:
        """Whether ``path`` is a folder holding a shard-store manifest."""
        p = Path(os.fspath(path))
        return p.is_dir() and (p / MANIFEST).is_file()

    def __len__(self) -> int:
        return int(self.tile_ix.size)

    def __repr__(self) -> str:
        return (
            f"ShardStore({str(self.path)!r}: {self.n_molecules:,} molecules, {len(self)} tiles of "
            f"{self.tile_um:g} µm, {len(self.genes)} genes, {self.manifest['n_cells']:,} cells)"
        )

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def n_molecules(self) -> int:
        return int(self.manifest["n_molecules"])

    def _file(self, shard: int) -> pq.ParquetFile:
        """Open shard files are kept (LRU) so their footers are parsed once."""
        pf = self._files.pop(shard, None)
        if pf is None:
            path = self.path / self.manifest["shards"][shard]
            try:
                pf = pq.ParquetFile(path)
            except READ_ERRORS as exc:
                raise input_error(
                    f"cannot read the shard (missing or corrupt?): {exc}",
                    str(path),
                    "rewrite the store with write_tile_shards / stfield shard",
                ) from None
            if len(self._files) >= _MAX_OPEN_FILES:
                self._files.popitem(last=False)[1].close()
        self._files[shard] = pf
        return pf

    def molecules(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(gene_index, x, y)`` of tile ``i`` (one parquet row group), in input order."""
        if not 0 <= int(i) < len(self):
            raise IndexError(f"tile {i} out of range (0..{len(self) - 1})")
        pf = self._file(int(self._shard[i]))
        table = pf.read_row_group(int(self._row_group[i]), use_threads=False)
        return (
            table.column("gene").to_numpy().astype(np.int64),
            table.column("x").to_numpy(),
            table.column("y").to_numpy(),
        )

    @property
    def centroids(self) -> pd.DataFrame:
        """Cell centroids (index ``cell_id``; ``x, y, n_molecules, source``), read on first use."""
        if self._centroids is None:
            try:
                df = pq.read_table(self.path / CENTROIDS).to_pandas()
            except READ_ERRORS as exc:
                raise input_error(
                    f"cannot read the centroids: {exc}",
                    str(self.path / CENTROIDS),
                    "rewrite the store",
                ) from None
            self._centroids = df.set_index(pd.Index(df.pop(TX_CELL).astype(str), name=TX_CELL))
        return self._centroids

    def raster_config(self, **overrides: Any) -> RasterConfig:
        """The :class:`RasterConfig` recorded at writing time, updated with ``overrides``.

        Changing ``pixel_size`` alone rescales ``tile`` so that the tile still spans the
        store's ``tile_um``.
        """
        fields = dict(self.manifest.get("raster") or {})
        if "pixel_size" in overrides and "tile" not in overrides:
            fields.pop("tile", None)
        fields |= overrides
        if fields.get("pixel_size") is None:
            raise input_error(
                "the store records no raster config",
                str(self.path),
                "pass a RasterConfig whose tile * pixel_size equals the store's "
                f"{self.tile_um:g} µm (e.g. pixel_size=1, tile={round(self.tile_um)})",
            )
        if fields.get("tile") is None:
            fields["tile"] = round(self.tile_um / float(fields["pixel_size"]))
        return RasterConfig.from_dict(fields)

    def tile_index(self, config: RasterConfig | None = None, **kwargs: Any) -> TileIndex:
        """A :class:`~stfield.data.raster.TileIndex` rasterising this store's tiles."""
        from .raster import TileIndex

        return TileIndex(self, config, **kwargs)

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        keys = ("n_molecules", "n_tiles", "n_cells", "tile_um", "origin", "platform", "source")
        return {"path": str(self.path), "n_genes": self.n_genes, **{k: m[k] for k in keys}}


def _load_manifest(path: Path) -> dict[str, Any]:
    mpath = path / MANIFEST
    fix = "pass a folder written by write_tile_shards (CLI: stfield shard)"
    if not mpath.is_file():
        raise input_error(f"not a shard store (no {MANIFEST})", str(path), fix)
    try:
        m = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise input_error(f"unreadable manifest ({exc})", str(mpath), fix) from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise input_error("not a tile-shard manifest", str(mpath), fix)
    if int(m.get("version", -1)) > FORMAT_VERSION:
        raise input_error(
            f"store format version {m.get('version')} is newer than this stfield's "
            f"{FORMAT_VERSION}",
            str(mpath),
            "upgrade stfield or rewrite the store",
        )
    return m


__all__ = ["FORMAT_VERSION", "PLATFORMS", "ShardStore", "write_tile_shards"]
