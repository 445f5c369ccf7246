"""Bundled real demo data, loaded offline (nothing is ever downloaded)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
from anndata import AnnData

_XENIUM_FILE = "xenium_breast_demo_transcripts.parquet"

#: Attribution of the bundled data (also in ``stfield/_data/README.md``).
CREDITS = (
    "Xenium human breast cancer FFPE, In Situ Replicate 1 (10x Genomics, CC BY 4.0); "
    "crop redistributed by the bidcell package 1.0.3."
)


def xenium_breast_path() -> Path:
    """Path of the bundled Xenium ``transcripts.parquet`` crop (Xenium's own column layout)."""
    return Path(str(resources.files("stfield") / "_data" / _XENIUM_FILE))


def xenium_breast() -> pd.DataFrame:
    """Real Xenium breast-cancer transcripts: 134,443 molecules, 313 genes, ~400 × 350 µm.

    Returns
    -------
    pandas.DataFrame
        The canonical transcripts table (``gene, x, y, z, cell_id, overlaps_nucleus, ...`` in
        µm), read with :func:`stfield.io.read_transcripts`.
    """
    from .io import read_transcripts

    return read_transcripts(xenium_breast_path())


def xenium_breast_binned(bin_size_um: float = 10.0) -> AnnData:
    """The Xenium demo crop binned into square spots of ``bin_size_um`` µm (raw counts, CSR).

    At 10 µm this is ~1.3k spots × 313 genes; at 5 µm ~5.1k spots.
    """
    from .pp import bin_transcripts

    adata = bin_transcripts(xenium_breast(), bin_size_um)
    adata.uns["stfield"]["dataset"] = "xenium_breast"
    adata.uns["stfield"]["credits"] = CREDITS
    return adata
