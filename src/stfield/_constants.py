"""Every AnnData key and column name stfield reads or writes, in one place."""

from __future__ import annotations

#: ``adata.obsm`` key holding spot/cell coordinates, always in micrometres.
SPATIAL_KEY = "spatial"
#: ``adata.uns`` key holding everything stfield records (units, parameters, provenance).
UNS_KEY = "stfield"
#: Prefix of every layer / obsm / obsp key that stfield writes.
KEY_PREFIX = "stfield_"
#: ``adata.obsp`` key of the spatial kNN graph written by :func:`stfield.pp.spatial_neighbors`.
GRAPH_KEY = "stfield_connectivities"
#: Unit of ``obsm["spatial"]`` after any stfield reader.
SPATIAL_UNIT = "um"

#: Canonical transcript-table columns produced by every transcript reader.
TX_GENE = "gene"
TX_X = "x"
TX_Y = "y"
TX_Z = "z"
TX_CELL = "cell_id"
TX_FOV = "fov"
TX_NUCLEUS = "overlaps_nucleus"
TRANSCRIPT_COLUMNS = (TX_GENE, TX_X, TX_Y, TX_Z, TX_CELL)

#: Regular expression matching control probes / blank codewords of the imaging platforms
#: (Xenium ``BLANK_*``/``NegControl*``/``UnassignedCodeword*``, MERSCOPE ``Blank-*``, CosMx
#: ``NegPrb*``/``SystemControl*``, generic ``notarget``).
CONTROL_PATTERN = (
    r"^(?:blank|negcontrol|negprb|neg_ctrl|systemcontrol|unassignedcodeword|"
    r"deprecatedcodeword|intergenic|notarget|antisense_)"
)
