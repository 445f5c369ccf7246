"""Helpers shared by the readers: paths, table access, units, and assembling the outputs.

Every reader funnels its result through :func:`build_adata` (matrix formats) or
:func:`build_transcripts` (molecule tables), so the output contract lives in one place:

* AnnData: ``.X`` CSR float32, unique obs/var names, ``obsm["spatial"]`` float64 in µm,
  ``uns["stfield"] = {"spatial_unit": "um", "format", "source", "pixel_size_um"?}``;
* transcripts: ``gene`` (categorical), ``x, y, z`` (float64 µm), ``cell_id`` (string, NA when
  unassigned), optional ``fov``/``overlaps_nucleus``, and ``df.attrs["stfield"]``.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp
from anndata import AnnData

from .._constants import (
    CONTROL_PATTERN,
    SPATIAL_KEY,
    SPATIAL_UNIT,
    TX_CELL,
    TX_FOV,
    TX_GENE,
    TX_NUCLEUS,
    TX_X,
    TX_Y,
    TX_Z,
    UNS_KEY,
)
from .._errors import StfieldFileNotFoundError, StfieldInputError, input_error
from .._validate import check_coordinates, check_counts, check_transcripts, check_unique

PathLike = str | os.PathLike[str]

#: Exceptions raised by pandas/gzip/zlib/pyarrow/h5py when a file is malformed or truncated.
READ_ERRORS: tuple[type[BaseException], ...] = (
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    pa.ArrowException,
    OSError,
)

_CONTROL_RE = re.compile(CONTROL_PATTERN, re.IGNORECASE)
_TARGET_DENSE_VALUES = 20_000_000  # values per dense chunk when a text matrix is read in pieces

# ---------------------------------------------------------------------------------------------
# paths


def not_found(path: Path | str, what: str, fix: str) -> StfieldFileNotFoundError:
    """A :class:`FileNotFoundError` whose message says what was looked for and how to fix it."""
    return StfieldFileNotFoundError(f"{path}: {what}. Fix: {fix}")


def as_path(path: PathLike) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, raising a clear error if it does not exist."""
    if not isinstance(path, str | os.PathLike):
        raise input_error(
            f"expected a path (str or os.PathLike), got {type(path).__name__}",
            "stfield.io",
            "pass the path of a file or output folder",
        )
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise not_found(p, "no such file or folder", "check the path and that the disk is mounted")
    return p


def describe_folder(folder: Path, limit: int = 15) -> str:
    """A short listing of a folder's entries for error messages (folders end with ``/``)."""
    try:
        entries = sorted(folder.iterdir(), key=lambda e: e.name)
    except OSError:
        return "(unreadable)"
    names = [e.name + ("/" if e.is_dir() else "") for e in entries[:limit]]
    more = f", ... ({len(entries) - limit} more)" if len(entries) > limit else ""
    return (", ".join(names) + more) if names else "(empty)"


def find_file(folder: Path, candidates: Sequence[str], what: str, fix: str | None = None) -> Path:
    """Return the first existing ``folder/candidate`` (glob patterns allowed), else raise.

    A glob matching several files is an error: the reader cannot guess which one is meant.
    """
    for cand in candidates:
        if any(ch in cand for ch in "*?["):
            hits = sorted(folder.glob(cand))
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise input_error(
                    f"several files match {cand!r} for the {what}: {[h.name for h in hits[:5]]}",
                    str(folder),
                    "pass the path of the file you mean instead of the folder",
                )
        elif (folder / cand).exists():
            return folder / cand
    raise not_found(
        folder,
        f"no {what} found (looked for {', '.join(candidates)}; the folder holds: "
        f"{describe_folder(folder)})",
        fix or "point to the platform's output folder, or pass the file path explicitly",
    )


def is_gz(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def strip_suffixes(name: str) -> str:
    """File name without ``.gz`` and the extension before it (``a.csv.gz`` -> ``a``)."""
    low = name
    if low.lower().endswith(".gz"):
        low = low[:-3]
    return low.rsplit(".", 1)[0] if "." in low else low


# ---------------------------------------------------------------------------------------------
# text and parquet tables


def read_head(path: Path, n_lines: int = 2, comment: str | None = "#") -> tuple[int, list[str]]:
    """Return ``(number of leading comment lines, next n_lines lines)`` of a text file (gz ok)."""
    n_comments = 0
    lines: list[str] = []
    try:
        opener = gzip.open if is_gz(path) else open
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            for raw in fh:
                line = raw.rstrip("\r\n")
                if not lines and comment and line.startswith(comment):
                    n_comments += 1
                    continue
                lines.append(line)
                if len(lines) >= n_lines:
                    break
    except READ_ERRORS as exc:
        raise input_error(
            f"cannot read the file (corrupt or truncated?): {exc}",
            str(path),
            "re-export or re-download the file",
        ) from None
    return n_comments, lines


def sniff_sep(line: str) -> str:
    """Tab if the line has tabs, else comma."""
    return "\t" if "\t" in line else ","


def split_header(line: str, sep: str) -> list[str]:
    return [c.strip().strip('"').strip("'") for c in line.split(sep)]


def parquet_index_columns(schema: pa.Schema) -> list[str]:
    """Columns holding a pandas index (written by ``DataFrame.to_parquet``), e.g. spot ids."""
    meta = schema.pandas_metadata or {}
    return [c for c in meta.get("index_columns", []) if isinstance(c, str) and c in schema.names]


def parquet_columns(path: Path) -> list[str]:
    """Column names of a parquet file; a stored pandas index comes first (it holds the ids)."""
    schema = read_parquet_schema(path)
    index = parquet_index_columns(schema)
    return index + [n for n in schema.names if n not in index]


def read_parquet_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except READ_ERRORS as exc:
        raise input_error(
            f"cannot read the parquet file (corrupt or truncated?): {exc}",
            str(path),
            "re-export the file (e.g. DataFrame.to_parquet) or re-copy it",
        ) from None


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def table_columns(path: Path, sep: str | None = None) -> tuple[list[str], str, int]:
    """Header of a CSV/TSV (gz ok, ``#`` comment lines skipped) or parquet file.

    Returns ``(columns, sep, n_comment_lines)``; ``sep`` is ``""`` for parquet.
    """
    if is_parquet(path):
        return parquet_columns(path), "", 0
    n_comments, lines = read_head(path, 1)
    if not lines or not lines[0].strip():
        raise input_error("the file is empty (no header line)", str(path), "check the file")
    sep = sep or sniff_sep(lines[0])
    return split_header(lines[0], sep), sep, n_comments


def read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """:func:`pandas.read_csv` that turns parser/IO errors into a clear StfieldInputError."""
    try:
        return pd.read_csv(path, **kwargs)
    except StfieldInputError:
        raise
    except (ValueError, *READ_ERRORS) as exc:
        raise csv_error(path, exc) from None


def csv_error(path: Path, exc: BaseException) -> StfieldInputError:
    """Translate a pandas/IO exception raised while parsing ``path`` into a clear error."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, PermissionError):
        return input_error("permission denied", str(path), "check the file's permissions")
    if isinstance(exc, ValueError) and not isinstance(exc, pd.errors.ParserError | UnicodeError):
        if "convert" in msg or "parse" in msg or "invalid literal" in msg:
            return input_error(
                f"non-numeric value in a numeric column ({msg})",
                str(path),
                "numeric columns (counts, coordinates) must hold numbers only; remove text "
                "annotation columns or map the right columns",
            )
        if "Usecols" in msg or "usecols" in msg:
            return input_error(
                f"expected column(s) missing ({msg})",
                str(path),
                "check the file's header against the platform's layout",
            )
    return input_error(
        f"cannot parse the table (corrupt, truncated or not a table?): {msg}",
        str(path),
        "re-export or re-copy the file",
    )


#: pandas' documented default missing-value tokens (``read_csv``'s ``na_values``), written out
#: rather than read from a private pandas module.
_PANDAS_NA = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]


def verbatim_text(columns: Iterable[str], text_columns: Iterable[str]) -> dict[str, Any]:
    """:func:`pandas.read_csv` options reading ``text_columns`` verbatim.

    Only an empty field is missing there: a gene named ``nan`` (Drosophila *nanchung*),
    ``NA`` or ``None`` is a name, not a gap. The other columns keep pandas' default tokens.
    """
    text = set(text_columns)
    return {
        "keep_default_na": False,
        "na_values": {c: ([""] if c in text else _PANDAS_NA) for c in columns},
    }


def iter_csv(path: Path, **kwargs: Any) -> Iterator[pd.DataFrame]:
    """Chunked :func:`pandas.read_csv` (``chunksize`` required) with clear errors."""
    try:
        with pd.read_csv(path, **kwargs) as reader:
            yield from reader
    except StfieldInputError:
        raise
    except (ValueError, *READ_ERRORS) as exc:
        raise csv_error(path, exc) from None


def read_parquet(
    path: Path,
    columns: Sequence[str] | None = None,
    filters: Any = None,
    read_dictionary: Sequence[str] | None = None,
) -> pa.Table:
    """Read selected columns of a parquet file, with clear errors for corrupt files."""
    try:
        return pq.read_table(
            path,
            columns=list(columns) if columns is not None else None,
            filters=filters,
            read_dictionary=list(read_dictionary) if read_dictionary else None,
        )
    except READ_ERRORS as exc:
        raise input_error(
            f"cannot read the parquet file (corrupt or truncated?): {exc}",
            str(path),
            "re-export the file (e.g. DataFrame.to_parquet) or re-copy it",
        ) from None


def require_columns(
    found: Sequence[str], needed: Iterable[str], where: str, fix: str | None = None
) -> None:
    """Raise a clear error naming the missing columns and those found."""
    missing = [c for c in needed if c not in found]
    if missing:
        raise input_error(
            f"missing column(s) {missing}; columns found: {list(found)[:30]}",
            where,
            fix or "check that the file is the platform's original output",
        )


def pick_column(found: Sequence[str], aliases: Sequence[str]) -> str | None:
    """First of ``aliases`` present in ``found`` (exact match first, then case-insensitive)."""
    for alias in aliases:
        if alias in found:
            return alias
    lower = {c.lower(): c for c in found}
    for alias in aliases:
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


# ---------------------------------------------------------------------------------------------
# matrices


def read_dense_text_matrix(
    path: Path, *, where: str | None = None, drop: Sequence[str] = (), sep: str | None = None
) -> tuple[pd.Index, list[str], sp.csr_matrix]:
    """Read a dense text matrix (first column row ids, then numeric columns) straight to CSR.

    The file is read in chunks of rows sized so that no dense block exceeds ~20 M values; each
    block is made sparse before the next is read. Returns ``(row ids, column names, X)``.
    """
    where = where or str(path)
    header, sep, n_comments = table_columns(path, sep)
    if len(header) < 2:
        raise input_error(
            f"expected an id column followed by value columns, found {header}",
            where,
            "write the table with one id column and one column per gene (sep ',' or tab)",
        )
    names = [f"c{i}" for i in range(len(header))]
    keep = [i for i in range(1, len(header)) if header[i] not in set(drop)]
    columns = [header[i] for i in keep]
    dtype: dict[str, Any] = {names[0]: str}
    dtype.update({names[i]: np.float32 for i in keep})
    chunk_rows = max(1, min(200_000, _TARGET_DENSE_VALUES // max(1, len(keep))))
    ids: list[np.ndarray] = []
    blocks: list[sp.csr_matrix] = []
    for chunk in iter_csv(
        path,
        sep=sep,
        header=None,
        names=names,
        skiprows=n_comments + 1,
        usecols=[names[0]] + [names[i] for i in keep],
        dtype=dtype,
        chunksize=chunk_rows,
        keep_default_na=True,
    ):
        ids.append(chunk[names[0]].to_numpy(dtype=object))
        values = chunk[[names[i] for i in keep]].to_numpy(dtype=np.float32)
        check_counts(values, where)
        blocks.append(sp.csr_matrix(values))
    if not blocks:
        raise input_error("the table has a header but no rows", where, "check the file")
    X = sp.vstack(blocks, format="csr")
    row_ids = pd.Index(np.concatenate(ids).astype(str), dtype=object)
    return row_ids, columns, X


def read_parquet_matrix(
    path: Path, *, where: str | None = None, drop: Sequence[str] = ()
) -> tuple[pd.Index, list[str], sp.csr_matrix]:
    """Parquet counterpart of :func:`read_dense_text_matrix` (row-group batches to CSR)."""
    where = where or str(path)
    schema = read_parquet_schema(path)
    index_cols = parquet_index_columns(schema)
    names = index_cols + [n for n in schema.names if n not in index_cols]
    id_col = index_cols[0] if index_cols else names[0]
    value_cols = [n for n in names if n != id_col and n not in index_cols and n not in set(drop)]
    bad = [
        n
        for n in value_cols
        if not (
            pa.types.is_integer(schema.field(n).type) or pa.types.is_floating(schema.field(n).type)
        )
    ]
    if bad:
        raise input_error(
            f"non-numeric column(s) in the expression matrix: {bad[:10]}",
            where,
            "keep one id column and numeric gene columns only",
        )
    ids: list[np.ndarray] = []
    blocks: list[sp.csr_matrix] = []
    batch_rows = max(1, min(200_000, _TARGET_DENSE_VALUES // max(1, len(value_cols))))
    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[id_col, *value_cols]):
            ids.append(np.asarray(batch.column(0).to_pylist(), dtype=object))
            values = (
                np.column_stack(
                    [
                        batch.column(i + 1).to_numpy(zero_copy_only=False).astype(np.float32)
                        for i in range(len(value_cols))
                    ]
                )
                if value_cols
                else np.zeros((batch.num_rows, 0), np.float32)
            )
            check_counts(values, where)
            blocks.append(sp.csr_matrix(values))
    except READ_ERRORS as exc:
        raise input_error(
            f"cannot read the parquet file (corrupt or truncated?): {exc}",
            where,
            "re-export the file or re-copy it",
        ) from None
    if not blocks:
        raise input_error("the table has no rows", where, "check the file")
    X = sp.vstack(blocks, format="csr")
    return pd.Index(np.concatenate(ids).astype(str), dtype=object), value_cols, X


def control_mask(names: Iterable[Any]) -> np.ndarray:
    """Boolean mask of names matching :data:`~stfield._constants.CONTROL_PATTERN`."""
    names = list(names)
    return np.fromiter(
        (bool(_CONTROL_RE.match(str(n))) for n in names), dtype=bool, count=len(names)
    )


def align_to(ids: pd.Index, ref_ids: pd.Index, where: str, what: str = "coordinates") -> np.ndarray:
    """Positions of ``ids`` in ``ref_ids`` (the table holding coordinates/metadata).

    Every id must be present exactly once in ``ref_ids``; extra rows of ``ref_ids`` are ignored
    (e.g. spots filtered out of the count matrix).
    """
    check_unique(pd.Index(ref_ids), where, "spot")
    idx = pd.Index(ref_ids).get_indexer(ids)
    missing = np.flatnonzero(idx < 0)
    if missing.size:
        raise input_error(
            f"{missing.size} of {len(ids)} spots/cells of the count matrix have no row in the "
            f"{what} table (e.g. {list(ids[missing[:3]])}); the two tables hold "
            f"{len(ids)} and {len(ref_ids)} rows",
            where,
            "pass the coordinates file that belongs to this count matrix (ids must match)",
        )
    return idx


# ---------------------------------------------------------------------------------------------
# units

_UM_PER_UNIT = {
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "nm": 1e-3,
    "mm": 1e3,
}
_PIXEL_UNITS = {"px", "pixel", "pixels"}


def unit_scale(
    spatial_unit: str | None, pixel_size_um: float | None, where: str
) -> tuple[float, float | None]:
    """µm per coordinate unit, and the pixel size to record (``None`` when not pixels).

    ``spatial_unit=None`` means µm unless ``pixel_size_um`` is given (then pixels).
    """
    if pixel_size_um is not None:
        try:
            pixel_size_um = float(pixel_size_um)
        except (TypeError, ValueError):
            pixel_size_um = math.nan
        if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
            raise input_error(
                f"pixel_size_um must be a positive number, got {pixel_size_um!r}",
                where,
                "give the size of one pixel in µm (e.g. 0.2125 for Xenium images)",
            )
    unit = None if spatial_unit is None else str(spatial_unit).strip().lower()
    if unit is None:
        return (pixel_size_um, pixel_size_um) if pixel_size_um is not None else (1.0, None)
    if unit in _PIXEL_UNITS:
        if pixel_size_um is None:
            raise input_error(
                "coordinates are in pixels but no pixel size was given",
                where,
                "pass pixel_size_um=<µm per pixel> (CLI: --pixel-size-um)",
            )
        return pixel_size_um, pixel_size_um
    if unit in _UM_PER_UNIT:
        if pixel_size_um is not None:
            raise input_error(
                f"spatial_unit={spatial_unit!r} conflicts with pixel_size_um={pixel_size_um}",
                where,
                "give pixel_size_um only for coordinates in pixels (spatial_unit='px')",
            )
        return _UM_PER_UNIT[unit], None
    raise input_error(
        f"unknown spatial_unit {spatial_unit!r}",
        where,
        f"use one of {sorted({'um', 'nm', 'mm', 'px'})}",
    )


# ---------------------------------------------------------------------------------------------
# outputs


def uns_record(
    fmt: str, source: PathLike, pixel_size_um: float | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``uns["stfield"]`` / ``attrs["stfield"]`` provenance record (no ``None`` values)."""
    rec: dict[str, Any] = {"spatial_unit": SPATIAL_UNIT, "format": fmt, "source": str(source)}
    if pixel_size_um is not None:
        rec["pixel_size_um"] = float(pixel_size_um)
    rec.update({k: v for k, v in extra.items() if v is not None})
    return rec


def build_adata(
    X: Any,
    obs_names: Sequence[Any] | pd.Index,
    var_names: Sequence[Any] | pd.Index,
    coords_um: np.ndarray,
    *,
    fmt: str,
    source: PathLike,
    where: str,
    pixel_size_um: float | None = None,
    obs: pd.DataFrame | None = None,
    var: pd.DataFrame | None = None,
    keep_controls: bool = False,
    uns_extra: Mapping[str, Any] | None = None,
) -> AnnData:
    """Validate and assemble a reader's AnnData (see the module docstring for the contract)."""
    X = X.tocsr() if sp.issparse(X) else sp.csr_matrix(X)
    check_counts(X, where)
    if X.dtype != np.float32:
        X = X.astype(np.float32)
    X.sum_duplicates()
    X.sort_indices()
    obs_index = pd.Index(np.asarray(obs_names).astype(str), dtype=object)
    var_index = pd.Index(np.asarray(var_names).astype(str), dtype=object)
    if X.shape != (len(obs_index), len(var_index)):  # pragma: no cover - reader bug guard
        raise input_error(f"matrix {X.shape} vs {len(obs_index)} x {len(var_index)} names", where)
    check_unique(obs_index, where, "spot")
    check_unique(var_index, where, "gene")
    coords = check_coordinates(coords_um, f"{where} (coordinates)", n_rows=X.shape[0])
    obs_df = pd.DataFrame(index=obs_index) if obs is None else obs.set_axis(obs_index, axis=0)
    var_df = pd.DataFrame(index=var_index) if var is None else var.set_axis(var_index, axis=0)
    if not keep_controls:
        keep = ~control_mask(var_index)
        if not keep.all():
            X = X[:, np.flatnonzero(keep)]
            var_df = var_df.iloc[np.flatnonzero(keep)]
    adata = AnnData(X=X, obs=obs_df, var=var_df)
    adata.obsm[SPATIAL_KEY] = np.ascontiguousarray(coords, dtype=np.float64)
    adata.uns[UNS_KEY] = uns_record(fmt, source, pixel_size_um, **dict(uns_extra or {}))
    return adata


def _as_arrow(values: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        return pa.array(pd.Series(values), from_pandas=True)
    return pa.array(np.asarray(values), from_pandas=True)


def to_cell_ids(values: Any, unassigned: Sequence[Any] = ()) -> pd.api.extensions.ExtensionArray:
    """Cell ids as a pyarrow-backed pandas string array; ``unassigned`` values become NA."""
    arr = _as_arrow(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.string())
    if pa.types.is_floating(arr.type):  # ints read as float because of missing values
        arr = pc.cast(arr, pa.int64(), safe=False)
    if pa.types.is_integer(arr.type):
        bad_ints = [int(u) for u in unassigned if isinstance(u, int | np.integer)]
        if bad_ints:
            arr = pc.if_else(
                pc.is_in(arr, pa.array(bad_ints, arr.type)), pa.scalar(None, arr.type), arr
            )
        arr = arr.cast(pa.string())
    elif not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    bad_strs = [str(u) for u in unassigned] + [""]
    arr = pc.if_else(
        pc.is_in(arr, pa.array(bad_strs, pa.string())), pa.scalar(None, pa.string()), arr
    )
    return pd.arrays.ArrowStringArray(arr)


def as_categorical(values: Any) -> pd.Categorical:
    """Gene names as a pandas Categorical; bytes (old Xenium files) are decoded."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.to_pandas()
    if isinstance(values, pd.Series):
        values = (
            values.array if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()
        )
    cat = values if isinstance(values, pd.Categorical) else pd.Categorical(values)
    cats = cat.categories
    if len(cats) and isinstance(cats[0], bytes):
        cat = cat.rename_categories([c.decode("utf-8", "replace") for c in cats])
    elif len(cats) and all(
        isinstance(c, str) and c.startswith("b'") and c.endswith("'") for c in cats
    ):
        cat = cat.rename_categories([c[2:-1] for c in cats])
    return cat


def build_transcripts(
    *,
    gene: Any,
    x: Any,
    y: Any,
    z: Any = None,
    cell_id: Any = None,
    fov: Any = None,
    overlaps_nucleus: Any = None,
    fmt: str,
    source: PathLike,
    where: str,
    pixel_size_um: float | None = None,
    keep_controls: bool = False,
    attrs_extra: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Validate and assemble the canonical transcripts DataFrame (controls dropped by default)."""
    genes = as_categorical(gene)
    n = len(genes)
    if genes.isna().any():
        n_bad = int(genes.isna().sum())
        raise input_error(
            f"{n_bad} molecule(s) have no gene name",
            where,
            "drop those rows or map the gene column correctly (columns={'gene': ...})",
        )
    data: dict[str, Any] = {
        TX_GENE: genes,
        TX_X: np.asarray(x, dtype=np.float64),
        TX_Y: np.asarray(y, dtype=np.float64),
        TX_Z: np.full(n, np.nan) if z is None else np.asarray(z, dtype=np.float64),
        TX_CELL: (
            pd.arrays.ArrowStringArray(pa.nulls(n, pa.string())) if cell_id is None else cell_id
        ),
    }
    if fov is not None:
        data[TX_FOV] = fov
    if overlaps_nucleus is not None:
        data[TX_NUCLEUS] = np.asarray(overlaps_nucleus).astype(bool)
    df = pd.DataFrame(data, copy=False)
    n_controls = 0
    if not keep_controls:
        ctrl = control_mask(genes.categories)
        if ctrl.any():
            is_ctrl = np.isin(genes.codes, np.flatnonzero(ctrl))
            n_controls = int(is_ctrl.sum())
            if n_controls:
                df = df.loc[~is_ctrl].reset_index(drop=True)
            df[TX_GENE] = df[TX_GENE].cat.remove_categories(list(genes.categories[ctrl]))
    check_transcripts(df, where)
    df.attrs[UNS_KEY] = uns_record(
        fmt, source, pixel_size_um, n_controls_dropped=n_controls, **dict(attrs_extra or {})
    )
    return df
