"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import StfieldFileNotFoundError, input_error


def read_slice(path: Path, bin_size: float) -> AnnData:
    """Read INPUT with :func:`stfield.io.read`; bin a transcripts table into ``bin_size`` µm spots."""
    from .. import io, pp

    if not path.exists():
        raise StfieldFileNotFoundError(f"{path}: no such file or directory")
    data = io.read(path)
    if isinstance(data, pd.DataFrame):
        if not (np.isfinite(bin_size) and bin_size > 0):
            raise input_error(
                f"bin size must be a positive number of µm, got {bin_size}",
                "--bin-size",
                "pass e.g. --bin-size 10",
            )
        data = pp.bin_transcripts(data, bin_size)
    if not isinstance(data, AnnData):  # pragma: no cover - io.read returns one of the two
        raise input_error(f"expected expression data, got a {type(data).__name__}", str(path))
    return data


def parse_int_list(value: str, option: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` with a clear error naming the option."""
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise input_error(
            f"{value!r} is not a comma-separated list of integers", option, "e.g. 0,1,2"
        ) from None
    if not items:
        raise input_error("empty list", option, "e.g. 0,1,2")
    return items


#: Epochs of the SUICA presets, for --help only: a copy of ``stfield.models.suica.PRESETS`` so that
#: ``--help`` does not import torch (tests/suica/test_presets.py checks that they agree).
PRESET_EPOCHS = {
    "stfield": {"epochs_gae": 300, "epochs_inr": 300, "epochs_decoder": 300},
    "paper": {"epochs_gae": 200, "epochs_inr": 1000, "epochs_decoder": 1000},
}


def suica_epoch_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--epochs-gae/--epochs-inr/--epochs-decoder``, declared once for every SUICA command."""
    stages = (
        ("decoder", "stage 3, decoder fine-tuning"),
        ("inr", "stage 2, coordinates → embedding (also the vanilla INRs' epochs)"),
        ("gae", "stage 1, the graph autoencoder"),
    )
    for stage, what in stages:
        key = f"epochs_{stage}"
        func = click.option(
            f"--epochs-{stage}",
            type=click.IntRange(min=0),
            default=None,
            help=f"Epochs of {what} [default: the preset's; stfield: "
            f"{PRESET_EPOCHS['stfield'][key]}, paper: {PRESET_EPOCHS['paper'][key]}].",
        )(func)
    return func
