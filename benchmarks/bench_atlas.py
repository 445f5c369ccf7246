"""SUICA at atlas size on one machine: time and peak memory from 25k to 200k spots × 20k genes.

Three parts, each measured in a fresh child process (so every peak RSS is its own):

``fit``
    For each size, generate a spatially structured sparse slice straight into CSR (smooth random
    fields over 2-D positions drive gene programs; Bernoulli sparsification to ``--density``;
    never a dense spots × genes array), fit SUICA for ``--epochs`` epoch(s) per stage and record
    wall time and peak RSS per stage (GAE, the encoding pass, INR, decoder), nnz and the log-log
    slope of time and memory against nnz (1 = linear).
``knn``
    ``stfield.pp.spatial_neighbors`` on 250k and 1M uniform random 2-D points: time and peak RSS.
``render``
    A model fitted on a small slice with ``--render-genes`` genes renders / predicts 250k and 1M
    query points (``render_grid``, ``predict(sparse=True)``, and ``predict`` batches consumed
    without keeping them); peak RSS above the baseline minus the bytes of the result is the
    working memory, which must not grow with the number of queries.

JSON + markdown go to ``benchmarks/results/`` (git-ignored). With the paper's widths (the
default) one full epoch per stage at 200k × 20k takes an estimated 25 min on two idle cores,
mostly in the dense 2048 × 20k layers; ``--gae-hidden 256 128 64 --width 256`` runs the same data
path several times cheaper, and ``--max-batches`` cuts training epochs short to probe memory.
Examples::

    nice -n 10 python benchmarks/bench_atlas.py                       # 25k..200k × 20k, 1 epoch
    nice -n 10 python benchmarks/bench_atlas.py --parts fit --gae-hidden 256 128 64 --width 256
    nice -n 10 python benchmarks/bench_atlas.py --parts fit --spots 200000 --max-batches 2
    nice -n 10 python benchmarks/bench_atlas.py --parts knn render
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing as mp
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

STAGE_METHODS = {"gae": "_fit_gae", "encode": "_encode_rows", "inr": "_fit_inr"}


# --------------------------------------------------------------------------- generated slice
def make_atlas_slice(
    n_spots: int,
    n_genes: int,
    density: float = 0.1,
    *,
    n_programs: int = 8,
    n_waves: int = 4,
    pitch_um: float = 10.0,
    seed: int = 0,
    block_elements: int = 2**23,
) -> tuple[Any, np.ndarray]:
    """A seeded sparse slice with spatial structure, built block by block into CSR.

    Spots lie uniformly in a square (about ``pitch_um`` apart). ``n_programs`` smooth fields
    (sums of ``n_waves`` plane waves, wavelengths 1/8 to 1/2 of the side) set the log-odds of each
    gene being detected through random sparse loadings; a global shift makes the expected fraction
    of non-zeros ``density``. A detected entry's count is ``1 + floor(4 p E)`` with ``E`` the
    exponential variable hidden in the same uniform draw (so higher rates give larger counts).
    Only ``block_elements`` dense values exist at a time; ``data``/``indices`` are float32/int32.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    side = pitch_um * math.sqrt(n_spots)
    coords = rng.uniform(0.0, side, size=(n_spots, 2))
    direction = rng.normal(size=(n_programs, n_waves, 2))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    wavelength = rng.uniform(side / 8, side / 2, size=(n_programs, n_waves))
    freq = direction * (2 * np.pi / wavelength)[..., None]
    phase = rng.uniform(0, 2 * np.pi, size=(n_programs, n_waves))
    loadings = (
        rng.normal(0.0, 2.0, size=(n_programs, n_genes)) * (rng.random((n_programs, n_genes)) < 0.4)
    ).astype(np.float32)
    gene_base = rng.normal(0.0, 1.0, size=n_genes).astype(np.float32)

    def fields(c: np.ndarray) -> np.ndarray:
        arg = np.einsum("rd,kwd->rkw", c, freq) + phase
        return (np.cos(arg).sum(-1) / math.sqrt(n_waves)).astype(np.float32)

    def logits(c: np.ndarray, shift: float) -> np.ndarray:
        out = fields(c) @ loadings
        out += gene_base + np.float32(shift)
        return out

    # Calibrate the shift on a pilot sample so that the mean detection probability is `density`.
    pilot = coords[rng.choice(n_spots, size=min(n_spots, 512), replace=False)]
    base = logits(pilot, 0.0)
    lo, hi = -20.0, 20.0
    for _ in range(40):
        mid = (lo + hi) / 2
        mean_p = float(np.mean(1.0 / (1.0 + np.exp(-(base + mid)))))
        lo, hi = (mid, hi) if mean_p < density else (lo, mid)
    shift = (lo + hi) / 2
    del base

    rows_per_block = max(1, block_elements // n_genes)
    capacity = int(density * n_spots * n_genes * 1.02) + 2**20
    data = np.empty(capacity, dtype=np.float32)
    indices = np.empty(capacity, dtype=np.int32)
    indptr = np.zeros(n_spots + 1, dtype=np.int64)
    nnz = 0
    for start in range(0, n_spots, rows_per_block):
        stop = min(start + rows_per_block, n_spots)
        p = logits(coords[start:stop], shift)
        np.negative(p, out=p)
        np.exp(p, out=p)
        p += 1.0
        np.reciprocal(p, out=p)  # detection probability
        u = rng.random(p.shape, dtype=np.float32)
        hit = u < p
        indptr[start + 1 : stop + 1] = np.count_nonzero(hit, axis=1)
        cols = np.nonzero(hit)[1]
        k = cols.size
        if nnz + k > data.size:  # grown in place (realloc), rarely needed
            new = max(nnz + k, int(data.size * 1.25))
            data.resize(new, refcheck=False)
            indices.resize(new, refcheck=False)
        indices[nnz : nnz + k] = cols
        pv, uv = p[hit], u[hit]
        del p, u, hit, cols
        data[nnz : nnz + k] = 1.0 + np.floor(-np.log(np.maximum(uv / pv, 1e-12)) * 4.0 * pv)
        nnz += k
    data.resize(nnz, refcheck=False)
    indices.resize(nnz, refcheck=False)
    np.cumsum(indptr, out=indptr)
    if nnz < 2**31:
        indptr = indptr.astype(np.int32)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_spots, n_genes), copy=False)
    X.has_sorted_indices = True
    X.has_canonical_format = True
    return X, coords


def csr_bytes(X: Any) -> int:
    return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)


# --------------------------------------------------------------------------- memory sampling
def _rss_now_mb() -> float:
    from stfield.bench._memory import current_rss_mb

    return current_rss_mb()


def _maxrss_mb() -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class RSSTimeline:
    """Sample RSS every ``interval`` s in a thread: ``peak(t0, t1)`` is the maximum in a window."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), _rss_now_mb()))
            self._stop.wait(self.interval)

    def start(self) -> RSSTimeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, t0: float, t1: float) -> float:
        inside = [m for t, m in self.samples if t0 <= t <= t1]
        return max(inside) if inside else _rss_now_mb()


# --------------------------------------------------------------------------- child processes
def _child(fn_name: str, cfg: dict[str, Any], queue: mp.Queue) -> None:
    try:
        queue.put(globals()[fn_name](cfg))
    except BaseException as exc:  # report the failure to the parent instead of hanging
        queue.put({"error": f"{type(exc).__name__}: {exc}", **cfg})


def _in_child(ctx: Any, fn_name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    import queue as queue_mod

    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn_name, cfg, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except queue_mod.Empty:
            if not proc.is_alive():
                result = {"error": f"child died (exit code {proc.exitcode})", **cfg}
                break
    proc.join()
    return result


def _set_threads(n: int) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def measure_fit(cfg: dict[str, Any]) -> dict[str, Any]:
    """One size: generate, fit with stage instrumentation, report times and RSS."""
    import torch

    from stfield.models.suica import SUICA

    _set_threads(cfg["threads"])
    rss_imports = _rss_now_mb()
    timeline = RSSTimeline().start()
    t0, c0 = time.perf_counter(), time.process_time()
    X, coords = make_atlas_slice(cfg["spots"], cfg["genes"], cfg["density"], seed=cfg["seed"])
    gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.collect()
    rss_data = _rss_now_mb()

    spans: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}

    class Instrumented(SUICA):
        pass

    def wrap(stage: str, method: str) -> None:
        original = getattr(SUICA, method)

        def timed(self: SUICA, *args: Any, **kwargs: Any) -> Any:
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                return original(self, *args, **kwargs)
            finally:
                spans.setdefault(stage, [start, 0.0])[1] = time.perf_counter()
                cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - cpu_start

        setattr(Instrumented, method, timed)

    for stage, method in STAGE_METHODS.items():
        wrap(stage, method)
    wrap("decoder", "_fit_decoder")

    if cfg["max_batches"]:
        # Memory probe only: training epochs stop after `max_batches` shuffled batches (the
        # per-batch working set, the model and its optimiser state are all there from the first
        # batch; the encoding pass over every spot still runs in full). Times are not epochs.
        import stfield.data.csr as csr_mod

        full_batches = csr_mod.batch_indices

        def truncated(indices: Any, batch_size: Any, shuffle: bool = True, **kw: Any) -> list:
            out = full_batches(indices, batch_size, shuffle, **kw)
            return out[: cfg["max_batches"]] if shuffle else out

        csr_mod.batch_indices = truncated

    model = Instrumented(
        "ffn",
        backbone_kwargs={"width": cfg["width"]},
        gae_hidden=tuple(cfg["gae_hidden"]),
        accelerator="cpu",
        seed=cfg["seed"],
    )
    e = cfg["epochs"]
    t_fit, c_fit = time.perf_counter(), time.process_time()
    model.fit(
        X, coords, preset="paper", epochs_gae=e, epochs_inr=e, epochs_decoder=e, progress=False
    )
    fit_s, fit_cpu = time.perf_counter() - t_fit, time.process_time() - c_fit
    t_end = time.perf_counter()
    timeline.stop()

    stage_s = {s: spans[s][1] - spans[s][0] for s in ("gae", "encode", "inr", "decoder")}
    stage_peak = {s: timeline.peak(*spans[s]) for s in ("gae", "encode", "inr", "decoder")}
    return {
        "spots": cfg["spots"],
        "genes": cfg["genes"],
        "nnz": int(X.nnz),
        "density": float(X.nnz / (X.shape[0] * X.shape[1])),
        "index_dtype": str(X.indices.dtype),
        "csr_mb": csr_bytes(X) / 2**20,
        "epochs": e,
        "max_batches": cfg["max_batches"],
        "gae_hidden": list(cfg["gae_hidden"]),
        "ffn_width": cfg["width"],
        "batch_sizes": model.fit_params.get("resolved_batch_sizes"),
        "threads": torch.get_num_threads(),
        "generate_s": gen_s,
        "generate_cpu_s": gen_cpu,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu,
        "stage_s": stage_s,
        "stage_cpu_s": cpu,
        "stage_peak_rss_mb": stage_peak,
        "rss_after_imports_mb": rss_imports,
        "rss_after_data_mb": rss_data,
        "peak_rss_fit_mb": timeline.peak(t_fit, t_end),
        "peak_rss_mb": _maxrss_mb(),
        "final_loss": {k: float(v[-1]) for k, v in model.history.items() if v},
    }


def measure_knn(cfg: dict[str, Any]) -> dict[str, Any]:
    from stfield.pp import spatial_neighbors

    rng = np.random.default_rng(cfg["seed"])
    pts = rng.uniform(0.0, 10.0 * math.sqrt(cfg["points"]), size=(cfg["points"], 2))
    base = _rss_now_mb()
    timeline = RSSTimeline().start()
    t0 = time.perf_counter()
    adj = spatial_neighbors(pts, k=cfg["k"], include_self=True, normalization="gcn")
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    timeline.stop()
    return {
        "points": cfg["points"],
        "k": cfg["k"],
        "seconds": seconds,
        "edges": int(adj.nnz),
        "graph_mb": csr_bytes(adj) / 2**20,
        "peak_rss_delta_mb": timeline.peak(t0, t1) - base,
        "peak_rss_mb": _maxrss_mb(),
    }


def fit_render_model(cfg: dict[str, Any]) -> dict[str, Any]:
    from stfield.models.suica import SUICA

    _set_threads(cfg["threads"])
    X, coords = make_atlas_slice(cfg["spots"], cfg["genes"], cfg["density"], seed=cfg["seed"])
    model = SUICA(
        "ffn",
        backbone_kwargs={"width": cfg["width"]},
        gae_hidden=tuple(cfg["gae_hidden"]),
        accelerator="cpu",
        seed=cfg["seed"],
    )
    e = cfg["epochs"]
    t0 = time.perf_counter()
    model.fit(
        X, coords, preset="fast", epochs_gae=e, epochs_inr=e, epochs_decoder=e, progress=False
    )
    model.save(cfg["model_dir"])
    return {
        "fit_s": time.perf_counter() - t0,
        "spots": cfg["spots"],
        "genes": cfg["genes"],
        "gae_hidden": list(cfg["gae_hidden"]),
        "ffn_width": cfg["width"],
    }


def measure_render(cfg: dict[str, Any]) -> dict[str, Any]:
    """One (method, number of queries) in a fresh process, with a loaded model."""
    from stfield.models.suica import SUICA

    _set_threads(cfg["threads"])
    model = SUICA.load(cfg["model_dir"], accelerator="cpu")
    q = cfg["queries"]
    rng = np.random.default_rng(cfg["seed"])
    lo, hi = model.coord_min, model.coord_max
    pts = rng.uniform(lo, hi, size=(q, 2)) if cfg["method"] != "render_grid" else None
    # Warm-up (allocator, lazy init) so that the measured peak is the call's own.
    model.predict(np.asarray([(lo + hi) / 2]))
    gc.collect()
    base = _rss_now_mb()
    timeline = RSSTimeline(0.01).start()
    t0 = time.perf_counter()
    out_bytes, points, nnz = 0, q, None
    if cfg["method"] == "render_grid":
        side = math.sqrt(q)
        step = float(max(hi[0] - lo[0], hi[1] - lo[1])) / (side - 1)
        grid = model.render_grid(
            step, bounds=(lo[0], lo[1], lo[0] + step * (side - 1), lo[1] + step * (side - 1))
        )
        points, nnz = grid.n_obs, int(grid.X.nnz)
        out_bytes = (
            csr_bytes(grid.X)
            + grid.obsm["spatial"].nbytes
            + int(grid.obs.memory_usage(deep=True, index=True).sum())
        )
    elif cfg["method"] == "predict_sparse":
        res = model.predict(pts, sparse=True)
        nnz = int(res.nnz)
        out_bytes = csr_bytes(res)
    else:  # stream: predict batch by batch, keep nothing (working memory only)
        for _block in model._predict_batches(pts, None):
            pass
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    timeline.stop()
    peak_delta = timeline.peak(t0, t1) - base
    return {
        "method": cfg["method"],
        "queries": int(points),
        "genes": model.n_genes,
        "seconds": seconds,
        "output_nnz": nnz,
        "output_mb": out_bytes / 2**20,
        "peak_rss_delta_mb": peak_delta,
        "working_mb": peak_delta - out_bytes / 2**20,
    }


# --------------------------------------------------------------------------- report
def loglog_slope(x: list[float], y: list[float]) -> float | None:
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
    if len(pairs) < 2:
        return None
    lx, ly = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return float(np.polyfit(lx, ly, 1)[0])


def linear_fit(x: list[float], y: list[float]) -> dict[str, float] | None:
    if len(x) < 2:
        return None
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return {"per_unit": float(slope), "intercept": float(intercept)}


def scaling(fits: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in fits if "error" not in r]
    nnz = [r["nnz"] for r in ok]
    out: dict[str, Any] = {"time_vs_nnz": {}, "memory": {}}
    for s in ("gae", "encode", "inr", "decoder"):
        out["time_vs_nnz"][s] = loglog_slope(nnz, [r["stage_s"][s] for r in ok])
    out["time_vs_nnz"]["fit"] = loglog_slope(nnz, [r["fit_s"] for r in ok])
    with_cpu = [r for r in ok if "fit_cpu_s" in r]
    if len(with_cpu) == len(ok):
        out["cpu_time_vs_nnz"] = {
            s: loglog_slope(nnz, [r["stage_cpu_s"][s] for r in ok])
            for s in ("gae", "encode", "inr", "decoder")
        }
        out["cpu_time_vs_nnz"]["fit"] = loglog_slope(nnz, [r["fit_cpu_s"] for r in ok])
    out["time_vs_nnz"]["generate"] = loglog_slope(nnz, [r["generate_s"] for r in ok])
    peak = [r["peak_rss_mb"] for r in ok]
    above = [r["peak_rss_mb"] - r["rss_after_imports_mb"] for r in ok]
    out["memory"]["peak_rss_vs_nnz"] = loglog_slope(nnz, peak)
    out["memory"]["peak_above_imports_vs_nnz"] = loglog_slope(nnz, above)
    lin = linear_fit(nnz, peak)
    if lin:
        out["memory"]["peak_rss_bytes_per_nnz"] = lin["per_unit"] * 2**20
        out["memory"]["peak_rss_intercept_mb"] = lin["intercept"]
    lin_t = linear_fit(nnz, [r["fit_s"] for r in ok])
    if lin_t:
        out["time_vs_nnz"]["fit_ns_per_nnz"] = lin_t["per_unit"] * 1e9
        out["time_vs_nnz"]["fit_intercept_s"] = lin_t["intercept"]
    return out


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "# SUICA at atlas size (generated sparse slices)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}; {meta['date']}",
        "",
    ]
    fits = report.get("fit", [])
    if fits:
        lines += [
            "## Fit (one fresh process per size)",
            "",
            "Epochs per stage: {e}; GAE widths {h}, FFN width {w}; {b}; torch threads {t}. "
            "`encode` is the pass "
            "over every spot that makes the INR targets; peak RSS per stage is sampled every "
            "20 ms, the last column is the process maximum (`ru_maxrss`), generation "
            "included.".format(
                e=fits[0].get("epochs"),
                h=fits[0].get("gae_hidden"),
                w=fits[0].get("ffn_width"),
                b=(
                    f"training epochs cut to {fits[0]['max_batches']} batches (memory probe)"
                    if fits[0].get("max_batches")
                    else "full epochs"
                ),
                t=fits[0].get("threads"),
            ),
            "",
            "| spots × genes | nnz | CSR MB | generate s | GAE s | encode s | INR s | decoder s "
            "| fit s | peak RSS MB (GAE / enc / INR / dec) | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in fits:
            if "error" in r:
                lines.append(f"| {r['spots']:,} × {r['genes']:,} | error: {r['error']} |")
                continue
            s, p = r["stage_s"], r["stage_peak_rss_mb"]
            lines.append(
                f"| {r['spots']:,} × {r['genes']:,} | {r['nnz']:,} ({r['density']:.1%}) "
                f"| {r['csr_mb']:.0f} | {r['generate_s']:.1f} | {s['gae']:.1f} | "
                f"{s['encode']:.1f} | {s['inr']:.1f} | {s['decoder']:.1f} | {r['fit_s']:.1f} | "
                f"{p['gae']:.0f} / {p['encode']:.0f} / {p['inr']:.0f} / {p['decoder']:.0f} | "
                f"{r['peak_rss_mb']:.0f} |"
            )
        if all("fit_cpu_s" in r for r in fits if "error" not in r):
            lines += [
                "",
                "CPU seconds (all threads; less sensitive than wall time to other users' load):",
                "",
                "| spots | GAE | encode | INR | decoder | fit |",
                "|---|---|---|---|---|---|",
            ]
            for r in fits:
                if "error" in r:
                    continue
                c = r["stage_cpu_s"]
                lines.append(
                    f"| {r['spots']:,} | {c['gae']:.0f} | {c['encode']:.0f} | {c['inr']:.0f} | "
                    f"{c['decoder']:.0f} | {r['fit_cpu_s']:.0f} |"
                )
        sc = report.get("scaling", {})
        t, m = sc.get("time_vs_nnz", {}), sc.get("memory", {})
        ct = sc.get("cpu_time_vs_nnz")
        if t:
            lines += [
                "",
                "Log-log slopes against nnz (1 = linear): "
                + ", ".join(
                    f"{k} {_fmt(t.get(k))}"
                    for k in ("gae", "encode", "inr", "decoder", "fit", "generate")
                )
                + f"; peak RSS {_fmt(m.get('peak_rss_vs_nnz'))}, peak RSS above the "
                f"imports {_fmt(m.get('peak_above_imports_vs_nnz'))}"
                + (
                    "; CPU time: " + ", ".join(f"{k} {_fmt(v)}" for k, v in ct.items())
                    if ct
                    else ""
                )
                + ".  ",
                f"Linear fits: fit time {_fmt(t.get('fit_ns_per_nnz'))} ns per non-zero "
                f"(+{_fmt(t.get('fit_intercept_s'), '.1f')} s); peak RSS "
                f"{_fmt(m.get('peak_rss_bytes_per_nnz'), '.1f')} bytes per non-zero "
                f"(+{_fmt(m.get('peak_rss_intercept_mb'), '.0f')} MB).",
            ]
        lines.append("")
    knn = report.get("knn", [])
    if knn:
        lines += [
            "## Spatial kNN graph (`stfield.pp.spatial_neighbors`, gcn)",
            "",
            "| points | k | seconds | edges | graph MB | peak RSS above start MB |",
            "|---|---|---|---|---|---|",
        ]
        for r in knn:
            if "error" in r:
                lines.append(f"| {r['points']:,} | error: {r['error']} |")
                continue
            lines.append(
                f"| {r['points']:,} | {r['k']} | {r['seconds']:.1f} | {r['edges']:,} | "
                f"{r['graph_mb']:.0f} | {r['peak_rss_delta_mb']:.0f} |"
            )
        lines.append("")
    render = report.get("render", [])
    if render:
        info = report.get("render_model", {})
        lines += [
            "## Render / predict many query points (one fresh process each)",
            "",
            f"Model: {info.get('spots', 0):,} spots × {info.get('genes', 0)} genes, GAE widths "
            f"{info.get('gae_hidden')}, FFN width {info.get('ffn_width')} "
            f"(fitted in {info.get('fit_s', 0):.0f} s). Working memory = peak RSS above the "
            "baseline − bytes of the returned result.",
            "",
            "| method | queries | seconds | output nnz | output MB | peak RSS delta MB "
            "| working MB |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in render:
            if "error" in r:
                lines.append(f"| {r['method']} | {r['queries']:,} | error: {r['error']} |")
                continue
            nnz = "–" if r["output_nnz"] is None else f"{r['output_nnz']:,}"
            lines.append(
                f"| {r['method']} | {r['queries']:,} | {r['seconds']:.1f} | {nnz} | "
                f"{r['output_mb']:.0f} | {r['peak_rss_delta_mb']:.0f} | {r['working_mb']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", default=["fit", "knn", "render"], choices=["fit", "knn", "render"]
    )
    parser.add_argument("--spots", type=int, nargs="+", default=[25_000, 50_000, 100_000, 200_000])
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of every stage")
    parser.add_argument(
        "--max-batches",
        type=int,
        default=0,
        help="memory probe: cut every training epoch to this many batches (0: full epochs)",
    )
    parser.add_argument(
        "--gae-hidden",
        type=int,
        nargs="+",
        default=[2048, 512, 64],
        help="GAE widths (paper: 2048 512 64)",
    )
    parser.add_argument("--width", type=int, default=2048, help="FFN width (paper: 2048)")
    parser.add_argument("--knn-points", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--knn-k", type=int, default=5)
    parser.add_argument("--render-queries", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--render-spots", type=int, default=20_000)
    parser.add_argument("--render-genes", type=int, default=100)
    parser.add_argument("--render-epochs", type=int, default=2)
    parser.add_argument(
        "--render-gae-hidden", type=int, nargs="+", default=[256, 128, 64], help="render model"
    )
    parser.add_argument("--render-width", type=int, default=256, help="render model FFN width")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="atlas")
    args = parser.parse_args(argv)

    import torch

    ctx = mp.get_context("spawn")
    report: dict[str, Any] = {
        "meta": {
            "command": "python "
            + " ".join(
                [Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]
            ),
            "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} CPU(s)",
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
    }
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
        (args.out / f"{args.name}.md").write_text(markdown(report))

    if "knn" in args.parts:
        report["knn"] = []
        for n in args.knn_points:
            r = _in_child(ctx, "measure_knn", {"points": n, "k": args.knn_k, "seed": args.seed})
            report["knn"].append(r)
            print(json.dumps(r, default=str), flush=True)
            save()
    if "render" in args.parts:
        report["render"] = []
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {
                "spots": args.render_spots,
                "genes": args.render_genes,
                "density": args.density,
                "epochs": args.render_epochs,
                "gae_hidden": args.render_gae_hidden,
                "width": args.render_width,
                "threads": args.threads,
                "seed": args.seed,
                "model_dir": str(Path(tmp) / "model"),
            }
            report["render_model"] = _in_child(ctx, "fit_render_model", cfg)
            print(json.dumps(report["render_model"], default=str), flush=True)
            if "error" not in report["render_model"]:
                for method in ("stream", "predict_sparse", "render_grid"):
                    for q in args.render_queries:
                        r = _in_child(
                            ctx,
                            "measure_render",
                            {
                                "method": method,
                                "queries": q,
                                "model_dir": cfg["model_dir"],
                                "threads": args.threads,
                                "seed": args.seed,
                            },
                        )
                        report["render"].append(r)
                        print(json.dumps(r, default=str), flush=True)
                        save()
    if "fit" in args.parts:
        report["fit"] = []
        for n in args.spots:
            cfg = {
                "spots": n,
                "genes": args.genes,
                "density": args.density,
                "epochs": args.epochs,
                "max_batches": args.max_batches,
                "gae_hidden": args.gae_hidden,
                "width": args.width,
                "threads": args.threads,
                "seed": args.seed,
            }
            r = _in_child(ctx, "measure_fit", cfg)
            report["fit"].append(r)
            report["scaling"] = scaling(report["fit"])
            print(json.dumps(r, default=str), flush=True)
            save()
    save()
    print(f"wrote {args.out / (args.name + '.json')} and {args.out / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
