"""10x Genomics feature-barcode matrices (HDF5 and Matrix Market), shared by Visium and Xenium.

The HDF5 file stores a genes x barcodes CSC matrix (``matrix/data, indices, indptr, shape``);
its arrays are exactly those of a barcodes x genes CSR matrix, so no copy or densification is
needed. Gene symbols may repeat (e.g. a few mouse symbols); they are made unique the way
``AnnData.var_names_make_unique`` does, keeping the Ensembl ids in ``var["gene_ids"]``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from anndata.utils import make_index_unique

from .._errors import input_error
from ._common import READ_ERRORS, find_file, read_csv

#: 10x ``feature_type`` of genes; Xenium's controls have other types ("Negative Control Probe",
#: "Negative Control Codeword", "Blank Codeword", "Unassigned Codeword", "Genomic Control", ...).
GENE_EXPRESSION = "Gene Expression"


def _strings(ds: h5py.Dataset) -> np.ndarray:
    if ds.dtype.kind == "S":
        return np.char.decode(ds[:], "utf-8")
    if ds.dtype.kind == "O":
        return np.asarray(ds.asstr()[:], dtype=object).astype(str)
    return ds[:].astype(str)


def _finish(
    X: sp.csr_matrix,
    barcodes: np.ndarray,
    gene_ids: np.ndarray,
    names: np.ndarray,
    types: np.ndarray,
    gene_expression_only: bool,
) -> tuple[sp.csr_matrix, pd.Index, pd.DataFrame]:
    var = pd.DataFrame({"gene_ids": gene_ids, "feature_types": types})
    if gene_expression_only:
        keep = np.flatnonzero(types == GENE_EXPRESSION)
        if keep.size < len(types):
            X = X[:, keep]
            var = var.iloc[keep]
            names = names[keep]
    var.index = make_index_unique(pd.Index(names.astype(str), dtype=object))
    return X, pd.Index(barcodes.astype(str), dtype=object), var


def read_10x_h5(
    path: Path, *, gene_expression_only: bool = True, where: str | None = None
) -> tuple[sp.csr_matrix, pd.Index, pd.DataFrame]:
    """Read a 10x ``*_feature_bc_matrix.h5`` / ``cell_feature_matrix.h5``.

    Returns ``(X barcodes x features CSR float32, barcodes, var)`` with ``var`` indexed by gene
    symbol and holding ``gene_ids`` and ``feature_types``.
    """
    where = where or str(path)
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:  # Cell Ranger / Space Ranger / Xenium >= v3 layout
                g = f["matrix"]
                feats = g["features"]
                gene_ids = _strings(feats["id"])
                names = _strings(feats["name"])
                types = (
                    _strings(feats["feature_type"])
                    if "feature_type" in feats
                    else np.full(len(names), GENE_EXPRESSION)
                )
            else:  # legacy v2 layout: one group per genome
                groups = [k for k in f if isinstance(f[k], h5py.Group)]
                if len(groups) != 1:
                    raise KeyError("group 'matrix'")
                g = f[groups[0]]
                gene_ids = _strings(g["genes"])
                names = _strings(g["gene_names"])
                types = np.full(len(names), GENE_EXPRESSION)
            n_genes, n_barcodes = (int(v) for v in g["shape"][:])
            data = g["data"][:]
            indices = g["indices"][:]
            indptr = g["indptr"][:]
            barcodes = _strings(g["barcodes"])
    except KeyError as exc:
        raise input_error(
            f"not a 10x feature-barcode matrix (missing {exc.args[0] if exc.args else exc})",
            where,
            "pass the *_feature_bc_matrix.h5 / cell_feature_matrix.h5 written by the 10x pipeline",
        ) from None
    except READ_ERRORS as exc:
        raise input_error(
            f"cannot read the HDF5 file (corrupt or truncated?): {exc}",
            where,
            "re-copy the file from the instrument / pipeline output",
        ) from None
    if len(names) != n_genes or len(barcodes) != n_barcodes or len(indptr) != n_barcodes + 1:
        raise input_error(
            f"inconsistent matrix: shape {(n_genes, n_barcodes)}, {len(names)} features, "
            f"{len(barcodes)} barcodes",
            where,
            "the file is damaged; re-copy it",
        )
    try:
        X = sp.csr_matrix(
            (data.astype(np.float32, copy=False), indices, indptr), shape=(n_barcodes, n_genes)
        )
    except ValueError as exc:
        raise input_error(
            f"inconsistent sparse arrays ({exc})", where, "re-copy the file"
        ) from None
    return _finish(X, barcodes, gene_ids, names, types, gene_expression_only)


def read_10x_mtx(
    folder: Path, *, gene_expression_only: bool = True, where: str | None = None
) -> tuple[sp.csr_matrix, pd.Index, pd.DataFrame]:
    """Read a 10x Matrix Market folder (``matrix.mtx.gz``, ``features.tsv.gz``, ``barcodes.tsv.gz``)."""
    where = where or str(folder)
    mtx = find_file(folder, ["matrix.mtx.gz", "matrix.mtx"], "Matrix Market matrix")
    feat = find_file(
        folder, ["features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"], "features table"
    )
    bc = find_file(folder, ["barcodes.tsv.gz", "barcodes.tsv"], "barcodes list")
    features = read_csv(feat, sep="\t", header=None, dtype=str, keep_default_na=False)
    barcodes = read_csv(bc, sep="\t", header=None, dtype=str, keep_default_na=False)[0].to_numpy()
    try:
        opener = gzip.open if mtx.name.endswith(".gz") else open
        with opener(mtx, "rb") as fh:
            M = scipy.io.mmread(fh)
    except (ValueError, IndexError, *READ_ERRORS) as exc:
        raise input_error(
            f"cannot read the Matrix Market file (corrupt or truncated?): {exc}",
            str(mtx),
            "re-copy the file from the pipeline output",
        ) from None
    M = sp.coo_matrix(M)
    if M.shape != (len(features), len(barcodes)):
        raise input_error(
            f"matrix shape {M.shape} does not match {len(features)} features x "
            f"{len(barcodes)} barcodes",
            where,
            "features.tsv.gz, barcodes.tsv.gz and matrix.mtx.gz must come from the same run",
        )
    X = M.T.tocsr().astype(np.float32)
    gene_ids = features[0].to_numpy()
    names = features[1].to_numpy() if features.shape[1] > 1 else gene_ids
    types = (
        features[2].to_numpy() if features.shape[1] > 2 else np.full(len(names), GENE_EXPRESSION)
    )
    return _finish(X, barcodes, gene_ids, names, types.astype(str), gene_expression_only)
