"""Models: tensors in, tensors out (AnnData handling lives in :mod:`stfield.tl`).

Add a coordinate backbone with one file in ``backbones/`` and one line in its registry.
"""

from .backbones import BACKBONES, make_backbone
from .gae import GAE
from .hvqvae import HVQVAE, HVQVAEConfig, VQModel
from .suica import SUICA
from .vae import ConvVAE, ConvVAEConfig

__all__ = [
    "BACKBONES",
    "GAE",
    "HVQVAE",
    "SUICA",
    "ConvVAE",
    "ConvVAEConfig",
    "HVQVAEConfig",
    "VQModel",
    "make_backbone",
]
