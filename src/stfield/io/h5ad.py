"""AnnData ``.h5ad`` reader that normalises counts to CSR float32 and coordinates to µm.

Unit resolution, in order:

1. ``pixel_size_um`` given by the caller: coordinates are pixels, multiplied by it;
2. ``uns["stfield"]["spatial_unit"]`` (written by stfield) or a top-level ``uns["spatial_unit"]``
   is trusted (``"um"``; or pixels with ``uns["stfield"]["pixel_size_um"]``);
3. scanpy's Visium layout (``uns["spatial"][library]["scalefactors"]["spot_diameter_fullres"]``,
   ``obsm["spatial"]`` in full-resolution pixels): µm per pixel = 65 / spot_diameter_fullres
   (the diameter is that of a theoretical 65 µm spot; see :mod:`stfield.io.visium`);
4. otherwise µm is assumed and recorded (``uns["stfield"]["unit_source"] == "assumed"``), with a
   warning when the coordinates look like pixels.
"""

from __future__ import annotations

import warnings
from typing import Any

import anndata as ad
import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._constants import SPATIAL_KEY, UNS_KEY
from .._errors import StfieldInputError, input_error
from .._validate import check_coordinates, check_counts, check_unique
from ._common import PathLike, as_path, control_mask, unit_scale, uns_record
from .visium import VISIUM_SPOT_DIAMETER_UM

#: Extent (µm) beyond which "µm" coordinates are implausible for one slide (3 cm).
PLAUSIBLE_EXTENT_UM = 30_000.0


def _looks_like_pixels(coords: np.ndarray) -> str | None:
    """Reason to suspect pixel coordinates, or ``None``."""
    if coords.size == 0:
        return None
    extent = float(np.max(np.ptp(coords, axis=0)))
    if extent > PLAUSIBLE_EXTENT_UM:
        return f"they span {extent:,.0f} units, more than a slide in µm"
    if extent > 1000 and np.all(coords == np.round(coords)):
        return f"they are all whole numbers spanning {extent:,.0f} units, typical of image pixels"
    return None


def _visium_library(adata: AnnData, library_id: str | None) -> tuple[str, dict[str, Any]] | None:
    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, dict) or not spatial:
        return None
    libs = [k for k, v in spatial.items() if isinstance(v, dict) and "scalefactors" in v]
    if library_id is not None:
        libs = [k for k in libs if k == library_id]
    if not libs:
        return None
    if len(libs) > 1:
        raise input_error(
            f"uns['spatial'] holds several Visium libraries {libs}",
            "read_h5ad",
            "pass library_id=<one of them>",
        )
    sf = spatial[libs[0]]["scalefactors"]
    if not sf.get("spot_diameter_fullres"):
        return None
    return libs[0], spatial[libs[0]]


def read_h5ad(
    path: PathLike,
    *,
    pixel_size_um: float | None = None,
    library_id: str | None = None,
    keep_controls: bool = False,
) -> AnnData:
    """Read an ``.h5ad`` file and bring it to stfield's contract.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    pixel_size_um
        Force the coordinates to be read as pixels of this size (µm).
    library_id
        Visium library to take scale factors from when ``uns["spatial"]`` holds several.
    keep_controls
        Keep features matching the control-probe pattern (e.g. MERFISH ``Blank-*``).

    Returns
    -------
    AnnData
        ``.X`` as CSR float32, ``obsm["spatial"]`` float64 µm, ``uns["stfield"]`` recording the
        unit, how it was decided (``unit_source``) and the pixel size if one was applied.
    """
    p = as_path(path)
    where = str(p)
    if p.is_dir():
        raise input_error("expected an .h5ad file, got a folder", where, "pass the file path")
    try:
        adata = ad.read_h5ad(p)
    except MemoryError:
        raise
    except Exception as exc:  # h5py/anndata raise many types for damaged files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise input_error(
            f"cannot read the h5ad file (corrupt, truncated or not AnnData?): {msg}",
            where,
            "re-write it with AnnData.write_h5ad or re-copy it",
        ) from None

    if adata.X is None:
        raise input_error("adata.X is empty", where, "store the expression matrix in .X")
    X = adata.X
    if not sp.issparse(X):
        X = np.asarray(X)
    check_counts(X, f"{where} (X)")
    X = X.tocsr() if sp.issparse(X) else sp.csr_matrix(X)
    adata.X = X.astype(np.float32) if X.dtype != np.float32 else X
    check_unique(adata.obs_names, where, "spot")
    check_unique(adata.var_names, where, "gene")
    if SPATIAL_KEY not in adata.obsm:
        raise input_error(
            f"obsm[{SPATIAL_KEY!r}] is missing (obsm keys: {list(adata.obsm)})",
            where,
            f"store spot coordinates as adata.obsm[{SPATIAL_KEY!r}] (x, y) before reading",
        )
    coords = check_coordinates(
        np.asarray(adata.obsm[SPATIAL_KEY]), f"{where} obsm[{SPATIAL_KEY!r}]", adata.n_obs
    )

    prior = adata.uns.get(UNS_KEY)
    prior = dict(prior) if isinstance(prior, dict) else {}
    declared = prior.get("spatial_unit", adata.uns.get("spatial_unit"))
    extra: dict[str, Any] = {k: v for k, v in prior.items() if k not in {"format", "source"}}
    extra.pop("spatial_unit", None)
    extra.pop("pixel_size_um", None)
    extra.pop("unit_source", None)
    scale, pix = 1.0, None
    visium = None if pixel_size_um is not None else _visium_library(adata, library_id)
    if pixel_size_um is not None:
        scale, pix = unit_scale("px", pixel_size_um, where)
        unit_source = "pixel_size_um"
    elif declared is not None:
        is_px = str(declared).strip().lower() in {"px", "pixel", "pixels"}
        try:
            scale, pix = unit_scale(
                str(declared), prior.get("pixel_size_um") if is_px else None, where
            )
        except StfieldInputError as exc:
            raise input_error(
                f"declared spatial_unit {declared!r} cannot be converted to µm ({exc})",
                where,
                "pass pixel_size_um=<µm per pixel>",
            ) from None
        unit_source = "declared"
        if not is_px and prior.get("pixel_size_um") is not None:
            pix = float(prior["pixel_size_um"])  # a conversion applied when the file was made
    elif visium is not None:
        lib, entry = visium
        diameter = float(entry["scalefactors"]["spot_diameter_fullres"])
        scale = pix = VISIUM_SPOT_DIAMETER_UM / diameter
        sf = dict(entry["scalefactors"])
        for key in ("tissue_hires_scalef", "tissue_lowres_scalef", "regist_target_img_scalef"):
            if key in sf:
                sf[key] = float(sf[key]) / scale
        for key in ("spot_diameter_fullres", "fiducial_diameter_fullres"):
            if key in sf:
                sf[key] = float(sf[key]) * scale
        entry["scalefactors"] = sf
        extra["library_id"] = lib
        unit_source = "visium_scalefactors"
    else:
        unit_source = "assumed"
        reason = _looks_like_pixels(coords)
        if reason:
            warnings.warn(
                f"{where}: obsm['spatial'] has no recorded unit and is assumed to be in µm, but "
                f"{reason}. If these are pixels, read with pixel_size_um=<µm per pixel>.",
                UserWarning,
                stacklevel=2,
            )
    adata.obsm[SPATIAL_KEY] = np.ascontiguousarray(coords * scale, dtype=np.float64)
    if "spatial_unit" in adata.uns and declared is not None:
        del adata.uns["spatial_unit"]
    if not keep_controls:
        keep = ~control_mask(adata.var_names)
        if not keep.all():
            adata = adata[:, keep].copy()
    adata.uns[UNS_KEY] = uns_record("h5ad", p, pix, unit_source=unit_source, **extra)
    return adata
