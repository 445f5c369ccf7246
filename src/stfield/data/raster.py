"""Tiles over a transcripts table and a lazy per-tile rasteriser (DESIGN §4.1-4.2).

A :class:`TileIndex` cuts the slide into square tiles of ``tile`` pixels at ``pixel_size`` µm/px
(sliding windows with a stride, or windows inside each MERSCOPE/CosMx field of view) and keeps a
sparse index of molecules and cell centroids per grid bin. :meth:`TileIndex.rasterise` builds one
tile at a time, so memory never scales with the slide.

Channel layout of a rasterised tile (``C = T + 1 + 2 + 4L`` with the defaults):

* ``0 .. T-1``: one channel per gene, 1 where a molecule of that gene falls (``mode="binary"``) or
  ``min(count, count_cap) / count_cap`` (``mode="counts"``);
* ``T``: cell-centroid mask (1 at the pixel holding a centroid);
* ``T+1, T+2`` (``include_coords``): tile-relative centroid coordinates in ``[-1, 1)``;
* the rest: NeRF positional encoding ``γ(p)`` of those coordinates with ``L = n_freqs``
  frequencies, ordered ``sin(2^k π x), sin(2^k π y), cos(2^k π x), cos(2^k π y)`` for
  ``k = 0 .. L-1``.

Everything after the gene channels is zero except at centroid pixels. Only the first ``T + 1``
channels (genes and mask) are reconstruction targets: a sigmoid decoder cannot produce the
encoding's negative values.

Augmentation (flips and 90° rotations) is applied to the tile-relative coordinates before
rasterising, so gene channels, mask and encodings always describe the same transformed tile (the
encodings are recomputed from the transformed centroid coordinates, not copied).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._constants import TX_CELL, TX_FOV, TX_GENE, TX_NUCLEUS, TX_X, TX_Y
from .._errors import input_error
from .._validate import check_transcripts

if TYPE_CHECKING:  # pragma: no cover
    from .shards import ShardStore

logger = logging.getLogger(__name__)

#: Cell ids that mean "not assigned to a cell" besides NA.
UNASSIGNED_IDS = frozenset({"", "-1", "UNASSIGNED", "nan", "None", "<NA>"})

_MODES = ("binary", "counts")


@dataclass(frozen=True)
class RasterConfig:
    """How a tile is rasterised.

    Parameters
    ----------
    pixel_size
        Micrometres per pixel.
    tile
        Tile side ``I`` in pixels.
    mode
        ``"binary"`` (presence of a molecule, the paper's input) or ``"counts"`` (molecule count
        per pixel, capped at ``count_cap`` and scaled to ``[0, 1]``).
    count_cap
        Count that maps to 1 in ``"counts"`` mode.
    n_freqs
        Number of positional-encoding frequencies ``L``.
    include_coords
        Also write the tile-relative centroid coordinates themselves (the paper concatenates them).
    """

    pixel_size: float = 1.0
    tile: int = 256
    mode: str = "binary"
    count_cap: int = 4
    n_freqs: int = 6
    include_coords: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.pixel_size, int | float) and math.isfinite(self.pixel_size)):
            raise input_error(f"pixel_size={self.pixel_size!r}", "pixel_size", "give µm per pixel")
        if self.pixel_size <= 0:
            raise input_error(
                f"pixel_size must be > 0 µm/px, got {self.pixel_size}",
                "pixel_size",
                "e.g. pixel_size=1.0",
            )
        if int(self.tile) != self.tile or self.tile < 4:
            raise input_error(
                f"tile must be an integer >= 4 pixels, got {self.tile}", "tile", "e.g. tile=256"
            )
        if self.mode not in _MODES:
            raise input_error(f"unknown mode {self.mode!r}", "mode", f"use one of {_MODES}")
        if self.count_cap < 1:
            raise input_error(f"count_cap must be >= 1, got {self.count_cap}", "count_cap")
        if self.n_freqs < 0:
            raise input_error(f"n_freqs must be >= 0, got {self.n_freqs}", "n_freqs")

    @property
    def tile_um(self) -> float:
        """Tile side in µm."""
        return self.tile * self.pixel_size

    @property
    def n_extra(self) -> int:
        """Number of non-gene channels (mask, coordinates, encoding)."""
        return 1 + (2 if self.include_coords else 0) + 4 * self.n_freqs

    def n_channels(self, n_genes: int) -> int:
        """Total input channels for ``n_genes`` genes."""
        return n_genes + self.n_extra

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RasterConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def positional_encoding(p: np.ndarray, n_freqs: int) -> np.ndarray:
    """NeRF positional encoding of 2-D points (paper eq. 2).

    ``p`` is ``(n, 2)``; returns ``(n, 4 * n_freqs)`` ordered, per frequency ``2^k π``,
    ``sin x, sin y, cos x, cos y``.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    out = np.empty((p.shape[0], 4 * n_freqs), dtype=np.float64)
    for k in range(n_freqs):
        arg = (2.0**k) * np.pi * p
        out[:, 4 * k : 4 * k + 2] = np.sin(arg)
        out[:, 4 * k + 2 : 4 * k + 4] = np.cos(arg)
    return out


def _assigned_mask(cell_ids: pd.Series) -> np.ndarray:
    ids = cell_ids.astype("string")
    return (~ids.isna() & ~ids.isin(UNASSIGNED_IDS)).to_numpy(dtype=bool)


def estimate_centroids(transcripts: pd.DataFrame, where: str = "transcripts") -> pd.DataFrame:
    """Cell centroids from the molecules assigned to each cell.

    The centroid is the mean position of a cell's nucleus-overlapping molecules
    (``overlaps_nucleus``) where it has any, otherwise of all its molecules.

    Returns
    -------
    DataFrame indexed by ``cell_id`` (string) with columns ``x``, ``y`` (µm), ``n_molecules`` and
    ``source`` (``"nucleus"`` or ``"all"``).
    """
    check_transcripts(transcripts, where)
    if TX_CELL not in transcripts.columns:
        raise input_error(
            f"no {TX_CELL!r} column, so centroids cannot be estimated",
            where,
            "pass a cells table (cell_id, x, y) or a transcripts table with cell_id",
        )
    assigned = _assigned_mask(transcripts[TX_CELL])
    empty = pd.DataFrame(
        {"x": np.zeros(0), "y": np.zeros(0), "n_molecules": np.zeros(0, int), "source": []},
        index=pd.Index([], dtype="object", name=TX_CELL),
    )
    if not assigned.any():
        return empty
    cell = transcripts.loc[assigned, TX_CELL].astype(str).to_numpy()
    codes, uniques = pd.factorize(cell, sort=True)
    x = transcripts[TX_X].to_numpy(np.float64)[assigned]
    y = transcripts[TX_Y].to_numpy(np.float64)[assigned]
    n_cells = len(uniques)
    n_all = np.bincount(codes, minlength=n_cells).astype(np.float64)
    cx = np.bincount(codes, weights=x, minlength=n_cells) / n_all
    cy = np.bincount(codes, weights=y, minlength=n_cells) / n_all
    source = np.full(n_cells, "all", dtype=object)
    if TX_NUCLEUS in transcripts.columns:
        nuc = transcripts[TX_NUCLEUS].to_numpy()[assigned]
        nuc = np.asarray(pd.Series(nuc).fillna(0).astype(float).to_numpy() > 0, dtype=bool)
        n_nuc = np.bincount(codes[nuc], minlength=n_cells).astype(np.float64)
        has = n_nuc > 0
        nx = np.bincount(codes[nuc], weights=x[nuc], minlength=n_cells)
        ny = np.bincount(codes[nuc], weights=y[nuc], minlength=n_cells)
        cx[has] = nx[has] / n_nuc[has]
        cy[has] = ny[has] / n_nuc[has]
        source[has] = "nucleus"
    return pd.DataFrame(
        {"x": cx, "y": cy, "n_molecules": n_all.astype(np.int64), "source": source},
        index=pd.Index(uniques.astype(str), name=TX_CELL),
    )


def _cells_table(cells: pd.DataFrame, where: str = "cells") -> pd.DataFrame:
    """Normalise a user cells table to index cell_id (str), columns x, y."""
    if not isinstance(cells, pd.DataFrame):
        raise input_error(
            f"expected a DataFrame, got {type(cells).__name__}",
            where,
            "pass a table with cell_id, x, y (µm)",
        )
    df = cells
    aliases = {"x_centroid": "x", "y_centroid": "y", "center_x": "x", "center_y": "y"}
    df = df.rename(columns={k: v for k, v in aliases.items() if k in df.columns and v not in df})
    if "x" not in df.columns or "y" not in df.columns:
        raise input_error(
            f"cells table needs x and y columns (µm); found {list(df.columns)[:8]}",
            where,
            "rename the centroid columns to x and y",
        )
    if TX_CELL in df.columns:
        df = df.set_index(TX_CELL)
    out = pd.DataFrame(
        {"x": df["x"].to_numpy(np.float64), "y": df["y"].to_numpy(np.float64)},
        index=pd.Index(df.index.astype(str), name=TX_CELL),
    )
    if not np.isfinite(out[["x", "y"]].to_numpy()).all():
        raise input_error("cells table has NaN/inf centroids", where, "drop those cells")
    if out.index.has_duplicates:
        raise input_error(
            f"{int(out.index.duplicated().sum())} duplicated cell id(s)",
            where,
            "give one row per cell",
        )
    out["source"] = "table"
    return out


class _Grid:
    """Points sorted by square bin (only occupied bins are stored).

    :meth:`query` returns the candidates of a rectangle by binary search, so neither memory nor
    time depends on the slide's extent.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, x0: float, y0: float, size: float) -> None:
        self.x0, self.y0, self.size = float(x0), float(y0), float(size)
        bx = np.clip(np.floor((x - self.x0) / self.size), 0, None).astype(np.int64)
        by = np.clip(np.floor((y - self.y0) / self.size), 0, None).astype(np.int64)
        self.nbx = int(bx.max(initial=0)) + 1
        self.nby = int(by.max(initial=0)) + 1
        key = by * self.nbx + bx
        self.order = np.argsort(key, kind="stable")
        self.keys = key[self.order]

    def query(self, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
        """Indices of points in bins touching ``[xmin, xmax) x [ymin, ymax)`` (a superset)."""
        bx0 = max(math.floor((xmin - self.x0) / self.size), 0)
        by0 = max(math.floor((ymin - self.y0) / self.size), 0)
        bx1 = min(math.floor((xmax - self.x0) / self.size), self.nbx - 1)
        by1 = min(math.floor((ymax - self.y0) / self.size), self.nby - 1)
        if bx1 < bx0 or by1 < by0:
            return np.zeros(0, dtype=np.int64)
        rows = np.arange(by0, by1 + 1, dtype=np.int64) * self.nbx
        lo = np.searchsorted(self.keys, rows + bx0, side="left")
        hi = np.searchsorted(self.keys, rows + bx1, side="right")
        parts = [self.order[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def window_index(v: np.ndarray, v0: float, size: float) -> np.ndarray:
    """Index ``i`` of the non-overlapping window ``[v0 + i*size, v0 + i*size + size)`` of each
    value: every value gets exactly one window.

    ``floor((v - v0) / size)`` can be off by one next to a border after rounding; it is
    corrected against the window's computed origin ``v0 + i*size``. Borders are rounded
    floats, so a window's computed end and the next one's computed origin may differ by an
    ulp: a value in such a sliver goes to the window whose origin it reaches (or the one below)
    rather than to none or to both. The in-memory index and the shard writer
    (:mod:`stfield.data.shards`) share this rule, so both tile a table identically.
    """
    i = np.floor((v - v0) / size).astype(np.int64)
    lo = v0 + i * size
    return np.where(v < lo, i - 1, np.where(v >= lo + size, i + 1, i))


def _windows(
    x: np.ndarray,
    y: np.ndarray,
    x0: float,
    y0: float,
    size: float,
    stride: float,
    partition: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Occupied windows: origins ``(n, 2)``, molecule counts and, when ``partition`` (non-
    overlapping windows), each molecule's window (row-major order in both cases)."""
    if not partition:
        return (*_occupied_windows(x, y, x0, y0, size, stride), None)
    ix = window_index(x, x0, size)
    iy = window_index(y, y0, size)
    width = int(ix.max(initial=0)) + 1
    keys, tile_of, counts = np.unique(iy * width + ix, return_inverse=True, return_counts=True)
    jj, ii = np.divmod(keys, width)
    origins = np.stack([x0 + ii * size, y0 + jj * size], axis=1).astype(np.float64)
    return origins, counts, tile_of.reshape(-1)


def _members(tile_of: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Molecule indices sorted by kept tile, and each kept tile's ``[start, stop)`` in them."""
    renumber = np.where(good, np.cumsum(good) - 1, -1)
    tile = renumber[tile_of]
    order = np.argsort(tile, kind="stable")  # stable: indices ascend within a tile
    bounds = np.searchsorted(tile[order], np.arange(int(good.sum()) + 1))
    return order, bounds


def _occupied_windows(
    x: np.ndarray, y: np.ndarray, x0: float, y0: float, size: float, stride: float
) -> tuple[np.ndarray, np.ndarray]:
    """Origins ``(n, 2)`` and molecule counts of the windows holding at least one point.

    Windows start at ``(x0 + i * stride, y0 + j * stride)`` and are half-open; only windows a
    point falls into are enumerated, never the slide's full window grid.
    """
    ix = np.floor((x - x0) / stride).astype(np.int64)
    iy = np.floor((y - y0) / stride).astype(np.int64)
    reach = math.ceil(size / stride)
    keys: list[np.ndarray] = []
    width = int(ix.max(initial=0)) + 2
    for a in range(-1, reach + 1):
        ii = ix - a
        ox = x0 + ii * stride
        okx = (ii >= 0) & (x >= ox) & (x < ox + size)
        for b in range(-1, reach + 1):
            jj = iy - b
            oy = y0 + jj * stride
            ok = okx & (jj >= 0) & (y >= oy) & (y < oy + size)
            keys.append(jj[ok] * width + ii[ok])
    uniq, counts = np.unique(np.concatenate(keys), return_counts=True)
    jj, ii = np.divmod(uniq, width)
    origins = np.stack([x0 + ii * stride, y0 + jj * stride], axis=1).astype(np.float64)
    return origins, counts


def transform_pixels(
    row: np.ndarray, col: np.ndarray, size: int, flip: bool, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map integer pixel positions through a horizontal flip then ``k`` quarter turns.

    Matches ``torch.rot90(torch.flip(img, dims=[-1]) if flip else img, k, dims=(-2, -1))``.
    """
    row, col = np.asarray(row), np.asarray(col)
    if flip:
        col = size - 1 - col
    for _ in range(k % 4):
        row, col = size - 1 - col, row
    return row, col


def transform_coords(
    v: np.ndarray, u: np.ndarray, size: float, flip: bool, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous counterpart of :func:`transform_pixels` (``v`` rows, ``u`` columns, in px)."""
    v, u = np.asarray(v, dtype=np.float64), np.asarray(u, dtype=np.float64)
    if flip:
        u = size - u
    for _ in range(k % 4):
        v, u = size - u, v
    return v, u


class TileIndex:
    """Tiles over a transcripts table, rasterised lazily one at a time.

    Parameters
    ----------
    transcripts
        Canonical transcripts table (``gene, x, y[, z, cell_id, overlaps_nucleus, fov]``, µm),
        or a :class:`~stfield.data.shards.ShardStore` (out-of-core: the store's non-overlapping
        windows are the tiles and :meth:`rasterise` reads only tile ``i``'s shard; see
        :meth:`from_shards`).
    config
        Pixel size, tile size and channel options (:class:`RasterConfig`).
    genes
        Gene channel order. Default: the observed genes (category order when ``gene`` is
        categorical, else sorted; a store's genes). Molecules of other genes are ignored.
    cells
        Optional cells table (``cell_id`` column or index, ``x``, ``y`` in µm). Default: centroids
        estimated from the molecules (:func:`estimate_centroids`); none when there is no
        ``cell_id`` column.
    stride
        Window stride in pixels (default ``tile``: non-overlapping windows).
    by
        ``"window"`` (sliding windows over the whole slide) or ``"fov"`` (windows inside each
        field of view, from the ``fov`` column).
    min_molecules
        Tiles holding fewer molecules are skipped.
    """

    def __init__(
        self,
        transcripts: pd.DataFrame,
        config: RasterConfig | None = None,
        *,
        genes: Sequence[str] | None = None,
        cells: pd.DataFrame | None = None,
        stride: int | None = None,
        by: str = "window",
        min_molecules: int = 1,
        where: str = "transcripts",
    ) -> None:
        from .shards import ShardStore

        self._store: ShardStore | None = None
        if isinstance(transcripts, ShardStore):
            self._init_store(transcripts, config, genes, cells, stride, by, min_molecules)
            return
        check_transcripts(transcripts, where)
        self.config = config = config if config is not None else RasterConfig()
        stride = config.tile if stride is None else int(stride)
        if stride < 1:
            raise input_error(f"stride must be >= 1 pixel, got {stride}", "stride")
        if by not in ("window", "fov"):
            raise input_error(f"unknown tiling {by!r}", "by", "use 'window' or 'fov'")
        if by == "fov" and TX_FOV not in transcripts.columns:
            raise input_error(
                f"by='fov' needs a {TX_FOV!r} column (columns: {list(transcripts.columns)[:8]})",
                where,
                "use by='window' or read the table with its fov column",
            )
        self.stride = stride
        self.by = by

        # genes -> channel index
        gene_col = transcripts[TX_GENE]
        if genes is None:
            if isinstance(gene_col.dtype, pd.CategoricalDtype):
                counts = gene_col.value_counts(sort=False)
                genes = [str(g) for g in gene_col.cat.categories if counts.get(g, 0) > 0]
            else:
                genes = sorted(map(str, pd.unique(gene_col.astype(str))))
        self.genes: list[str] = [str(g) for g in genes]
        if not self.genes:
            raise input_error("no genes to rasterise", where, "check the gene column / genes=")
        if len(set(self.genes)) != len(self.genes):
            raise input_error("duplicated gene names in genes=", "genes", "give each gene once")
        lookup = pd.Index(self.genes)
        gidx = lookup.get_indexer(gene_col.astype(str))
        keep = gidx >= 0
        self.n_dropped = int((~keep).sum())
        if self.n_dropped:
            logger.info("%d molecules of genes outside the channel list ignored", self.n_dropped)
        if not keep.any():
            raise input_error(
                "no molecule belongs to the requested genes",
                where,
                "check that genes= matches the table's gene names",
            )
        self._gene = gidx[keep].astype(np.int64)
        self._x = transcripts[TX_X].to_numpy(np.float64)[keep]
        self._y = transcripts[TX_Y].to_numpy(np.float64)[keep]
        self.n_molecules = int(keep.sum())

        # centroids
        if cells is not None:
            cent = _cells_table(cells)
        elif TX_CELL in transcripts.columns:
            cent = estimate_centroids(transcripts, where)
        else:
            cent = None

        # tiles
        size_um = config.tile_um
        stride_um = stride * config.pixel_size
        xmin, ymin = float(self._x.min()), float(self._y.min())
        bin_um = min(size_um, max(stride_um, size_um / 8))
        # Non-overlapping windows partition the molecules (one window each, see
        # window_index); overlapping ones are found by bounds through a grid of bins.
        partition = stride == config.tile
        self._grid = None if partition else _Grid(self._x, self._y, xmin, ymin, bin_um)
        self._init_centroids(cent, xmin, ymin, bin_um, where)

        self._fov = None
        if by == "window":
            origins, n_mol, tile_of = _windows(
                self._x, self._y, xmin, ymin, size_um, stride_um, partition
            )
            fovs = None
        else:
            self._fov = transcripts[TX_FOV].to_numpy()[keep]
            origins, n_mol, fovs, tile_of = self._fov_windows(size_um, stride_um, partition)
        good = n_mol >= max(int(min_molecules), 1)
        self.origins = origins[good]
        self.fovs = fovs[good] if fovs is not None else None
        self.tile_molecules = n_mol[good]
        self._members = None if tile_of is None else _members(tile_of, good)
        if len(self.origins) == 0:
            raise input_error(
                f"no tile holds >= {min_molecules} molecule(s)",
                where,
                "lower min_molecules or check the coordinates",
            )

    def _fov_windows(
        self, size_um: float, stride_um: float, partition: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Windows inside each field of view, each gridded from the fov's own minimum."""
        codes, uniques = pd.factorize(self._fov, sort=True)
        parts, counts, fov_parts = [], [], []
        tile_of = np.empty(len(self._x), dtype=np.int64) if partition else None
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
        for f in range(len(uniques)):
            sel = order[bounds[f] : bounds[f + 1]]
            fx, fy = self._x[sel], self._y[sel]
            o, c, t = _windows(fx, fy, fx.min(), fy.min(), size_um, stride_um, partition)
            if tile_of is not None:
                tile_of[sel] = t + sum(len(p) for p in parts)
            parts.append(o)
            counts.append(c)
            fov_parts.append(np.full(len(c), uniques[f], dtype=object))
        return np.concatenate(parts), np.concatenate(counts), np.concatenate(fov_parts), tile_of

    def _init_centroids(
        self, cent: pd.DataFrame | None, xmin: float, ymin: float, bin_um: float, where: str
    ) -> None:
        if cent is None:
            cent = pd.DataFrame({"x": [], "y": [], "source": []}, index=pd.Index([], name=TX_CELL))
            warnings.warn(
                f"{where}: no cell_id column and no cells table; the centroid channels are empty",
                stacklevel=3,
            )
        self.centroids: pd.DataFrame = cent
        self._cid = cent.index.to_numpy(dtype=object)
        self._cx = cent["x"].to_numpy(np.float64)
        self._cy = cent["y"].to_numpy(np.float64)
        cxmin = min(xmin, float(self._cx.min(initial=xmin)))
        cymin = min(ymin, float(self._cy.min(initial=ymin)))
        self._cgrid = _Grid(self._cx, self._cy, cxmin, cymin, bin_um)

    def _init_store(
        self,
        store: ShardStore,
        config: RasterConfig | None,
        genes: Sequence[str] | None,
        cells: pd.DataFrame | None,
        stride: int | None,
        by: str,
        min_molecules: int,
    ) -> None:
        """Tiles of a shard store: its windows, molecules read from disk one tile at a time."""
        where = str(store.path)
        self.config = config = config if config is not None else store.raster_config()
        if not math.isclose(config.tile_um, store.tile_um, rel_tol=1e-9):
            raise input_error(
                f"tile of {config.tile_um:g} µm ({config.tile} px x {config.pixel_size:g} µm) "
                f"but the store's windows are {store.tile_um:g} µm",
                where,
                "choose pixel_size and tile with tile * pixel_size equal to the store's tile_um, "
                "or rewrite the store",
            )
        if by != "window" or (stride is not None and int(stride) != config.tile):
            raise input_error(
                "a shard store holds non-overlapping windows only",
                where,
                "drop stride=/by=, or tile an in-memory table instead",
            )
        self.stride, self.by, self.fovs, self._fov = config.tile, "window", None, None
        self._store = store
        self._remap(store, genes, where)
        good = store.tile_molecules >= max(int(min_molecules), 1)
        self._tiles = np.flatnonzero(good)
        self.origins = store.origins[good]
        self.tile_molecules = store.tile_molecules[good]
        if len(self.origins) == 0:
            raise input_error(
                f"no tile holds >= {min_molecules} molecule(s)", where, "lower min_molecules"
            )
        if cells is not None:
            cent = _cells_table(cells)
        else:
            cent = store.centroids if store.manifest.get("n_cells") else None
        # non-overlapping windows: centroid bins of one tile, as in the in-memory path
        self._init_centroids(cent, *store.origin, config.tile_um, where)

    def _remap(self, store: ShardStore, genes: Sequence[str] | None, where: str) -> None:
        """Channel genes of a store-backed index; other genes' molecules are dropped on read."""
        self.genes = list(store.genes) if genes is None else [str(g) for g in genes]
        if not self.genes:
            raise input_error("no genes to rasterise", where, "check genes=")
        if len(set(self.genes)) != len(self.genes):
            raise input_error("duplicated gene names in genes=", "genes", "give each gene once")
        self._gene_map = None
        kept = store.gene_counts
        if self.genes != list(store.genes):
            self._gene_map = pd.Index(self.genes).get_indexer(store.genes).astype(np.int64)
            kept = store.gene_counts[self._gene_map >= 0]
        self.n_molecules = int(kept.sum())
        self.n_dropped = int(store.gene_counts.sum()) - self.n_molecules
        if self.n_molecules == 0:
            raise input_error(
                "no molecule belongs to the requested genes",
                where,
                "check that genes= matches the store's gene names",
            )

    @classmethod
    def from_shards(
        cls,
        store: ShardStore | str | os.PathLike[str],
        config: RasterConfig | None = None,
        **kwargs: Any,
    ) -> TileIndex:
        """A tile index over a shard store (a :class:`~stfield.data.shards.ShardStore` or its
        folder) written by :func:`~stfield.data.shards.write_tile_shards`.

        Tiles are the store's non-overlapping windows (``config.tile_um`` must equal the
        store's ``tile_um``; default config: the one recorded at writing); :meth:`rasterise`
        reads one parquet row group per tile. ``genes``, ``cells`` and ``min_molecules`` work as
        for a DataFrame; ``min_molecules`` counts all of a tile's molecules.
        """
        from .shards import ShardStore

        if not isinstance(store, ShardStore):
            store = ShardStore(store)
        return cls(store, config, **kwargs)

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return int(self.origins.shape[0])

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def n_channels(self) -> int:
        return self.config.n_channels(self.n_genes)

    def bounds(self, i: int) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of tile ``i`` in µm (max exclusive)."""
        x0, y0 = self.origins[i]
        s = self.config.tile_um
        return float(x0), float(y0), float(x0 + s), float(y0 + s)

    def _molecule_ids(self, i: int) -> np.ndarray:
        if self._members is not None:
            order, bounds = self._members
            return order[bounds[i] : bounds[i + 1]]
        x0, y0 = self.origins[i]
        s = self.config.tile_um
        cand = self._grid.query(x0, y0, x0 + s, y0 + s)
        x, y = self._x[cand], self._y[cand]
        ok = (x >= x0) & (x < x0 + s) & (y >= y0) & (y < y0 + s)
        if self.fovs is not None:
            ok &= self._fov[cand] == self.fovs[i]
        return np.sort(cand[ok])

    def _pixels(self, x: np.ndarray, y: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        x0, y0 = self.origins[i]
        ps, n = self.config.pixel_size, self.config.tile
        col = np.floor((x - x0) / ps).astype(np.int64)
        row = np.floor((y - y0) / ps).astype(np.int64)
        return np.clip(row, 0, n - 1), np.clip(col, 0, n - 1)

    def molecules(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(gene_index, x, y)`` of the molecules in tile ``i``."""
        if self._store is not None:
            return self._stored_molecules(i)
        ids = self._molecule_ids(i)
        return self._gene[ids], self._x[ids], self._y[ids]

    def _stored_molecules(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gene, x, y = self._store.molecules(int(self._tiles[i]))
        if self._gene_map is not None:
            gene = self._gene_map[gene]
            keep = gene >= 0
            gene, x, y = gene[keep], x[keep], y[keep]
        return gene, x, y

    def _centroid_ids(self, i: int) -> np.ndarray:
        """Sorted indices of the centroids inside tile ``i``.

        Sorted, so that when two centroids share a pixel the later cell (in ``centroids``
        order) is the one written, whatever the centroid grid's bin layout.
        """
        x0, y0 = self.origins[i]
        s = self.config.tile_um
        cand = self._cgrid.query(x0, y0, x0 + s, y0 + s)
        cx, cy = self._cx[cand], self._cy[cand]
        ok = (cx >= x0) & (cx < x0 + s) & (cy >= y0) & (cy < y0 + s)
        return np.sort(cand[ok])

    def cells(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cell_id, row, col)`` of the centroids inside tile ``i`` (untransformed pixels)."""
        cand = self._centroid_ids(i)
        row, col = self._pixels(self._cx[cand], self._cy[cand], i)
        return self._cid[cand], row, col

    # -------------------------------------------------------------- rasterise
    def rasterise(self, i: int, flip: bool = False, k: int = 0) -> np.ndarray:
        """Tile ``i`` as a ``float32`` array ``(C, I, I)``; ``flip``/``k`` augment it."""
        cfg = self.config
        n = cfg.tile
        t = self.n_genes
        img = np.zeros((self.n_channels, n, n), dtype=np.float32)
        gene, x, y = self.molecules(i)
        row, col = self._pixels(x, y, i)
        row, col = transform_pixels(row, col, n, flip, k)
        flat = gene * (n * n) + row * n + col
        plane = img.reshape(-1)
        if cfg.mode == "binary":
            plane[flat] = 1.0
        else:
            counts = np.bincount(flat, minlength=t * n * n)[: t * n * n]
            plane[: t * n * n] = np.minimum(counts, cfg.count_cap) / cfg.count_cap

        x0, y0 = self.origins[i]
        cand = self._centroid_ids(i)
        cx, cy = self._cx[cand], self._cy[cand]
        if cx.size:
            crow, ccol = self._pixels(cx, cy, i)
            crow, ccol = transform_pixels(crow, ccol, n, flip, k)
            v, u = transform_coords(
                (cy - y0) / cfg.pixel_size, (cx - x0) / cfg.pixel_size, n, flip, k
            )
            p = np.stack([2.0 * u / n - 1.0, 2.0 * v / n - 1.0], axis=1)  # (x, y) in [-1, 1]
            img[t, crow, ccol] = 1.0
            c = t + 1
            if cfg.include_coords:
                img[c : c + 2, crow, ccol] = p.T
                c += 2
            if cfg.n_freqs:
                img[c:, crow, ccol] = positional_encoding(p, cfg.n_freqs).T
        return img

    def summary(self) -> dict[str, Any]:
        out = {
            "n_tiles": len(self),
            "n_genes": self.n_genes,
            "n_channels": self.n_channels,
            "n_molecules": self.n_molecules,
            "n_cells": len(self.centroids),
            "by": self.by,
            "stride": self.stride,
            **self.config.to_dict(),
        }
        if self._store is not None:
            out["shards"] = str(self._store.path)
        return out


class TileDataset:
    """A torch-style dataset over some tiles of a :class:`TileIndex`.

    ``__getitem__`` returns a ``float32`` torch tensor ``(C, I, I)``; with ``augment=True`` a
    random horizontal flip and quarter turn (from a generator seeded with ``seed``) is applied
    to the coordinates before rasterising.
    """

    def __init__(
        self,
        index: TileIndex,
        tiles: Sequence[int] | np.ndarray | None = None,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.index = index
        self.tiles = np.arange(len(index)) if tiles is None else np.asarray(tiles, dtype=np.int64)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(self.tiles.size)

    def __getitem__(self, j: int):
        import torch

        flip, k = False, 0
        if self.augment:
            flip = bool(self.rng.integers(2))
            k = int(self.rng.integers(4))
        return torch.from_numpy(self.index.rasterise(int(self.tiles[j]), flip=flip, k=k))

    def batches(self, batch_size: int, shuffle: bool = False, drop_last: bool = False):
        """Yield stacked batches ``(B, C, I, I)`` (no DataLoader: deterministic, no workers)."""
        import torch

        order = self.rng.permutation(len(self)) if shuffle else np.arange(len(self))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            if drop_last and len(idx) < batch_size and s > 0:
                break
            yield torch.stack([self[int(j)] for j in idx])
