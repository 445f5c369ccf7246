"""Graph autoencoder of SUICA: GCN encoder on the spatial kNN graph, MLP decoder.

Encoder (as the published SUICA code): one graph convolution genes → ``hidden[0]`` with
BatchNorm and ReLU, then an MLP ``hidden[0] → hidden[1] → … → latent`` with ReLU between layers
and no activation on the latent. Decoder: the mirror image ``latent → … → genes`` with a ReLU on
the output (expression is non-negative). The encoder reads ``log1p(x)``; the loss compares the
decoder output with ``x`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class GraphConv(nn.Module):
    """``H = Â (X W) + b`` with a sparse (possibly rectangular) adjacency block ``Â``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        # Â (X W) = (Â X) W: aggregate on the narrower side (a mini-batch block has far more
        # nodes than targets, so aggregating the inputs first is usually cheaper).
        if self.linear.in_features <= self.linear.out_features:
            return self.linear(self._aggregate(adj, x)) + self.bias
        return self._aggregate(adj, self.linear(x)) + self.bias

    def forward_aggregated(self, ax: torch.Tensor) -> torch.Tensor:
        """``(Â X) W + b`` from the already aggregated input ``Â X`` of the target rows.

        Equal to :meth:`forward` (the convolution is linear), but the caller can form ``Â X``
        sparse (:meth:`stfield.data.csr.GraphBatcher.aggregate`), so a mini-batch costs one
        dense ``targets × in_dim`` product whatever the number of neighbours.
        """
        return self.linear(ax) + self.bias

    @staticmethod
    def _aggregate(adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if adj.is_sparse:
            return torch.sparse.mm(adj, h.float()).to(h.dtype)
        return adj.to(h.dtype) @ h


def _mlp(dims: Sequence[int], out_activation: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


class GCNEncoder(nn.Module):
    """``log1p(x)`` of a node set + adjacency block → latent of the target rows."""

    def __init__(self, n_genes: int, hidden: Sequence[int] = (2048, 512, 64), latent_dim: int = 32):
        super().__init__()
        if len(hidden) < 1:
            raise ValueError("hidden needs at least one width (the graph-convolution output)")
        self.conv = GraphConv(n_genes, hidden[0])
        self.norm = nn.BatchNorm1d(hidden[0])
        self.act = nn.ReLU()
        self.mlp = _mlp([*hidden, latent_dim], out_activation=None)

    def forward(self, x_log: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.act(self.norm(self.conv(x_log, adj))))

    def forward_aggregated(self, ax_log: torch.Tensor) -> torch.Tensor:
        """Latent of the target rows from ``Â log1p(X)`` (see :meth:`GraphConv.forward_aggregated`)."""
        return self.mlp(self.act(self.norm(self.conv.forward_aggregated(ax_log))))


class LeakyWhileTraining(nn.Module):
    """ReLU at inference, leaky ReLU while training, so no output unit can die.

    With a plain ReLU output, a gene whose pre-activation turns negative on every spot gets no
    gradient again and is predicted 0 everywhere for good. On the 10 µm Xenium crop that happened
    to 182 of 305 genes during the GAE stage (docs/benchmarks.md, issue #8). The small negative
    slope keeps a gradient flowing back to those genes; predictions keep exact zeros.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return nn.functional.leaky_relu(x, self.negative_slope)
        return torch.relu(x)


#: Output activations of the decoder: ``"relu"`` (published SUICA) or ``"leaky"``.
DECODER_ACTIVATIONS = ("relu", "leaky")


def _output_activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky":
        return LeakyWhileTraining()
    raise ValueError(f"unknown decoder activation {name!r}; use one of {DECODER_ACTIVATIONS}")


class MLPDecoder(nn.Module):
    """Latent → expression, ReLU between layers; ReLU (or :class:`LeakyWhileTraining`) output."""

    def __init__(
        self,
        n_genes: int,
        hidden: Sequence[int] = (64, 512, 2048),
        latent_dim: int = 32,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.net = _mlp(
            [latent_dim, *hidden, n_genes], out_activation=_output_activation(activation)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class GAE(nn.Module):
    """Graph autoencoder: :class:`GCNEncoder` + :class:`MLPDecoder` (mirrored widths).

    Parameters
    ----------
    n_genes
        Number of genes.
    hidden
        Encoder widths after the input, the first being the graph convolution's output
        (paper/reference: ``(2048, 512, 64)``); the decoder uses them reversed.
    latent_dim
        Embedding dimension (32).
    decoder_activation
        ``"relu"`` (published) or ``"leaky"`` (:class:`LeakyWhileTraining`).
    """

    def __init__(
        self,
        n_genes: int,
        hidden: Sequence[int] = (2048, 512, 64),
        latent_dim: int = 32,
        decoder_activation: str = "relu",
    ) -> None:
        super().__init__()
        self.n_genes = int(n_genes)
        self.hidden = tuple(int(h) for h in hidden)
        self.latent_dim = int(latent_dim)
        self.encoder = GCNEncoder(n_genes, self.hidden, latent_dim)
        self.decoder = MLPDecoder(
            n_genes, tuple(reversed(self.hidden)), latent_dim, decoder_activation
        )

    def encode(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Latent of the adjacency block's target rows from the raw expression ``x`` of its nodes."""
        return self.encoder(torch.log1p(x), adj)

    def encode_aggregated(self, ax_log: torch.Tensor) -> torch.Tensor:
        """Latent of the target rows from ``Â[targets] @ log1p(X)`` (dense, targets × genes).

        Same result as :meth:`encode` on the batch's nodes, without densifying the neighbours:
        build the input with :meth:`stfield.data.csr.GraphBatcher.aggregate`.
        """
        return self.encoder.forward_aggregated(ax_log)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Reconstruct the target rows of ``adj`` (raw scale) from ``log1p(x)`` of all its nodes."""
        return self.decoder(self.encode(x, adj))
