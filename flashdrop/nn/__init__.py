"""torch.nn's dropout layers and the dropout family beyond, on MLX: ``from flashdrop import nn``.

Beyond torch.nn: :class:`StochasticDepth`, :class:`DropBlock2d` and :class:`DropBlock3d`
(torchvision.ops), :class:`DropPath` (timm), :class:`LockedDropout` (AWD-LSTM). And torch.nn's
layers that drop inside themselves: :class:`MultiheadAttention`, the Transformer family,
:class:`RNN`, :class:`LSTM` and :class:`GRU`, which load a torch checkpoint with no renaming.
"""

from flashdrop.nn import functional
from flashdrop.nn.modules import (
    GRU,
    LSTM,
    RNN,
    AlphaDropout,
    DropBlock2d,
    DropBlock3d,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    DropPath,
    FeatureAlphaDropout,
    LockedDropout,
    MultiheadAttention,
    StochasticDepth,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AlphaDropout",
    "DropBlock2d",
    "DropBlock3d",
    "DropPath",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
    "LockedDropout",
    "MultiheadAttention",
    "StochasticDepth",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "functional",
]
