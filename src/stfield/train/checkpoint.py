"""Resumable fits: one checkpoint file per fit, rewritten atomically.

A checkpoint holds every module's weights, the optimizer of the stage in progress, the stage's
progress (epoch, losses, early-stopping state and best weights), the numpy and torch random
states and a fingerprint of the data and settings. Resuming rebuilds the model exactly as a fresh
fit would, loads that state and continues with the next epoch, so on CPU a resumed fit ends with
the same weights as an uninterrupted one. The file is written to a temporary name and renamed,
so a fit killed while saving keeps the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._errors import input_error
from .._utils import atomic_path

logger = logging.getLogger(__name__)

#: File name inside the checkpoint directory.
CHECKPOINT_FILE = "checkpoint.pt"
#: Bumped when the layout changes; older files are refused with a clear message.
CHECKPOINT_VERSION = 1


@dataclass
class StageProgress:
    """Where a training stage stands; enough to continue it after the last finished epoch."""

    name: str
    next_epoch: int = 0
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best: float = math.inf
    best_epoch: int | None = None
    since_best: int = 0
    best_state: list[dict[str, torch.Tensor]] | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StageProgress:
        return cls(**dict(d))


def fingerprint(**parts: Any) -> str:
    """Stable hash of the data summary and settings a checkpoint belongs to.

    Arrays are hashed by content (bytes), everything else through its JSON form.
    """
    h = hashlib.sha256()
    for key in sorted(parts):
        h.update(key.encode())
        value = parts[key]
        if isinstance(value, np.ndarray):
            h.update(np.ascontiguousarray(value).tobytes())
            h.update(str(value.dtype).encode())
        else:
            h.update(json.dumps(value, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Checkpointer:
    """Save and restore the state of a multi-stage fit.

    Parameters
    ----------
    directory
        Folder that holds ``checkpoint.pt`` (created when needed).
    every
        Save every this many epochs of a stage (0: only at the end of each stage).
    fingerprint
        Hash of the data and settings (:func:`fingerprint`); a checkpoint with another hash is
        refused on resume.
    modules
        Returns the modules to save by name (called at save time, so they may be rebuilt).
    rng
        The fit's numpy generator; its state is saved and restored.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        every: int,
        fingerprint: str,
        modules: Callable[[], Mapping[str, nn.Module]],
        rng: np.random.Generator,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 0:
            raise input_error(f"must be an integer >= 0, got {every!r}", "checkpoint_every")
        self.directory = Path(directory)
        self.every = int(every)
        self.fingerprint = fingerprint
        self._modules = modules
        self._rng = rng
        #: Finished stages: name -> progress dict.
        self.completed: dict[str, dict[str, Any]] = {}
        self._resume: dict[str, Any] | None = None
        self.last_saved: str | None = None

    @property
    def path(self) -> Path:
        return self.directory / CHECKPOINT_FILE

    # ------------------------------------------------------------------ saving
    def _write(
        self, current: StageProgress | None, optimizer: torch.optim.Optimizer | None
    ) -> None:
        payload = {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "modules": {k: m.state_dict() for k, m in self._modules().items() if m is not None},
            "completed": self.completed,
            "current": current.to_dict() if current is not None else None,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "numpy_rng": self._rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            torch.save(payload, tmp)
        where = (
            f"stage {current.name!r}, epoch {current.next_epoch}"
            if current is not None
            else f"end of stage {next(reversed(self.completed))!r}"
        )
        self.last_saved = f"{self.path} ({where})"
        logger.debug("checkpoint written: %s", self.last_saved)

    def epoch_end(self, progress: StageProgress, optimizer: torch.optim.Optimizer | None) -> None:
        """Save when ``every`` epochs of this stage have finished since its start."""
        if self.every and progress.next_epoch % self.every == 0:
            self._write(progress, optimizer)

    def stage_done(self, progress: StageProgress) -> None:
        """Record a finished stage (weights as the stage left them) and save."""
        done = progress.to_dict()
        done["best_state"] = None  # already loaded into the modules
        self.completed[progress.name] = done
        self._write(None, None)

    # --------------------------------------------------------------- restoring
    def restore(self) -> bool:
        """Load the checkpoint into the modules and random states; ``False`` if there is none."""
        if not self.path.exists():
            logger.warning("no checkpoint at %s; starting from scratch", self.path)
            return False
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file gets the same answer
            raise input_error(
                f"cannot read the checkpoint ({type(exc).__name__})",
                str(self.path),
                "delete the checkpoint folder and fit again without resume",
            ) from None
        if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
            raise input_error(
                f"checkpoint format {payload.get('version') if isinstance(payload, dict) else '?'}"
                f" is not {CHECKPOINT_VERSION}",
                str(self.path),
                "resume with the stfield version that wrote it, or fit again without resume",
            )
        if payload["fingerprint"] != self.fingerprint:
            raise input_error(
                "the checkpoint was written for other data or settings",
                str(self.path),
                "resume with the same input and options, or use another checkpoint folder",
            )
        modules = self._modules()
        for name, state in payload["modules"].items():
            modules[name].load_state_dict(state)
        self._rng.bit_generator.state = payload["numpy_rng"]
        torch.set_rng_state(payload["torch_rng"])
        self.completed = dict(payload["completed"])
        self._resume = payload
        logger.info(
            "resumed from %s (finished stages: %s)", self.path, ", ".join(self.completed) or "none"
        )
        return True

    def resume_stage(
        self, name: str, optimizer: torch.optim.Optimizer | None
    ) -> StageProgress | None:
        """Progress of stage ``name`` if the checkpoint stopped inside it (loads the optimizer)."""
        payload = self._resume
        if payload is None or payload["current"] is None or payload["current"]["name"] != name:
            return None
        self._resume = None  # used once
        if optimizer is not None and payload["optimizer"] is not None:
            optimizer.load_state_dict(payload["optimizer"])
        return StageProgress.from_dict(payload["current"])


__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_VERSION", "Checkpointer", "StageProgress", "fingerprint"]
