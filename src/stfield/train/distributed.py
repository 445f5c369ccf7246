"""Data-parallel training helpers (``torch.distributed``): process group, sharding, reductions.

:func:`~stfield.train.vq.train_model` switches to data-parallel training whenever a process group
is initialised. The group comes either from ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_process_group` reads them) or
from :func:`launch`, which starts ``N`` local processes itself (``stfield vq fit --devices N``).

What is shared between ranks, and how:

* tiles: every epoch each rank takes a disjoint shard of the training tiles with
  :class:`torch.utils.data.distributed.DistributedSampler` semantics (a permutation seeded by
  ``seed + epoch``, padded to a multiple of the world size, rank ``r`` taking positions
  ``r, r + N, ...``), so ``N`` processes with ``B`` tiles each see the same global batches of
  ``N·B`` tiles as one process run through the same sampler (see :func:`shard_positions`);
* gradients: :class:`~torch.nn.parallel.DistributedDataParallel` averages them;
* BatchNorm: :class:`GlobalBatchNorm2d` normalises with the statistics of the global batch;
* codebooks: vector-quantize-pytorch's own all-reduce of the EMA statistics
  (:meth:`stfield.models.hvqvae.HVQVAE.sync_codebooks`);
* metrics: summed over ranks with :func:`all_reduce_sum`.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from .._errors import input_error

logger = logging.getLogger(__name__)

#: Environment variables ``torchrun`` sets for every worker.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# ------------------------------------------------------------------------------ process group
@dataclass(frozen=True)
class DistContext:
    """Where this process stands in an initialised process group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes files, logs and shows progress."""
        return self.rank == 0


def is_active() -> bool:
    """Whether a ``torch.distributed`` process group is initialised in this process."""
    return dist.is_available() and dist.is_initialized()


def context() -> DistContext | None:
    """The current process group's rank / world size, or ``None`` when there is none."""
    if not is_active():
        return None
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
        backend=str(dist.get_backend()),
    )


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    """Number of processes in the group (1 without a process group)."""
    return dist.get_world_size() if is_active() else 1


def is_main_process() -> bool:
    """``True`` on rank 0 and in a plain (non-distributed) process."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether the ``torchrun`` environment variables (:data:`TORCHRUN_ENV`) are all set."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def default_backend(accelerator: str = "auto") -> str:
    """``"nccl"`` when training on CUDA, ``"gloo"`` otherwise (CPU)."""
    from .._utils import resolve_device

    return "nccl" if resolve_device(accelerator).startswith("cuda") else "gloo"


def init_process_group(
    accelerator: str = "auto", backend: str | None = None, timeout_s: float | None = None
) -> DistContext:
    """Join the process group described by the ``torchrun`` environment variables.

    Parameters
    ----------
    accelerator
        Training device (``"auto"``, ``"cpu"``, ``"cuda"``); picks the backend and, on CUDA,
        binds this process to GPU ``LOCAL_RANK``.
    backend
        ``"gloo"`` or ``"nccl"``; default :func:`default_backend`.
    timeout_s
        How long a collective (and the rendezvous) may wait for the other ranks; default
        torch's (30 minutes for gloo, 10 for nccl).

    Returns
    -------
    The process's :class:`DistContext`. A group that is already initialised is reused.
    """
    if not dist.is_available():
        raise input_error(
            "this torch build has no torch.distributed", "distributed training", "use 1 device"
        )
    missing = [k for k in TORCHRUN_ENV if k not in os.environ]
    if missing and not is_active():
        raise input_error(
            f"environment variables {missing} are not set",
            "distributed training",
            "start with torchrun, or use --devices N to launch local processes",
        )
    backend = backend or default_backend(accelerator)
    if backend == "nccl":
        # one GPU per process; set before the first collective so NCCL uses the right device
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not is_active():
        kwargs = {} if timeout_s is None else {"timeout": datetime.timedelta(seconds=timeout_s)}
        dist.init_process_group(backend=backend, **kwargs)
    ctx = context()
    assert ctx is not None
    logger.debug("rank %d of %d (%s)", ctx.rank, ctx.world_size, ctx.backend)
    return ctx


def destroy_process_group() -> None:
    """Leave the process group (no-op when there is none)."""
    if is_active():
        dist.destroy_process_group()


def device_for_rank(accelerator: str = "auto") -> str:
    """Training device of this process: ``cuda:LOCAL_RANK`` under CUDA data parallelism."""
    from .._utils import resolve_device

    device = resolve_device(accelerator)
    ctx = context()
    if ctx is not None and device.startswith("cuda"):
        if ctx.backend != "nccl" and ctx.world_size > 1:
            logger.warning("CUDA training over a %s process group; nccl is faster", ctx.backend)
        return f"cuda:{ctx.local_rank}"
    return device


def free_port() -> int:
    """A TCP port on localhost that is free now (for ``MASTER_PORT`` of local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launched(
    local_rank: int,
    fn: Callable[..., Any],
    nprocs: int,
    port: int,
    accelerator: str,
    args: tuple[Any, ...],
    errors: Any,
    timeout_s: float | None,
) -> None:
    # the same variables torchrun sets, so the worker cannot tell the two launchers apart
    os.environ.update(
        {
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(nprocs),
            "LOCAL_WORLD_SIZE": str(nprocs),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    if "OMP_NUM_THREADS" not in os.environ:
        # N processes share the machine's cores (torchrun sets OMP_NUM_THREADS=1 for the same
        # reason); without this every process starts one thread per core
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nprocs))
    try:
        init_process_group(accelerator, timeout_s=timeout_s)
        try:
            fn(*args)
        finally:
            destroy_process_group()
    except Exception as exc:
        # torch.multiprocessing hands the parent only a traceback string; send the exception
        # itself so that bad input still surfaces as the ValueError the CLI reports in one line
        with contextlib.suppress(Exception):
            errors.put(exc)
        raise


def launch(
    fn: Callable[..., Any],
    nprocs: int,
    args: Sequence[Any] = (),
    accelerator: str = "auto",
    timeout_s: float | None = None,
) -> None:
    """Run ``fn(*args)`` in ``nprocs`` new local processes joined in one process group.

    Each process gets the ``torchrun`` environment (rank, world size, a free localhost port),
    joins the group with :func:`init_process_group` (gloo on CPU, nccl on CUDA; ``timeout_s``
    as there) and leaves it when ``fn`` returns. ``fn`` must be importable (a module-level
    function): processes are started with ``spawn``. When a process fails the others are
    stopped and its exception is raised here.
    """
    if nprocs < 1:
        raise input_error(f"need at least 1 process, got {nprocs}", "devices")
    if default_backend(accelerator) == "nccl" and nprocs > torch.cuda.device_count():
        raise input_error(
            f"{nprocs} processes but {torch.cuda.device_count()} CUDA device(s)",
            "devices",
            f"use --devices {torch.cuda.device_count()} or --accelerator cpu",
        )
    import torch.multiprocessing as mp

    errors = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(
            _launched,
            args=(fn, nprocs, free_port(), accelerator, tuple(args), errors, timeout_s),
            nprocs=nprocs,
            join=True,
        )
    except mp.ProcessRaisedException:
        if not errors.empty():
            raise errors.get() from None
        raise


# ------------------------------------------------------------------------------------ sharding
def shard_positions(
    n: int,
    *,
    rank: int,
    world_size: int,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    pad: bool = True,
) -> np.ndarray:
    """Positions ``0 .. n-1`` that rank ``rank`` of ``world_size`` handles in ``epoch``.

    With ``pad`` this is exactly :class:`~torch.utils.data.distributed.DistributedSampler`
    (``drop_last=False``, after ``set_epoch(epoch)``): a permutation seeded by ``seed + epoch``
    (or ``0 .. n-1`` without ``shuffle``), padded by wrapping around to a multiple of
    ``world_size`` so every rank runs the same number of steps, then strided by rank. Batch ``k``
    of size ``B`` on every rank therefore covers positions ``k·N·B .. (k+1)·N·B - 1`` of the
    permutation: the global batches of one process with batch ``N·B``.

    Without ``pad`` (evaluation, where no rank waits for another) the shards are disjoint and
    cover every position once; they may differ in length by one.
    """
    if not pad:
        return np.arange(rank, n, world_size, dtype=np.int64)
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(
        range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))


def augment_codes(n: int, seed: int, epoch: int) -> np.ndarray:
    """Augmentation of each of ``n`` tile positions in ``epoch``: ``code // 4`` = flip,
    ``code % 4`` = quarter turns.

    A function of ``(seed, epoch, position)`` only, so a tile is augmented the same way whichever
    rank draws it (a per-process random stream would depend on the sharding).
    """
    rng = np.random.default_rng([int(seed) % 2**32, int(epoch)])
    return rng.integers(0, 8, size=n)


def batches(
    positions: np.ndarray, batch_size: int, drop_last: bool = False
) -> Iterator[np.ndarray]:
    """Consecutive chunks of ``positions`` (the last one shorter unless ``drop_last``)."""
    for s in range(0, len(positions), batch_size):
        chunk = positions[s : s + batch_size]
        if drop_last and len(chunk) < batch_size and s > 0:
            return
        yield chunk


# ------------------------------------------------------------------------------- reductions
def all_reduce_sum(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Element-wise sum of ``values`` over all ranks (returned unchanged without a group).

    Floats are reduced in float64 and integers in int64, so counts and sums stay exact. With the
    nccl backend the reduction goes through this process's GPU (nccl reduces CUDA tensors only).
    """
    arr = np.asarray(values)
    if not is_active() or dist.get_world_size() == 1:
        return arr
    dtype = torch.int64 if np.issubdtype(arr.dtype, np.integer) else torch.float64
    device = torch.device("cuda", torch.cuda.current_device()) if _is_nccl() else None
    t = torch.as_tensor(arr, dtype=dtype, device=device)
    dist.all_reduce(t)
    return t.cpu().numpy()


def _is_nccl() -> bool:
    return str(dist.get_backend()).lower() == "nccl"


def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers (codebooks, BatchNorm statistics) to every rank."""
    if not is_active() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src)


# ------------------------------------------------------------------------------ the model
@contextlib.contextmanager
def data_parallel(module: nn.Module, device: str = "cpu") -> Iterator[nn.Module]:
    """``module`` prepared for data-parallel training; yields its ``DistributedDataParallel``.

    Within the block: plain BatchNorm layers use global-batch statistics
    (:func:`global_batchnorm`), codebooks all-reduce their EMA statistics (the model's
    ``sync_codebooks``, when it has one), and rank 0's parameters and buffers have been copied to
    every rank. Afterwards ``module`` is an ordinary single-process model again.
    """
    if not is_active():
        raise input_error("no torch.distributed process group", "data_parallel")
    from torch.nn.parallel import DistributedDataParallel

    n = dist.get_world_size()
    with global_batchnorm(module):
        sync = getattr(module, "sync_codebooks", None)
        if sync is not None:
            # a group of one needs no sync, and keeping the library's single-process path there
            # keeps its random draws (k-means seeds, dead-code restarts) the same as without one
            sync(n > 1)
        try:
            broadcast_state(module)
            # No buffer broadcast before each forward: every buffer is already updated
            # identically on all ranks (codebook EMA from the library's all-reduced sums,
            # BatchNorm statistics from all-reduced batch moments), so re-sending rank 0's copy
            # would only cost time, and would hide a synchronisation bug that the tests look for.
            # (torch >= 2.13 names the switch forward_sync_buffers; broadcast_buffers before.)
            params = inspect.signature(DistributedDataParallel.__init__).parameters
            no_sync = (
                {"forward_sync_buffers": False}
                if "forward_sync_buffers" in params
                else {"broadcast_buffers": False}
            )
            ddp = DistributedDataParallel(
                module,
                device_ids=[torch.device(device).index or 0] if device.startswith("cuda") else None,
                **no_sync,
            )
            yield ddp
        finally:
            if sync is not None:
                sync(False)


# ---------------------------------------------------------------------------------- BatchNorm
class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum of the ranks' gradients.

    Each rank's loss depends on every rank's inputs through the summed value, so the gradient
    reaching a rank's own input is the sum of all ranks' upstream gradients.
    """

    @staticmethod
    def forward(ctx: Any, value: Tensor) -> Tensor:
        out = value.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """:class:`~torch.nn.BatchNorm2d` that, in training, normalises with global-batch statistics.

    The per-channel mean and (biased) variance are all-reduced over the process group by an
    all-reduce whose backward all-reduces the gradients, so the gradient is that of the
    global-batch normalisation. With ``N`` ranks of ``B`` tiles each, training then computes the
    same function as one process with ``N·B`` tiles, and the running statistics (updated from
    all-reduced values) are identical on every rank.

    :class:`torch.nn.SyncBatchNorm` does the same but refuses CPU tensors, and the gloo (CPU)
    path is the one the tests can check. The variance is ``Σ (x - mean)²`` after the mean is
    known (two small collectives) rather than ``E[x²] - E[x]²``, which cancels catastrophically
    in float32 when the mean is large. Eval mode, and a group of one, use the plain layer.
    """

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and is_active() and dist.get_world_size() > 1):
            return super().forward(input)
        all_reduce = _AllReduceSum.apply
        self._check_input_dim(input)
        dims = [0, *range(2, input.ndim)]
        shape = [1, -1] + [1] * (input.ndim - 2)
        n_local = input.numel() // input.shape[1]
        # the value count travels with the sums (one collective); it carries no gradient
        packed = all_reduce(torch.cat([input.sum(dims), input.new_full((1,), float(n_local))]))
        n_total = float(packed[-1].item())
        if n_total <= 1:
            raise ValueError("Expected more than 1 value per channel when training")
        mean = packed[:-1] / n_total
        centred = input - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n_total
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                # momentum None: cumulative average, as nn.BatchNorm2d does
                factor = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked.item())
                )
                self.running_mean.lerp_(mean.detach().to(self.running_mean), factor)
                unbiased = var.detach() * (n_total / (n_total - 1.0))
                self.running_var.lerp_(unbiased.to(self.running_var), factor)
        return out


@contextlib.contextmanager
def global_batchnorm(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every plain ``BatchNorm2d`` of ``module`` is a :class:`GlobalBatchNorm2d`.

    The layers change class in place (the subclass adds no state), so parameters, buffers,
    ``state_dict`` keys and optimiser references are untouched, and the model handed back after
    the block is an ordinary one.
    """
    swapped = [m for m in module.modules() if type(m) is nn.BatchNorm2d]
    for m in swapped:
        m.__class__ = GlobalBatchNorm2d
    try:
        yield module
    finally:
        for m in swapped:
            m.__class__ = nn.BatchNorm2d


__all__ = [
    "TORCHRUN_ENV",
    "DistContext",
    "GlobalBatchNorm2d",
    "all_reduce_sum",
    "augment_codes",
    "batches",
    "broadcast_state",
    "context",
    "data_parallel",
    "default_backend",
    "destroy_process_group",
    "device_for_rank",
    "free_port",
    "global_batchnorm",
    "init_process_group",
    "is_active",
    "is_main_process",
    "launch",
    "launched_by_torchrun",
    "rank",
    "shard_positions",
    "world_size",
]
