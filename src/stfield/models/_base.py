"""Shared model building blocks: the :class:`Backbone` base class of coordinate networks."""

from __future__ import annotations

from typing import Any

from torch import nn


class Backbone(nn.Module):
    """A coordinate network (implicit neural representation): ``(n, in_dim) -> (n, out_dim)``.

    Inputs are coordinates already normalised to about ``[-1, 1]`` per axis (the owning model
    keeps the normalisation). Subclasses record their constructor arguments in ``self.hparams``
    so a saved model can rebuild the same architecture before loading its weights.
    """

    #: Registry name of the backbone (``"ffn"``, ``"siren"``, ``"hashgrid"``).
    name: str = "backbone"

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be >= 1, got {in_dim}, {out_dim}")
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.hparams: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this architecture."""
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, **self.hparams}
