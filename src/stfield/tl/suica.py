"""Scanpy-style SUICA verbs: take an AnnData, write results back (``copy=False`` contract).

Every verb validates its input first, then writes ``layers["stfield_*"]`` / ``obsm`` /
``uns["stfield"]`` and logs each key it adds. With ``copy=False`` the AnnData is modified in
place (``None`` is returned, except :func:`fit_suica`, which returns the fitted model); with
``copy=True`` a modified copy is returned and the input is left untouched.

The verbs fit on the expression they are given (``adata.X`` or ``layer``); normalise first with
:func:`stfield.pp.normalize_suica` to follow the paper's appendix G.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import SPATIAL_KEY, UNS_KEY
from .._errors import input_error
from .._validate import check_adata
from ..models.suica import SUICA

logger = logging.getLogger(__name__)

#: Keys written by the verbs of this module.
EMBEDDING_KEY = "stfield_suica_embedding"
IMPUTED_KEY = "stfield_imputed"
GENE_IMPUTED_KEY = "stfield_gene_imputed"
DENOISED_KEY = "stfield_denoised"
SPLIT_KEY = "stfield_split"

#: Options of :meth:`SUICA.__init__` accepted by the verbs (everything else goes to ``fit``).
_MODEL_OPTIONS = {
    "preset",
    "backbone",
    "backbone_kwargs",
    "latent_dim",
    "gae_hidden",
    "n_neighbors",
    "graph_normalization",
    "inr_loss",
    "dice_weight",
    "decoder_activation",
    "blend",
    "accelerator",
    "bf16",
    "seed",
}


def _expression(adata: AnnData, layer: str | None) -> sp.csr_matrix:
    X = adata.X if layer is None else adata.layers[layer]
    return X.tocsr() if sp.issparse(X) else sp.csr_matrix(np.asarray(X, dtype=np.float32))


def _coords(adata: AnnData) -> np.ndarray:
    return np.asarray(adata.obsm[SPATIAL_KEY], dtype=np.float64)


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    model_kw = {k: v for k, v in options.items() if k in _MODEL_OPTIONS}
    fit_kw = {k: v for k, v in options.items() if k not in _MODEL_OPTIONS}
    return model_kw, fit_kw


def _fit(
    X: sp.csr_matrix, coords: np.ndarray, genes: Sequence[str], options: dict[str, Any]
) -> SUICA:
    model_kw, fit_kw = _split_options(options)
    accepted = set(inspect.signature(SUICA.fit).parameters) - {"self", "X", "coords", "gene_names"}
    unknown = sorted(set(fit_kw) - accepted)
    if unknown:
        raise input_error(
            f"unknown SUICA option(s) {unknown}",
            "SUICA options",
            f"use model options {sorted(_MODEL_OPTIONS)} or fit options {sorted(accepted)}",
        )
    model = SUICA(**model_kw)
    return model.fit(X, coords, gene_names=list(genes), **fit_kw)


def _check_model(model: SUICA, adata: AnnData) -> None:
    if not isinstance(model, SUICA) or not model.is_fitted:
        raise input_error(
            f"model must be a fitted SUICA, got {model!r}",
            "model",
            "pass the result of stfield.tl.fit_suica or SUICA.load(path), or model=None",
        )
    if list(model.gene_names or []) != list(map(str, adata.var_names)):
        raise input_error(
            f"the model was fitted on {model.n_genes} genes that differ from adata's "
            f"{adata.n_vars} (names or order)",
            "model",
            "subset adata to model.gene_names (adata[:, model.gene_names]) or refit",
        )


def _uns(adata: AnnData) -> dict[str, Any]:
    uns = adata.uns.get(UNS_KEY)
    if not isinstance(uns, dict):
        uns = {}
        adata.uns[UNS_KEY] = uns
    return uns


def _model_params(model: SUICA) -> dict[str, Any]:
    params = {
        k: v
        for k, v in model.config().items()
        if k not in ("gene_names", "history", "timings_s", "fit_params")
    }
    fit = dict(model.fit_params)
    fit.pop("resolved_batch_sizes", None)
    params["fit"] = {k: ("none" if v is None else v) for k, v in fit.items()}
    params["final_loss"] = {k: float(v[-1]) for k, v in model.history.items() if v}
    params["gae_hidden"] = np.asarray(params["gae_hidden"])
    return {k: ("none" if v is None else v) for k, v in params.items()}


def _log_key(container: str, key: str, shape: tuple[int, ...] | None = None) -> None:
    suffix = f" {shape}" if shape is not None else ""
    logger.info("added %s[%r]%s", container, key, suffix)


def fit_suica(
    adata: AnnData,
    *,
    layer: str | None = None,
    key_added: str = EMBEDDING_KEY,
    copy: bool = False,
    **options: Any,
) -> SUICA | tuple[SUICA, AnnData]:
    """Fit SUICA on a slice and write the INR embedding of every spot.

    Parameters
    ----------
    adata
        Slice with counts in ``X`` (or ``layer``) and ``obsm["spatial"]`` in µm.
    layer
        Expression layer to fit; ``None`` uses ``adata.X``.
    key_added
        ``obsm`` key of the ``(n_spots, latent_dim)`` embedding.
    copy
        Return ``(model, modified copy)`` instead of writing into ``adata``.
    **options
        :class:`~stfield.models.SUICA` options (``preset``: ``"stfield"`` by default or
        ``"paper"`` for the published configuration; ``backbone``, ``backbone_kwargs``,
        ``latent_dim``, ``blend``, ``seed``, ``accelerator``, ...) and
        :meth:`~stfield.models.SUICA.fit` options (``epochs_gae``, ``lr_inr``, ``val_fraction``,
        ``patience``, ...).

    Returns
    -------
    The fitted model (``copy=False``) or ``(model, adata_copy)`` (``copy=True``).

    Writes ``obsm[key_added]`` and ``uns["stfield"]["suica"]`` (model and fit parameters, final
    losses).
    """
    check_adata(adata, layer=layer, min_spots=4)
    model = _fit(_expression(adata, layer), _coords(adata), adata.var_names, options)
    out = adata.copy() if copy else adata
    out.obsm[key_added] = model.embed(_coords(out))
    _log_key("obsm", key_added, out.obsm[key_added].shape)
    _uns(out)["suica"] = {**_model_params(model), "layer": layer or "X", "key_added": key_added}
    _log_key("uns", f"{UNS_KEY}/suica")
    return (model, out) if copy else model


def impute_spots(
    adata: AnnData,
    model: SUICA | None = None,
    *,
    split: Any = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    layer: str | None = None,
    key_added: str = IMPUTED_KEY,
    copy: bool = False,
    **options: Any,
) -> AnnData | None:
    """Spatial imputation: fit on the training spots, predict expression at every spot.

    Parameters
    ----------
    adata
        Slice with counts and ``obsm["spatial"]``.
    model
        A SUICA already fitted on the training spots; ``None`` fits one here.
    split
        Held-out spots: a :class:`stfield.bench.tasks.SpatialSplit`, an array of test indices,
        or a boolean test mask. ``None`` draws ``spatial_split(n, test_fraction, split_seed)``.
    test_fraction, split_seed
        Used when ``split`` is ``None``.
    layer
        Expression layer; ``None`` uses ``adata.X``.
    key_added
        Layer receiving the predictions (CSR float32, all spots).
    copy
        Return a modified copy instead of writing into ``adata``.
    **options
        SUICA model / fit options when ``model`` is ``None`` (see :func:`fit_suica`).

    Writes ``layers[key_added]``, ``obs["stfield_split"]`` (``"train"``/``"test"``) and
    ``uns["stfield"]["suica_impute_spots"]`` (parameters and the test indices).
    """
    check_adata(adata, layer=layer, min_spots=4)
    train, test = _resolve_split(adata.n_obs, split, test_fraction, split_seed)
    X, coords = _expression(adata, layer), _coords(adata)
    if model is None:
        model = _fit(X[train], coords[train], adata.var_names, options)
    else:
        _check_model(model, adata)
    out = adata.copy() if copy else adata
    out.layers[key_added] = model.predict(coords, sparse=True)
    _log_key("layers", key_added, out.layers[key_added].shape)
    labels = np.full(adata.n_obs, "train", dtype=object)
    labels[test] = "test"
    out.obs[SPLIT_KEY] = pd.Categorical(labels, categories=["train", "test"])
    _log_key("obs", SPLIT_KEY)
    _uns(out)["suica_impute_spots"] = {
        **_model_params(model),
        "layer": layer or "X",
        "key_added": key_added,
        "test_indices": test.astype(np.int64),
        "test_fraction": float(test.size / adata.n_obs),
        "split_seed": int(split_seed) if split is None else "given",
    }
    _log_key("uns", f"{UNS_KEY}/suica_impute_spots")
    return out if copy else None


def _resolve_split(
    n: int, split: Any, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if split is None:
        from ..bench.tasks import spatial_split

        s = spatial_split(n, test_fraction=test_fraction, seed=seed)
        return np.asarray(s.train), np.asarray(s.test)
    if hasattr(split, "train") and hasattr(split, "test"):
        train, test = (
            np.asarray(split.train, dtype=np.int64),
            np.asarray(split.test, dtype=np.int64),
        )
    else:
        arr = np.asarray(split)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise input_error(
                    f"boolean split mask has shape {arr.shape}, expected ({n},)", "split"
                )
            test = np.flatnonzero(arr)
        elif np.issubdtype(arr.dtype, np.integer) and arr.ndim == 1:
            test = np.unique(arr)
        else:
            raise input_error(
                f"split must be a SpatialSplit, test indices or a boolean mask, got {arr.dtype}",
                "split",
            )
        train = np.setdiff1d(np.arange(n), test)
    if train.size == 0 or test.size == 0:
        raise input_error("the split leaves no training or no test spot", "split")
    if train.min() < 0 or test.min() < 0 or max(train.max(), test.max()) >= n:
        raise input_error(f"split indices out of range for {n} spots", "split")
    if np.intersect1d(train, test).size:
        raise input_error("train and test spots overlap", "split")
    return train, test


def impute_genes(
    adata: AnnData,
    model: SUICA | None = None,
    *,
    mask: Any = None,
    fraction: float = 0.7,
    mask_seed: int = 0,
    layer: str | None = None,
    key_added: str = GENE_IMPUTED_KEY,
    copy: bool = False,
    **options: Any,
) -> AnnData | None:
    """Gene imputation: fit on the observed entries, predict every entry at every spot.

    Parameters
    ----------
    adata
        Slice with counts and ``obsm["spatial"]``.
    model
        A SUICA already fitted on the muted matrix; ``None`` fits one here.
    mask
        Muted entries: a :class:`stfield.bench.tasks.GeneMask`. ``None`` with ``fraction``
        mutes that fraction of the non-zero entries (``mute_entries(X, fraction, mask_seed)``);
        ``None`` with ``fraction=0`` fits the data as given (e.g. already-dropped-out counts).
    fraction, mask_seed
        Used when ``mask`` is ``None``.
    layer, key_added, copy, **options
        As in :func:`impute_spots`.

    Writes ``layers[key_added]`` and ``uns["stfield"]["suica_impute_genes"]`` (parameters and
    the muted entries' rows and columns).
    """
    check_adata(adata, layer=layer, min_spots=4)
    X, coords = _expression(adata, layer), _coords(adata)
    rows = cols = np.empty(0, dtype=np.int64)
    if mask is None and fraction:
        from ..bench.tasks import mute_entries

        mask = mute_entries(X, fraction=fraction, seed=mask_seed)
    if mask is not None:
        if not hasattr(mask, "X_input") or mask.X_input.shape != X.shape:
            raise input_error(
                "mask must be a GeneMask made from this matrix",
                "mask",
                "use stfield.bench.tasks.mute_entries(X, fraction, seed)",
            )
        X_fit, rows, cols = mask.X_input, np.asarray(mask.rows), np.asarray(mask.cols)
    else:
        X_fit = X
    if model is None:
        model = _fit(X_fit, coords, adata.var_names, options)
    else:
        _check_model(model, adata)
    out = adata.copy() if copy else adata
    # A spot's own (degraded) values never enter its prediction, blend or not.
    out.layers[key_added] = model.predict(coords, sparse=True, exclude_self=True)
    _log_key("layers", key_added, out.layers[key_added].shape)
    _uns(out)["suica_impute_genes"] = {
        **_model_params(model),
        "layer": layer or "X",
        "key_added": key_added,
        "fraction": float(fraction) if mask is not None else 0.0,
        "mask_seed": int(mask_seed),
        "muted_rows": rows.astype(np.int64),
        "muted_cols": cols.astype(np.int64),
    }
    _log_key("uns", f"{UNS_KEY}/suica_impute_genes")
    return out if copy else None


def denoise(
    adata: AnnData,
    model: SUICA | None = None,
    *,
    noise_sigma: float | None = None,
    noise_seed: int = 0,
    layer: str | None = None,
    key_added: str = DENOISED_KEY,
    copy: bool = False,
    **options: Any,
) -> AnnData | None:
    """Denoising: fit SUICA on all spots and replace each spot by the field's value there.

    The field alone is used, without interpolation of the neighbours (a model fitted here gets
    ``blend="none"`` unless ``blend`` is passed; a given model with a blend predicts without it).

    Parameters
    ----------
    adata
        Slice with counts and ``obsm["spatial"]``.
    model
        A SUICA already fitted on this slice; ``None`` fits one here.
    noise_sigma
        Benchmark protocol: add ``N(0, sigma²)`` noise (clipped at 0, seeded by ``noise_seed``)
        before fitting (``stfield.bench.tasks.add_gaussian_noise``). ``None`` denoises the data
        as given.
    layer, key_added, copy, **options
        As in :func:`impute_spots`.

    Writes ``layers[key_added]`` and ``uns["stfield"]["suica_denoise"]``.
    """
    check_adata(adata, layer=layer, min_spots=4)
    X, coords = _expression(adata, layer), _coords(adata)
    if noise_sigma is not None:
        from ..bench.tasks import add_gaussian_noise

        X = add_gaussian_noise(X, sigma=noise_sigma, seed=noise_seed)
    if model is None:
        # Denoising predicts the fitted spots from the field alone (below), so no spots need
        # holding out to choose an interpolation weight: every spot trains the field.
        model = _fit(X, coords, adata.var_names, {"blend": "none", **options})
    else:
        _check_model(model, adata)
    out = adata.copy() if copy else adata
    # The field's reconstruction of each spot: it beat every blend with the neighbours on the
    # denoising benchmark (docs/benchmarks.md, issue #8).
    out.layers[key_added] = model.predict(coords, sparse=True, interpolate=False)
    _log_key("layers", key_added, out.layers[key_added].shape)
    _uns(out)["suica_denoise"] = {
        **_model_params(model),
        "layer": layer or "X",
        "key_added": key_added,
        "noise_sigma": "none" if noise_sigma is None else float(noise_sigma),
        "noise_seed": int(noise_seed),
    }
    _log_key("uns", f"{UNS_KEY}/suica_denoise")
    return out if copy else None


__all__ = ["denoise", "fit_suica", "impute_genes", "impute_spots"]
