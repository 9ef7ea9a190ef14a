"""torch.nn's dropout layers for MLX: ``from flashdrop import nn``."""

from flashdrop.nn import functional
from flashdrop.nn.modules import (
    AlphaDropout,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    FeatureAlphaDropout,
)

__all__ = [
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
    "functional",
]
