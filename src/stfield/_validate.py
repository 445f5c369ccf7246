"""Input validation shared by readers, ``pp``, ``tl`` and the CLI.

Every check raises :class:`~stfield._errors.StfieldInputError` (a ``ValueError``) whose message
names what is wrong, where (file, field, key) and how to fix it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from ._constants import SPATIAL_KEY, TX_GENE, TX_X, TX_Y
from ._errors import input_error


def check_coordinates(
    coords: np.ndarray, where: str, n_rows: int | None = None, dims: Sequence[int] = (2, 3)
) -> np.ndarray:
    """Return ``coords`` as a float64 ``(n, d)`` array after checking shape and finiteness."""
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise input_error(
            f"coordinates are not numeric ({exc})", where, "give numeric x/y columns in µm"
        ) from None
    if arr.ndim != 2 or arr.shape[1] not in dims:
        raise input_error(
            f"coordinates must have shape (n, {' or '.join(map(str, dims))}), got {arr.shape}",
            where,
            "pass an array with one row per spot and one column per axis (x, y[, z])",
        )
    if n_rows is not None and arr.shape[0] != n_rows:
        raise input_error(
            f"{arr.shape[0]} coordinate rows for {n_rows} spots",
            where,
            "give exactly one coordinate row per spot, in the same order",
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise input_error(
            f"{rows.size} coordinate row(s) contain NaN or inf (first: row {rows[0]})",
            where,
            "drop or fix those spots before fitting",
        )
    return arr


#: Below this median spacing (µm) between distinct positions, coordinates look normalised.
MIN_PLAUSIBLE_SPACING_UM = 0.05
#: Above this extent (µm, 10 cm) coordinates look like pixels or nanometres.
MAX_PLAUSIBLE_EXTENT_UM = 1e5


def warn_implausible_units(x: np.ndarray, y: np.ndarray, where: str, sample: int = 2000) -> None:
    """Warn when coordinates do not look like µm: a slide spans µm to a few cm.

    Checks the extent over all points and the median nearest-neighbour spacing over a seeded
    sample of distinct positions (a sample over-estimates spacing, so it never warns falsely
    about spacing being too small). Reads the columns without copying them.
    """
    if len(x) < 2:
        return
    extent = float(max(np.max(x) - np.min(x), np.max(y) - np.min(y)))
    fix = (
        "stfield expects µm: convert pixels with the platform's pixel size (the stfield.io "
        "readers do this), or rescale the coordinates"
    )
    if extent > MAX_PLAUSIBLE_EXTENT_UM:
        warnings.warn(
            f"{where}: coordinates span {extent:,.0f} units; as µm that is {extent / 1e4:.1f} cm, "
            f"larger than any slide (pixels or nm?). {fix}",
            UserWarning,
            stacklevel=3,
        )
        return
    pick = np.arange(len(x))
    if len(x) > sample:
        pick = np.random.default_rng(0).choice(len(x), sample, replace=False)
    xy = np.unique(np.column_stack([np.asarray(x)[pick], np.asarray(y)[pick]]), axis=0)
    if xy.shape[0] < 2:
        return
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(xy).query(xy, k=2)
    spacing = float(np.median(dist[:, 1]))
    if spacing < MIN_PLAUSIBLE_SPACING_UM:
        warnings.warn(
            f"{where}: the median spacing between positions is {spacing:.3g} units, far below "
            f"a µm-scale spot or molecule spacing (normalised coordinates, or mm?). {fix}",
            UserWarning,
            stacklevel=3,
        )


def available_memory_bytes() -> int:
    """Memory the process can still use: MemAvailable on Linux, else total physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 2**63 - 1


def check_memory(estimate_bytes: float, what: str, where: str, fix: str) -> None:
    """Reject up front a setting whose estimated memory exceeds what is available."""
    avail = available_memory_bytes()
    if estimate_bytes > avail:
        raise input_error(
            f"{what} needs about {estimate_bytes / 2**30:,.1f} GiB of memory, "
            f"{avail / 2**30:,.1f} GiB are available",
            where,
            fix,
        )


def check_counts(X: np.ndarray | sp.spmatrix, where: str, allow_negative: bool = False) -> None:
    """Check an expression matrix: numeric, finite, and (by default) non-negative."""
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.dtype == object:
        try:
            data = data.astype(np.float64)
        except (TypeError, ValueError):
            raise input_error(
                "expression matrix has non-numeric values (object dtype)",
                where,
                "store counts as integers or floats",
            ) from None
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise input_error(
            f"expression matrix has non-numeric dtype {data.dtype}",
            where,
            "store counts as integers or floats",
        )
    if data.size == 0:
        return
    # Checked in blocks: a boolean mask of every non-zero would be 400 MB at atlas size.
    block = 1 << 24
    finite = not np.issubdtype(data.dtype, np.floating) or all(
        np.isfinite(data[i : i + block]).all() for i in range(0, data.size, block)
    )
    if not finite:
        raise input_error(
            f"expression matrix has {int((~np.isfinite(data)).sum())} NaN/inf value(s)",
            where,
            "replace missing values by 0 or drop the affected spots",
        )
    if not allow_negative and data.min() < 0:
        raise input_error(
            f"expression matrix has negative values (min {data.min():g})",
            where,
            "give raw counts (or non-negative normalised values), not scaled/centred data",
        )


def check_unique(names: pd.Index, where: str, what: str) -> None:
    """Reject duplicated spot or gene names."""
    dup = names[names.duplicated()]
    if len(dup):
        raise input_error(
            f"{len(dup)} duplicated {what} name(s), e.g. {list(dup[:3])}",
            where,
            f"make them unique (AnnData.{'obs' if what == 'spot' else 'var'}_names_make_unique())",
        )


def check_adata(
    adata: AnnData,
    where: str = "adata",
    layer: str | None = None,
    require_spatial: bool = True,
    min_spots: int = 1,
) -> None:
    """Validate an AnnData before any stfield computation.

    Parameters
    ----------
    adata
        The slice.
    where
        Name used in error messages (a file path or ``"adata"``).
    layer
        Layer holding expression; ``None`` means ``adata.X``.
    require_spatial
        Whether ``obsm["spatial"]`` must be present.
    min_spots
        Minimum number of spots required.
    """
    if not isinstance(adata, AnnData):
        raise input_error(
            f"expected an AnnData, got {type(adata).__name__}", where, "use stfield.io.read(path)"
        )
    if adata.n_obs < min_spots:
        raise input_error(
            f"{adata.n_obs} spot(s), need at least {min_spots}",
            where,
            "check the input file or loosen the filtering thresholds",
        )
    if adata.n_vars == 0:
        raise input_error("no genes", where, "check the input file or the gene filters")
    check_unique(adata.obs_names, where, "spot")
    check_unique(adata.var_names, where, "gene")
    if layer is not None and layer not in adata.layers:
        raise input_error(
            f"layer {layer!r} not found (layers: {list(adata.layers)})",
            where,
            "pass one of the existing layers or layer=None for adata.X",
        )
    X = adata.X if layer is None else adata.layers[layer]
    if X is None:
        raise input_error("adata.X is empty", where, "store the expression matrix in adata.X")
    check_counts(X, f"{where} ({'X' if layer is None else f'layers[{layer!r}]'})")
    if require_spatial:
        if SPATIAL_KEY not in adata.obsm:
            raise input_error(
                f"obsm[{SPATIAL_KEY!r}] is missing (obsm keys: {list(adata.obsm)})",
                where,
                f"store spot coordinates in µm as adata.obsm[{SPATIAL_KEY!r}]",
            )
        coords = check_coordinates(
            adata.obsm[SPATIAL_KEY], f"{where} obsm[{SPATIAL_KEY!r}]", adata.n_obs
        )
        warn_implausible_units(coords[:, 0], coords[:, 1], f"{where} obsm[{SPATIAL_KEY!r}]")


def check_transcripts(df: pd.DataFrame, where: str = "transcripts") -> None:
    """Validate a canonical transcripts table (``gene, x, y[, z, cell_id]`` in µm)."""
    if not isinstance(df, pd.DataFrame):
        raise input_error(
            f"expected a pandas DataFrame, got {type(df).__name__}",
            where,
            "use stfield.io.read_transcripts(path)",
        )
    missing = [c for c in (TX_GENE, TX_X, TX_Y) if c not in df.columns]
    if missing:
        raise input_error(
            f"missing column(s) {missing}; columns found: {list(df.columns)}",
            where,
            "read the table with stfield.io.read_transcripts(path, columns={'gene': ..., 'x': ..., 'y': ...})",
        )
    if len(df) == 0:
        raise input_error("the transcripts table has no rows", where, "check the file and filters")
    for col in (TX_X, TX_Y):
        values = df[col].to_numpy()
        if not np.issubdtype(values.dtype, np.number):
            raise input_error(
                f"column {col!r} is not numeric (dtype {values.dtype})",
                where,
                "map x/y to the numeric coordinate columns",
            )
        if not np.isfinite(values).all():
            n_bad = int((~np.isfinite(values)).sum())
            raise input_error(
                f"column {col!r} has {n_bad} NaN/inf value(s)",
                where,
                "drop those molecules before binning",
            )
    warn_implausible_units(df[TX_X].to_numpy(), df[TX_Y].to_numpy(), where)
