r"""flashdrop's layers, laid out as torch's ``torch/nn/modules/``: one file per kind of layer.

- :mod:`~flashdrop.nn.modules.dropout`: torch.nn's six dropout modules;
- :mod:`~flashdrop.nn.modules.more_layers`: the dropout family beyond torch.nn (torchvision's,
  timm's, AWD-LSTM's).

Each is a docstring, its arguments' checks and a one-line ``forward`` into
:mod:`flashdrop.nn.functional`; their base, ``Layer``, owns training mode, calling and the repr.
They hold no parameters, nest in ``mlx.nn.Sequential`` and user modules, and follow
``model.train()`` and ``model.eval()`` of the model around them.
"""

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

__all__ = [
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
    "StochasticDepth",
]
