"""Run a method on the three degradation protocols and score it on the same stored splits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._constants import SPATIAL_KEY
from .baselines import Baseline
from .metrics import ari, evaluate
from .tasks import GeneMask, SpatialSplit, add_gaussian_noise, mute_entries, spatial_split

TASKS = ("spatial", "genes", "denoise")


@dataclass(frozen=True)
class Protocols:
    """The stored degradations of one slice for one seed."""

    split: SpatialSplit
    mask: GeneMask
    noisy: sp.csr_matrix
    seed: int


def make_protocols(X: sp.csr_matrix, seed: int = 0) -> Protocols:
    """80/20 spot split, 70% of non-zeros muted, N(0, 1) noise clipped at 0 — all seeded."""
    return Protocols(
        split=spatial_split(X.shape[0], 0.2, seed),
        mask=mute_entries(X, 0.7, seed),
        noisy=add_gaussian_noise(X, 1.0, seed),
        seed=seed,
    )


def run_task(
    task: str,
    make_method: Callable[[], Baseline],
    adata: AnnData,
    protocols: Protocols,
    labels: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Fit a fresh method for ``task`` and score it; returns (metrics, predictions).

    * ``spatial``: fit on the training spots, predict the held-out spots.
    * ``genes``: fit on the muted matrix, score only the muted entries (their true values;
      everything else is masked out of the truth).
    * ``denoise``: fit on the noisy matrix, score every spot against the clean matrix.

    ``labels`` (one per spot of ``adata``) adds the ARI of clusters of the prediction of the
    scored spots against them. The returned predictions are the method's raw output for the
    scored spots (held-out spots, or every spot).
    """
    X = sp.csr_matrix(adata.X)
    coords = np.asarray(adata.obsm[SPATIAL_KEY], dtype=np.float64)
    method = make_method()
    if hasattr(method, "set_task"):  # methods whose library call differs per task (SUICA)
        method.set_task(task)
    scored = protocols.split.test if task == "spatial" else np.arange(adata.n_obs)
    t0 = time.perf_counter()
    if task == "spatial":
        train, test = protocols.split.train, protocols.split.test
        method.fit(X[train], coords[train])
        fit_s = time.perf_counter() - t0
        pred = method.predict(coords[test])
        truth = X[test]
    elif task == "genes":
        method.fit(protocols.mask.X_input, coords)
        fit_s = time.perf_counter() - t0
        pred = method.predict(coords, exclude_self=True)
        truth = X.multiply(protocols.mask.muted_mask()).tocsr()
    elif task == "denoise":
        method.fit(protocols.noisy, coords)
        fit_s = time.perf_counter() - t0
        pred = method.predict(coords, exclude_self=True)
        truth = X
    else:
        raise ValueError(f"unknown task {task!r}; use one of {TASKS}")
    predict_s = time.perf_counter() - t0 - fit_s
    scored_pred = pred
    if task == "genes":
        # Score muted entries only: elsewhere the prediction is zeroed like the truth, so
        # observed entries count neither as errors nor as zero-map disagreements.
        scored_pred = sp.csr_matrix(pred).multiply(protocols.mask.muted_mask()).tocsr()
    scores = evaluate(truth, scored_pred)
    if task == "genes":
        # Every scored (muted) entry is non-zero: there is no zero map to compare.
        scores["iou"] = float("nan")
    if labels is not None:
        scores["ari"] = ari(np.asarray(labels)[scored], pred)
    scores["fit_seconds"] = fit_s
    scores["predict_seconds"] = predict_s
    return scores, pred
