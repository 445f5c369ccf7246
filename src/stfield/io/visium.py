"""10x Visium (Space Ranger) and Visium HD readers.

Space Ranger writes spot centres in full-resolution image pixels. ``spot_diameter_fullres`` is
the pixel diameter of a *theoretical 65 µm spot* (10x's definition; the printed spots are 55 µm
wide, 100 µm apart), so ``µm per pixel = 65 / spot_diameter_fullres`` (or ``microns_per_pixel``
when the scale-factor file has it, as Visium HD's does). On the real mouse-brain sample in
tests/data/io this puts every spot on the 100 µm hexagonal array to within 1%; 55 would put
neighbouring spots 84 µm apart, which is impossible. ``obsm["spatial"]`` is converted to µm; the
scanpy-style ``uns["spatial"][library_id]["scalefactors"]`` are rescaled accordingly (the
``tissue_*_scalef`` factors then map µm to image pixels), so ``scanpy.pl.spatial`` still overlays
spots on the images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import input_error
from ._common import (
    PathLike,
    align_to,
    as_path,
    build_adata,
    describe_folder,
    find_file,
    is_parquet,
    not_found,
    read_csv,
    read_parquet,
    require_columns,
)
from ._tenx import read_10x_h5, read_10x_mtx

#: Diameter (µm) of the theoretical spot whose pixel size is ``spot_diameter_fullres``.
VISIUM_SPOT_DIAMETER_UM = 65.0

_POSITION_COLUMNS = [
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
]
_POSITION_FILES = [
    "spatial/tissue_positions.csv",
    "spatial/tissue_positions.parquet",
    "spatial/tissue_positions_list.csv",
]


def _visium_root(path: Path, matrix_names: tuple[str, ...]) -> Path:
    """The folder holding ``spatial/`` and the matrix (``outs/`` is entered when present)."""
    if path.is_file():
        if path.name in matrix_names:
            return path.parent
        raise input_error(
            f"expected a Space Ranger output folder or one of {list(matrix_names)}, got a file",
            str(path),
            "pass the 'outs' folder of Space Ranger",
        )
    if path.name in matrix_names:  # the Matrix Market folder itself
        return path.parent
    if (path / "outs").is_dir() and not (path / "spatial").is_dir():
        return path / "outs"
    if path.name == "spatial" and path.parent.joinpath(matrix_names[0]).exists():
        return path.parent
    return path


def _read_matrix(
    root: Path, counts_file: str, keep_controls: bool
) -> tuple[Any, pd.Index, pd.DataFrame, Path]:
    h5 = root / counts_file
    if h5.is_file():
        X, barcodes, var = read_10x_h5(h5, gene_expression_only=True)
        return X, barcodes, var, h5
    mtx_dir = root / counts_file.removesuffix(".h5")
    if mtx_dir.is_dir():
        X, barcodes, var = read_10x_mtx(mtx_dir, gene_expression_only=True)
        return X, barcodes, var, mtx_dir
    raise not_found(
        root,
        f"no count matrix found (looked for {counts_file} and {mtx_dir.name}/; the folder holds: "
        f"{describe_folder(root)})",
        "pass the Space Ranger 'outs' folder (or counts_file='raw_feature_bc_matrix.h5')",
    )


def _read_positions(root: Path) -> tuple[pd.DataFrame, Path]:
    path = find_file(root, _POSITION_FILES, "spot positions file (tissue_positions)")
    where = str(path)
    if is_parquet(path):
        pos = read_parquet(path, None).to_pandas(ignore_metadata=True)
    elif path.name == "tissue_positions_list.csv":  # Space Ranger 1.x: no header
        pos = read_csv(path, header=None, dtype={0: str})
        if pos.shape[1] != 6:
            raise input_error(
                f"expected 6 columns ({', '.join(_POSITION_COLUMNS)}), found {pos.shape[1]}",
                where,
                "pass an unmodified Space Ranger tissue_positions_list.csv",
            )
        pos.columns = _POSITION_COLUMNS
    else:
        pos = read_csv(path, dtype={"barcode": str})
    require_columns(list(pos.columns), _POSITION_COLUMNS, where)
    pos["barcode"] = pos["barcode"].astype(str)
    return pos, path


def _read_scalefactors(root: Path) -> tuple[dict[str, Any], Path]:
    path = find_file(root, ["spatial/scalefactors_json.json"], "scale factors file")
    try:
        sf = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise input_error(
            f"cannot read the scale factors ({exc})", str(path), "re-copy the file"
        ) from None
    if not isinstance(sf, dict):
        raise input_error("scale factors must be a JSON object", str(path), "re-copy the file")
    return sf, path


def _microns_per_pixel(
    sf: dict[str, Any], where: str, pixel_size_um: float | None, bin_size_um: float | None = None
) -> float:
    if pixel_size_um is not None:
        value = float(pixel_size_um)
    elif sf.get("microns_per_pixel"):
        value = float(sf["microns_per_pixel"])
    elif bin_size_um is not None and sf.get("spot_diameter_fullres"):
        value = float(bin_size_um) / float(sf["spot_diameter_fullres"])
    elif sf.get("spot_diameter_fullres"):
        value = VISIUM_SPOT_DIAMETER_UM / float(sf["spot_diameter_fullres"])
    else:
        raise input_error(
            "scale factors lack 'spot_diameter_fullres' and 'microns_per_pixel'",
            where,
            "pass pixel_size_um=<µm per full-resolution pixel>",
        )
    if not (np.isfinite(value) and value > 0):
        raise input_error(f"invalid pixel size {value}", where, "pass pixel_size_um explicitly")
    return value


def _scanpy_spatial(
    root: Path, sf: dict[str, Any], mpp: float, load_images: bool
) -> dict[str, Any]:
    scalefactors = dict(sf)
    for key in ("tissue_hires_scalef", "tissue_lowres_scalef", "regist_target_img_scalef"):
        if key in scalefactors:
            scalefactors[key] = float(scalefactors[key]) / mpp
    for key in ("spot_diameter_fullres", "fiducial_diameter_fullres"):
        if key in scalefactors:
            scalefactors[key] = float(scalefactors[key]) * mpp
    images: dict[str, np.ndarray] = {}
    if load_images:
        from matplotlib.image import imread

        for res in ("hires", "lowres"):
            png = root / "spatial" / f"tissue_{res}_image.png"
            if png.is_file():
                try:
                    images[res] = imread(png)
                except (OSError, ValueError, SyntaxError) as exc:
                    raise input_error(
                        f"cannot read the image ({exc})",
                        str(png),
                        "re-copy it or load_images=False",
                    ) from None
    return {"images": images, "scalefactors": scalefactors, "metadata": {}}


def _assemble(
    *,
    root: Path,
    X: Any,
    barcodes: pd.Index,
    var: pd.DataFrame,
    matrix_path: Path,
    pos: pd.DataFrame,
    pos_path: Path,
    mpp: float,
    sf: dict[str, Any],
    fmt: str,
    in_tissue_only: bool,
    keep_controls: bool,
    library_id: str,
    load_images: bool,
    uns_extra: dict[str, Any] | None = None,
) -> AnnData:
    where = str(root)
    idx = align_to(barcodes, pd.Index(pos["barcode"]), f"{pos_path} vs {matrix_path}", "positions")
    pos = pos.iloc[idx].reset_index(drop=True)
    if in_tissue_only:
        keep = np.flatnonzero(pos["in_tissue"].to_numpy() == 1)
        if keep.size < len(pos):
            X, barcodes, pos = X[keep], barcodes[keep], pos.iloc[keep].reset_index(drop=True)
    px = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(dtype=np.float64)
    obs = pos[["in_tissue", "array_row", "array_col"]].reset_index(drop=True)
    adata = build_adata(
        X,
        barcodes,
        var.index,
        px * mpp,
        fmt=fmt,
        source=root,
        where=where,
        pixel_size_um=mpp,
        obs=obs,
        var=var.reset_index(drop=True),
        keep_controls=keep_controls,
        uns_extra={"library_id": library_id, **(uns_extra or {})},
    )
    adata.uns["spatial"] = {library_id: _scanpy_spatial(root, sf, mpp, load_images)}
    return adata


def read_visium(
    path: PathLike,
    *,
    counts_file: str = "filtered_feature_bc_matrix.h5",
    in_tissue_only: bool = True,
    pixel_size_um: float | None = None,
    library_id: str | None = None,
    load_images: bool = True,
    keep_controls: bool = False,
) -> AnnData:
    """Read a 10x Visium Space Ranger output folder.

    Parameters
    ----------
    path
        The Space Ranger ``outs`` folder (or its parent, or the matrix file inside it). It must
        hold ``filtered_feature_bc_matrix.h5`` (or the ``filtered_feature_bc_matrix/`` Matrix
        Market folder), ``spatial/tissue_positions.csv`` (Space Ranger >= 2.0) or
        ``spatial/tissue_positions_list.csv`` (1.x, no header), and
        ``spatial/scalefactors_json.json``.
    counts_file
        Matrix file name, e.g. ``"raw_feature_bc_matrix.h5"`` to read every spot.
    in_tissue_only
        Keep only spots with ``in_tissue == 1``.
    pixel_size_um
        µm per full-resolution pixel; by default ``65 / spot_diameter_fullres``.
    library_id
        Key under ``uns["spatial"]``; defaults to the sample folder's name.
    load_images
        Load ``tissue_hires_image.png``/``tissue_lowres_image.png`` into ``uns["spatial"]``.
    keep_controls
        Keep features matching the control-probe pattern.

    Returns
    -------
    AnnData
        Spots x genes, CSR float32 counts, ``obsm["spatial"]`` = (pxl_col, pxl_row) in µm,
        ``obs`` with ``in_tissue, array_row, array_col``.
    """
    p = as_path(path)
    if p.is_file() and p.name.endswith("feature_bc_matrix.h5"):
        counts_file = p.name
    root = _visium_root(p, (counts_file, counts_file.removesuffix(".h5")))
    X, barcodes, var, matrix_path = _read_matrix(root, counts_file, keep_controls)
    pos, pos_path = _read_positions(root)
    sf, sf_path = _read_scalefactors(root)
    mpp = _microns_per_pixel(sf, str(sf_path), pixel_size_um)
    lib = library_id or (root.parent.name if root.name == "outs" else root.name)
    return _assemble(
        root=root,
        X=X,
        barcodes=barcodes,
        var=var,
        matrix_path=matrix_path,
        pos=pos,
        pos_path=pos_path,
        mpp=mpp,
        sf=sf,
        fmt="visium",
        in_tissue_only=in_tissue_only,
        keep_controls=keep_controls,
        library_id=lib,
        load_images=load_images,
    )


_SQUARE_RE = re.compile(r"^square_(\d{3})um$")


def hd_bin_folder(path: Path, bin_size: int | None) -> Path:
    """Resolve a Visium HD path (outs, ``binned_outputs`` or ``square_XXXum``) to a bin folder."""
    if path.is_file():
        path = path.parent.parent if path.parent.name == "spatial" else path.parent
    if _SQUARE_RE.match(path.name):
        if bin_size is None or int(_SQUARE_RE.match(path.name).group(1)) == bin_size:
            return path
        path = path.parent
    if (path / "binned_outputs").is_dir():
        path = path / "binned_outputs"
    elif (path / "outs" / "binned_outputs").is_dir():
        path = path / "outs" / "binned_outputs"
    size = 8 if bin_size is None else int(bin_size)
    folder = path / f"square_{size:03d}um"
    if not folder.is_dir():
        available = sorted(p.name for p in path.glob("square_*um") if p.is_dir())
        raise not_found(
            folder,
            f"no Visium HD bin folder for bin_size={size} (available: {available or 'none'}; "
            f"{path} holds: {describe_folder(path)})",
            "pass bin_size= one of the available sizes, or the Visium HD 'outs' folder",
        )
    return folder


def read_visium_hd(
    path: PathLike,
    *,
    bin_size: int | None = None,
    counts_file: str = "filtered_feature_bc_matrix.h5",
    in_tissue_only: bool = True,
    pixel_size_um: float | None = None,
    library_id: str | None = None,
    load_images: bool = False,
    keep_controls: bool = False,
) -> AnnData:
    """Read one bin size of a 10x Visium HD Space Ranger output.

    Parameters
    ----------
    path
        The Visium HD ``outs`` folder, its ``binned_outputs/`` folder, or one
        ``binned_outputs/square_XXXum/`` folder (holding ``filtered_feature_bc_matrix.h5``,
        ``spatial/tissue_positions.parquet`` and ``spatial/scalefactors_json.json``).
    bin_size
        Bin size in µm (2, 8, 16, ...); default 8, or the folder given.
    counts_file, in_tissue_only, library_id, load_images, keep_controls
        As in :func:`read_visium`.
    pixel_size_um
        µm per full-resolution pixel; by default ``microns_per_pixel`` of the scale factors.

    Returns
    -------
    AnnData
        Bins x genes, CSR float32 counts, ``obsm["spatial"]`` bin centres in µm,
        ``uns["stfield"]["bin_size_um"]``.
    """
    p = as_path(path)
    if p.is_file() and p.name.endswith("feature_bc_matrix.h5"):
        counts_file = p.name
    folder = hd_bin_folder(p, bin_size)
    X, barcodes, var, matrix_path = _read_matrix(folder, counts_file, keep_controls)
    pos, pos_path = _read_positions(folder)
    sf, sf_path = _read_scalefactors(folder)
    size_um = float(sf.get("bin_size_um") or int(_SQUARE_RE.match(folder.name).group(1)))
    mpp = _microns_per_pixel(sf, str(sf_path), pixel_size_um, bin_size_um=size_um)
    outs = folder.parent.parent
    lib = library_id or (outs.parent.name if outs.name == "outs" else outs.name)
    return _assemble(
        root=folder,
        X=X,
        barcodes=barcodes,
        var=var,
        matrix_path=matrix_path,
        pos=pos,
        pos_path=pos_path,
        mpp=mpp,
        sf=sf,
        fmt="visium_hd",
        in_tissue_only=in_tissue_only,
        keep_controls=keep_controls,
        library_id=lib,
        load_images=load_images,
        uns_extra={"bin_size_um": size_um},
    )
