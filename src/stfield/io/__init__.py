"""Readers: every platform's output -> AnnData (counts) or a transcripts DataFrame (molecules).

Matrix readers return an AnnData with ``.X`` CSR float32 counts, unique obs/var names,
``obsm["spatial"]`` float64 in µm and ``uns["stfield"] = {"spatial_unit": "um", "format",
"source", "pixel_size_um"?}``. Molecule readers return a DataFrame with ``gene`` (categorical),
``x, y, z`` (float64 µm), ``cell_id`` (string, NA when unassigned), and ``fov``/
``overlaps_nucleus`` where the platform gives them. Control probes and blank codewords are
dropped unless ``keep_controls=True``. Bad input raises a ``ValueError`` (or
``FileNotFoundError``) saying what is wrong, where, and how to fix it.

Use :func:`read` / :func:`read_transcripts` to detect the format, or a platform reader directly.
"""

from __future__ import annotations

from ._dispatch import FORMATS, detect_format, read, read_transcripts
from .cosmx import read_cosmx_transcripts
from .generic import parse_column_map, read_matrix_table, read_transcript_table
from .h5ad import read_h5ad
from .merscope import read_merscope, read_merscope_transcripts
from .slideseq import read_slideseq
from .stereoseq import read_stereoseq_gem
from .visium import read_visium, read_visium_hd
from .xenium import read_xenium, read_xenium_transcripts

__all__ = [
    "FORMATS",
    "detect_format",
    "parse_column_map",
    "read",
    "read_cosmx_transcripts",
    "read_h5ad",
    "read_matrix_table",
    "read_merscope",
    "read_merscope_transcripts",
    "read_slideseq",
    "read_stereoseq_gem",
    "read_transcript_table",
    "read_transcripts",
    "read_visium",
    "read_visium_hd",
    "read_xenium",
    "read_xenium_transcripts",
]
