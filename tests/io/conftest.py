"""Reader fixtures: real-data cuts laid out as each platform writes them (tests/data/io)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

IO_DATA = Path(__file__).resolve().parents[1] / "data" / "io"
#: The molecules every Xenium-derived fixture was cut from (controls relabelled, see README).
XENIUM_TX = IO_DATA / "xenium" / "transcripts.parquet"
#: Prefixes of the relabelled control molecules in the Xenium fixture.
XENIUM_CONTROL_PREFIXES = ("NegControl", "BLANK_", "UnassignedCodeword")


@pytest.fixture(scope="session")
def io_data() -> Path:
    return IO_DATA


@pytest.fixture(scope="session")
def xenium_raw() -> pd.DataFrame:
    """The Xenium fixture read with plain pandas (the independent reference)."""
    return pd.read_parquet(XENIUM_TX)


@pytest.fixture(scope="session")
def xenium_genes(xenium_raw: pd.DataFrame) -> pd.DataFrame:
    """Gene molecules only (relabelled controls removed)."""
    keep = ~xenium_raw.feature_name.str.startswith(XENIUM_CONTROL_PREFIXES)
    return xenium_raw.loc[keep].reset_index(drop=True)


@pytest.fixture
def copy_fixture(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture file or folder into tmp_path (to damage it) and return the copy."""

    def _copy(rel: str) -> Path:
        src = IO_DATA / rel
        dst = tmp_path / src.name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
        return dst

    return _copy
