"""A plain, seeded training-stage runner: progress bar, history, early stopping, NaN guard."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._errors import input_error
from .checkpoint import Checkpointer, StageProgress


@dataclass
class StageHistory:
    """What one training stage did: per-epoch losses, validation losses and timing."""

    name: str
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    #: The stage's final progress (for checkpoints); not part of :meth:`as_dict`.
    progress: StageProgress | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {
            "loss": list(self.loss),
            "val_loss": list(self.val_loss),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
        }


def check_finite(
    value: float,
    stage: str,
    epoch: int,
    what: str = "loss",
    last_checkpoint: str | None = None,
) -> None:
    """Raise ``ValueError`` naming the stage, epoch and last good checkpoint on NaN or inf."""
    if not math.isfinite(value):
        resume = (
            f"; the last good checkpoint is {last_checkpoint}: resume from it (resume=True / "
            "--resume) with a lower learning rate"
            if last_checkpoint
            else "; no checkpoint was written (checkpoint_every / --checkpoint-every saves them)"
        )
        raise input_error(
            f"{what} became {value} at epoch {epoch + 1}{resume}",
            f"stage {stage!r}",
            "lower the learning rate of this stage, check the input for extreme values, or "
            "normalise the counts (stfield.pp.normalize_suica)",
        )


def run_stage(
    name: str,
    epoch_fn: Callable[[int], float],
    n_epochs: int,
    *,
    val_fn: Callable[[], float] | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    modules: Sequence[nn.Module] = (),
    progress: bool = True,
    resume: StageProgress | None = None,
    on_epoch_end: Callable[[StageProgress], None] | None = None,
    last_checkpoint: Callable[[], str | None] | None = None,
) -> StageHistory:
    """Run ``epoch_fn(epoch) -> mean training loss`` for ``n_epochs`` epochs.

    Parameters
    ----------
    name
        Stage name used in the progress bar and in error messages.
    epoch_fn
        Trains one epoch and returns its mean loss.
    n_epochs
        Number of epochs (0 skips the stage).
    val_fn
        Optional validation loss evaluated after every epoch. With it, the weights of ``modules``
        at the best validation epoch are restored at the end.
    patience
        Stop when the validation loss has not improved by more than ``min_delta`` for this many
        epochs (needs ``val_fn``); ``None`` disables early stopping.
    modules
        Modules whose best weights are kept (only used with ``val_fn``).
    progress
        Show a tqdm bar with the current loss in its postfix.
    resume
        Progress saved by a checkpoint: training continues at ``resume.next_epoch`` with its
        losses and early-stopping state.
    on_epoch_end
        Called with the progress after every epoch (checkpointing).
    last_checkpoint
        Returns a description of the last checkpoint written, quoted if the loss turns NaN.
    """
    if n_epochs < 0:
        raise input_error(f"epochs must be >= 0, got {n_epochs}", f"stage {name!r}")
    if patience is not None and val_fn is None:
        raise input_error(
            "early stopping needs a validation subset",
            f"stage {name!r}",
            "pass val_fraction > 0 or patience=None",
        )
    state = resume if resume is not None else StageProgress(name)
    start = time.perf_counter() - state.seconds
    first = state.next_epoch if not state.stopped_early else n_epochs
    bar = tqdm(
        range(first, n_epochs),
        desc=name,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
        initial=first,
        total=n_epochs,
    )

    def saved() -> str | None:
        return last_checkpoint() if last_checkpoint is not None else None

    for epoch in bar:
        loss = float(epoch_fn(epoch))
        check_finite(loss, name, epoch, last_checkpoint=saved())
        state.loss.append(loss)
        postfix = {"loss": f"{loss:.4g}"}
        if val_fn is not None:
            val = float(val_fn())
            check_finite(val, name, epoch, "validation loss", saved())
            state.val_loss.append(val)
            postfix["val"] = f"{val:.4g}"
            if val < state.best - min_delta:
                state.best, state.since_best, state.best_epoch = val, 0, epoch
                state.best_state = [copy.deepcopy(m.state_dict()) for m in modules]
            else:
                state.since_best += 1
        bar.set_postfix(postfix, refresh=False)
        state.next_epoch = epoch + 1
        state.stopped_early = patience is not None and state.since_best >= patience
        state.seconds = time.perf_counter() - start
        if on_epoch_end is not None:
            on_epoch_end(state)
        if state.stopped_early:
            break
    bar.close()
    if state.best_state is not None:
        for module, best in zip(modules, state.best_state, strict=True):
            module.load_state_dict(best)
    state.seconds = time.perf_counter() - start
    hist = StageHistory(
        name,
        loss=list(state.loss),
        val_loss=list(state.val_loss),
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        seconds=state.seconds,
    )
    hist.progress = state
    return hist


def run_minibatch_stage(
    name: str,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_on: Callable[[np.ndarray], torch.Tensor],
    train_idx: np.ndarray,
    n_epochs: int,
    *,
    batch_size: int | None,
    rng: np.random.Generator,
    val_idx: np.ndarray | None = None,
    patience: int | None = None,
    progress: bool = True,
    checkpointer: Checkpointer | None = None,
) -> StageHistory:
    """Train ``module`` by shuffled mini-batches of rows; ``loss_on(rows)`` gives a batch's loss.

    Each epoch visits ``train_idx`` once in an order drawn from ``rng`` (seeded runs repeat
    exactly) and returns the row-weighted mean loss; with a non-empty ``val_idx`` the
    validation loss is computed after every epoch and :func:`run_stage` keeps the best weights.
    With a ``checkpointer`` the stage resumes from its checkpoint (weights, optimizer, epoch) and
    saves one every ``checkpointer.every`` epochs.
    """
    from ..data.csr import batch_indices

    def epoch_fn(epoch: int) -> float:
        module.train()
        total, count = 0.0, 0
        for rows in batch_indices(train_idx, batch_size, shuffle=True, rng=rng):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_on(rows)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * rows.size
            count += rows.size
        return total / max(count, 1)

    @torch.no_grad()
    def val_fn() -> float:
        module.eval()
        total = 0.0
        for rows in batch_indices(val_idx, batch_size, shuffle=False):
            total += float(loss_on(rows)) * rows.size
        return total / val_idx.size

    has_val = val_idx is not None and val_idx.size > 0
    hooks: dict = {}
    if checkpointer is not None:
        hooks = {
            "resume": checkpointer.resume_stage(name, optimizer),
            "on_epoch_end": lambda state: checkpointer.epoch_end(state, optimizer),
            "last_checkpoint": lambda: checkpointer.last_saved,
        }
    return run_stage(
        name,
        epoch_fn,
        n_epochs,
        val_fn=val_fn if has_val else None,
        patience=patience,
        modules=[module],
        progress=progress,
        **hooks,
    )


__all__ = ["StageHistory", "check_finite", "run_minibatch_stage", "run_stage"]
