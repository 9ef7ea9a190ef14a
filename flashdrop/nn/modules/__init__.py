r"""flashdrop's layers, laid out as torch's ``torch/nn/modules/``: one file per kind of layer.

- :mod:`~flashdrop.nn.modules.dropout`: torch.nn's six dropout modules;
- :mod:`~flashdrop.nn.modules.more_layers`: the dropout family beyond torch.nn (torchvision's,
  timm's, AWD-LSTM's);
- :mod:`~flashdrop.nn.modules.activation`: ``MultiheadAttention``;
- :mod:`~flashdrop.nn.modules.transformer_layers` and :mod:`~flashdrop.nn.modules.transformer`:
  the Transformer family (its two layers; their stacks and ``Transformer``);
- :mod:`~flashdrop.nn.modules.rnn`: ``RNN``, ``LSTM`` and ``GRU``.

Each dropout layer is a docstring, its arguments' checks and a one-line ``forward`` into
:mod:`flashdrop.nn.functional`; their base, ``Layer``, owns the repr and keeps their arguments
out of MLX's parameters. They hold no parameters, nest in ``mlx.nn.Sequential`` and user
modules, and follow ``model.train()`` and ``model.eval()`` of the model around them. The
attention, transformer and RNN layers hold torch's parameters under torch's ``state_dict()``
names. Every layer's base, ``TorchModule``, owns training mode and calling (``forward``).
"""

from flashdrop.nn.modules.activation import MultiheadAttention
from flashdrop.nn.modules.dropout import (
    AlphaDropout,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    FeatureAlphaDropout,
)
from flashdrop.nn.modules.more_layers import (
    DropBlock2d,
    DropBlock3d,
    DropPath,
    LockedDropout,
    StochasticDepth,
)
from flashdrop.nn.modules.rnn import GRU, LSTM, RNN
from flashdrop.nn.modules.transformer import (
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
]
