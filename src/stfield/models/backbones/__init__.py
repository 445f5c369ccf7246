"""Coordinate backbones (implicit neural representations), one file each, and their registry."""

from __future__ import annotations

from typing import Any

from ..._errors import input_error
from .._base import Backbone
from .ffn import FFN, FourierFeatures, nyquist_scale
from .hashgrid import HashGrid
from .siren import SIREN

#: Registry name -> backbone class.
BACKBONES: dict[str, type[Backbone]] = {"ffn": FFN, "siren": SIREN, "hashgrid": HashGrid}


def make_backbone(name: str, in_dim: int, out_dim: int, **kwargs: Any) -> Backbone:
    """Build the backbone registered under ``name``; unknown names raise ``ValueError``."""
    try:
        cls = BACKBONES[name]
    except KeyError:
        raise input_error(
            f"unknown backbone {name!r}", "backbone", f"use one of {sorted(BACKBONES)}"
        ) from None
    try:
        return cls(in_dim, out_dim, **kwargs)
    except TypeError as exc:
        raise input_error(
            f"bad options for backbone {name!r} ({exc})",
            "backbone_kwargs",
            f"see help(stfield.models.backbones.{cls.__name__})",
        ) from None


__all__ = [
    "BACKBONES",
    "FFN",
    "SIREN",
    "Backbone",
    "FourierFeatures",
    "HashGrid",
    "make_backbone",
    "nyquist_scale",
]
