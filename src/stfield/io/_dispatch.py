"""Format detection and the ``read`` / ``read_transcripts`` entry points."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from .._errors import input_error
from ._common import PathLike, as_path, describe_folder, pick_column, table_columns
from .cosmx import read_cosmx_transcripts
from .generic import (
    MATRIX_X,
    MATRIX_Y,
    TRANSCRIPT_ALIASES,
    read_matrix_table,
    read_transcript_table,
)
from .h5ad import read_h5ad
from .merscope import read_merscope, read_merscope_transcripts
from .slideseq import read_slideseq
from .stereoseq import COUNT_ALIASES, read_stereoseq_gem
from .visium import read_visium, read_visium_hd
from .xenium import read_xenium, read_xenium_transcripts

#: Readers returning an AnnData, by format name.
MATRIX_READERS: dict[str, Callable[..., AnnData]] = {
    "h5ad": read_h5ad,
    "visium": read_visium,
    "visium_hd": read_visium_hd,
    "stereoseq_gem": read_stereoseq_gem,
    "slideseq": read_slideseq,
    "merscope_cells": read_merscope,
    "xenium_cells": read_xenium,
    "generic_matrix": read_matrix_table,
}
#: Readers returning a transcripts DataFrame, by format name.
TRANSCRIPT_READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "xenium_transcripts": read_xenium_transcripts,
    "merscope_transcripts": read_merscope_transcripts,
    "cosmx_transcripts": read_cosmx_transcripts,
    "generic_transcripts": read_transcript_table,
}
#: Every format name understood by :func:`read`.
FORMATS: tuple[str, ...] = (*MATRIX_READERS, *TRANSCRIPT_READERS)
#: Matrix formats whose output folder also holds molecules, and the molecule format.
_TRANSCRIPTS_OF = {"xenium_cells": "xenium_transcripts", "merscope_cells": "merscope_transcripts"}

_SUPPORTED = (
    "h5ad (.h5ad); visium (Space Ranger outs/ with spatial/); visium_hd (outs/binned_outputs/"
    "square_XXXum/); stereoseq_gem (.gem, .gem.gz); slideseq (*.digital_expression.txt.gz + "
    "bead locations); merscope_cells (cell_by_gene.csv + cell_metadata.csv); xenium_cells "
    "(cell_feature_matrix.h5 + cells.parquet); generic_matrix (CSV/TSV/parquet + coordinates); "
    "xenium_transcripts (transcripts.parquet/.csv.gz); merscope_transcripts "
    "(detected_transcripts.csv); cosmx_transcripts (*_tx_file.csv.gz); generic_transcripts "
    "(CSV/TSV/parquet with gene, x, y columns)"
)
_TABLE_RE = re.compile(r"\.(csv|tsv|txt|parquet|pq)(\.gz)?$", re.IGNORECASE)
_SQUARE_RE = re.compile(r"^square_\d{3}um$")


def _unknown(p: Path, found: str) -> Exception:
    return input_error(
        f"cannot tell the format ({found})",
        str(p),
        f"pass format=<name>; supported formats: {_SUPPORTED}",
    )


def _sniff_table(p: Path) -> str:
    cols = table_columns(p)[0]
    has = set(cols)
    if {"feature_name", "x_location", "y_location"} <= has:
        return "xenium_transcripts"
    if {"gene", "global_x", "global_y"} <= has:
        return "merscope_transcripts"
    if {"target", "x_global_px", "y_global_px"} <= has:
        return "cosmx_transcripts"
    if {"x", "y"} <= has and pick_column(cols, ("geneID",)) and pick_column(cols, COUNT_ALIASES):
        return "stereoseq_gem"
    if cols and cols[0] == "GENE" and not is_table_with_xy(cols):
        return "slideseq"
    if all(pick_column(cols, TRANSCRIPT_ALIASES[k]) for k in ("gene", "x", "y")):
        return "generic_transcripts"
    if len(cols) >= 2:
        return "generic_matrix"
    raise _unknown(p, f"a table with columns {cols[:20]}")


def is_table_with_xy(cols: list[str]) -> bool:
    return pick_column(cols, MATRIX_X) is not None and pick_column(cols, MATRIX_Y) is not None


def _detect_file(p: Path) -> str:
    name = p.name.lower()
    if name.endswith(".h5ad"):
        return "h5ad"
    if name in {"filtered_feature_bc_matrix.h5", "raw_feature_bc_matrix.h5"}:
        fmt = _detect_folder(p.parent, strict=False)
        if fmt in {"visium", "visium_hd"}:
            return fmt
        raise _unknown(p, "a 10x matrix without spatial/ next to it")
    if name == "cell_feature_matrix.h5":
        return "xenium_cells"
    if name.endswith((".gem", ".gem.gz")):
        return "stereoseq_gem"
    if "digital_expression.txt" in name:
        return "slideseq"
    if "cell_by_gene" in name and name.endswith(".csv"):
        return "merscope_cells"
    if name in {"cells.parquet", "cells.csv.gz", "cells.csv"} and (
        (p.parent / "cell_feature_matrix.h5").exists()
        or (p.parent / "cell_feature_matrix").is_dir()
    ):
        return "xenium_cells"
    if name.endswith((".h5", ".hdf5")):
        raise _unknown(p, "an HDF5 file that is not a known 10x matrix")
    if _TABLE_RE.search(name):
        return _sniff_table(p)
    raise _unknown(p, f"a file with an unknown extension ({p.suffix or 'none'})")


def _detect_folder(p: Path, strict: bool = True) -> str:
    root = p / "outs" if (p / "outs").is_dir() and not (p / "spatial").is_dir() else p
    if (
        _SQUARE_RE.match(root.name)
        or root.name == "binned_outputs"
        or (root / "binned_outputs").is_dir()
    ):
        return "visium_hd"
    if (root / "spatial").is_dir() and any(
        (root / n).exists()
        for n in (
            "filtered_feature_bc_matrix.h5",
            "filtered_feature_bc_matrix",
            "raw_feature_bc_matrix.h5",
        )
    ):
        return "visium"
    if p.name == "cell_feature_matrix" and any(
        (p.parent / n).is_file() for n in ("cells.parquet", "cells.csv.gz", "cells.csv")
    ):
        return "xenium_cells"
    if p.name in {"filtered_feature_bc_matrix", "raw_feature_bc_matrix"}:
        parent = _detect_folder(p.parent, strict=False)
        if parent in {"visium", "visium_hd"}:
            return parent
    has_matrix = (p / "cell_feature_matrix.h5").is_file() or (p / "cell_feature_matrix").is_dir()
    if has_matrix and any(
        (p / n).is_file() for n in ("cells.parquet", "cells.csv.gz", "cells.csv")
    ):
        return "xenium_cells"
    if any(p.glob("*cell_by_gene*.csv")):
        return "merscope_cells"
    if any(p.glob("*digital_expression.txt*")):
        return "slideseq"
    if any((p / n).is_file() for n in ("transcripts.parquet", "transcripts.csv.gz")):
        return "xenium_transcripts"
    if any(p.glob("*detected_transcripts*.csv")):
        return "merscope_transcripts"
    if any(p.glob("*_tx_file.csv*")):
        return "cosmx_transcripts"
    if any(p.glob("*.gem")) or any(p.glob("*.gem.gz")):
        return "stereoseq_gem"
    if not strict:
        return ""
    raise _unknown(p, f"a folder holding: {describe_folder(p)}")


def detect_format(path: PathLike) -> str:
    """Name the format of a file or platform output folder.

    Parameters
    ----------
    path
        A file (``.h5ad``, ``.gem.gz``, ``transcripts.parquet``, a CSV, ...) or an output folder
        (Space Ranger ``outs``, Xenium output, MERSCOPE region, ...).

    Returns
    -------
    str
        One of :data:`FORMATS`: ``"h5ad"``, ``"visium"``, ``"visium_hd"``, ``"stereoseq_gem"``,
        ``"slideseq"``, ``"merscope_cells"``, ``"xenium_cells"``, ``"generic_matrix"``,
        ``"xenium_transcripts"``, ``"merscope_transcripts"``, ``"cosmx_transcripts"``,
        ``"generic_transcripts"``.
    """
    p = as_path(path)
    return _detect_folder(p) if p.is_dir() else _detect_file(p)


def _check_format(fmt: str, allowed: Mapping[str, Any], where: str) -> None:
    if fmt not in allowed:
        raise input_error(f"unknown format {fmt!r}", where, f"use one of {', '.join(allowed)}")


def _call(reader: Callable[..., Any], path: Path, fmt: str, opts: dict[str, Any]) -> Any:
    params = inspect.signature(reader).parameters
    accepted = [n for n in params if n != "path"]
    bad = [k for k in opts if k not in params or k == "path"]
    if bad:
        raise input_error(
            f"option(s) {bad} do not apply to format {fmt!r}",
            str(path),
            f"{reader.__name__} accepts: {', '.join(accepted)}",
        )
    return reader(path, **opts)


def read(path: PathLike, format: str | None = None, **opts: Any) -> AnnData | pd.DataFrame:
    """Read any supported file or output folder.

    Parameters
    ----------
    path
        File or folder; see :func:`detect_format`.
    format
        Format name (skips detection); one of :data:`FORMATS`.
    **opts
        Options of the format's reader (e.g. ``bin_size`` for ``stereoseq_gem``,
        ``coordinates`` for ``generic_matrix``, ``keep_controls``).

    Returns
    -------
    AnnData or pandas.DataFrame
        AnnData for matrix formats; a transcripts DataFrame for molecule formats.
    """
    p = as_path(path)
    fmt = format if format is not None else detect_format(p)
    if opts.get("columns") is not None and fmt == "generic_matrix":
        fmt = "generic_transcripts"  # a column map only makes sense for molecule tables
    _check_format(fmt, {**MATRIX_READERS, **TRANSCRIPT_READERS}, str(p))
    reader = MATRIX_READERS.get(fmt) or TRANSCRIPT_READERS[fmt]
    return _call(reader, p, fmt, opts)


def read_transcripts(
    path: PathLike,
    format: str | None = None,
    columns: Mapping[str, str] | None = None,
    keep_controls: bool = False,
    **opts: Any,
) -> pd.DataFrame:
    """Read a molecule table into the transcripts contract.

    Parameters
    ----------
    path
        A transcripts file, or an output folder holding one (Xenium, MERSCOPE, CosMx).
    format
        ``"xenium_transcripts"``, ``"merscope_transcripts"``, ``"cosmx_transcripts"`` or
        ``"generic_transcripts"``; detected when omitted.
    columns
        Column map for generic tables, ``{"gene": COL, "x": COL, "y": COL[, "z", "cell"]}``
        (see :func:`parse_column_map`); implies ``format="generic_transcripts"``.
    keep_controls
        Keep control probes / blank codewords.
    **opts
        Options of the format's reader (``min_qv``, ``pixel_size_um``, ``z_step_um``, ...).

    Returns
    -------
    pandas.DataFrame
        ``gene`` (categorical), ``x, y, z`` (float64 µm), ``cell_id`` (string, NA when
        unassigned), plus ``fov``/``overlaps_nucleus`` where the platform gives them;
        ``df.attrs["stfield"]`` records format, source and unit.
    """
    p = as_path(path)
    if format is None:
        if columns is not None:
            format = "generic_transcripts"
        else:
            format = detect_format(p)
            if format in _TRANSCRIPTS_OF and p.is_dir():
                format = _TRANSCRIPTS_OF[format]
            elif format == "generic_matrix":  # a table without recognised molecule columns
                format = "generic_transcripts"
            elif format in MATRIX_READERS:
                raise input_error(
                    f"this is a {format!r} count matrix, not a molecule table",
                    str(p),
                    "use stfield.io.read(path) for count matrices, or pass a transcripts file "
                    "(transcripts.parquet, detected_transcripts.csv, *_tx_file.csv.gz, ...)",
                )
    _check_format(format, TRANSCRIPT_READERS, str(p))
    if columns is not None:
        if format != "generic_transcripts":
            raise input_error(
                f"columns= applies to generic tables, not to format {format!r}",
                str(p),
                "drop columns= or pass format='generic_transcripts'",
            )
        opts["columns"] = columns
    opts["keep_controls"] = keep_controls
    return _call(TRANSCRIPT_READERS[format], p, format, opts)
