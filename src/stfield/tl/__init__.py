"""Tools: scanpy-style functions that take an AnnData and write results back into it."""

from .spatial import morans_i

__all__ = ["morans_i"]
