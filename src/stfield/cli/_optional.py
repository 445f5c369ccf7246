"""Subcommands that live in their own modules (one per model family)."""

from __future__ import annotations

import importlib

import click

# module name -> names of click commands it defines; each module is one model family.
_MODULES: dict[str, tuple[str, ...]] = {
    "suica": ("fit", "predict"),
    "vq": ("vq",),
    "bench": ("benchmark",),
    "shards": ("shard",),
}


def commands() -> list[click.Command]:
    """Return the click commands of every registered module that imports cleanly."""
    found: list[click.Command] = []
    for module_name, names in _MODULES.items():
        module = importlib.import_module(f".{module_name}", __package__)
        found.extend(getattr(module, name) for name in names)
    return found
