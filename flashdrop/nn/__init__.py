"""torch.nn's dropout layers and the dropout family beyond, on MLX: ``from flashdrop import nn``.

Beyond torch.nn: :class:`StochasticDepth`, :class:`DropBlock2d` and :class:`DropBlock3d`
(torchvision.ops), :class:`DropPath` (timm), :class:`LockedDropout` (AWD-LSTM).
"""

from flashdrop.nn import functional
from flashdrop.nn.activation import MultiheadAttention
from flashdrop.nn.modules import (
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
    StochasticDepth,
)
from flashdrop.nn.rnn import GRU, LSTM, RNN
from flashdrop.nn.transformer import (
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
