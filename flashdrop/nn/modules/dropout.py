r"""torch.nn's six dropout modules, as ``mlx.nn.Module`` subclasses.

Each is a docstring and a one-line ``forward`` into :mod:`flashdrop.nn.functional`;
:class:`_DropoutNd` (torch's name: its ``__init__`` is named in argument errors) checks and
keeps ``p`` and ``inplace``, :class:`_ChannelDropoutNd` adds ``channel_dim``.
"""

import mlx.core as mx

from flashdrop import _checks
from flashdrop.nn import functional as F
from flashdrop.nn.modules._layer import Layer

__all__ = [
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
]


class _DropoutNd(Layer):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        # torch's modules compare p with the ints 0 and 1 (its functions with 0.0 and 1.0).
        _checks.check_p(type(self).__name__, p, 0, 1)
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class _ChannelDropoutNd(_DropoutNd):
    """A :class:`_DropoutNd` that drops whole channels, found at ``channel_dim``."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, channel_dim: int = 1) -> None:
        super().__init__(p, inplace)
        _checks.check_channel_dim(type(self).__name__, channel_dim)
        self.channel_dim = channel_dim

    # Python names the function in its argument errors ("... takes from 1 to 3 positional
    # arguments but 4 were given"); torch's channel dropouts have _DropoutNd's __init__.
    __init__.__qualname__ = "_DropoutNd.__init__"

    def extra_repr(self) -> str:
        # The default layout is left out, so that the repr stays torch's.
        if self.channel_dim == 1:
            return super().extra_repr()
        return f"{super().extra_repr()}, channel_dim={self.channel_dim}"


class Dropout(_DropoutNd):
    r"""During training, randomly zeroes some elements of the input with probability :attr:`p`.

    The zeroed elements are chosen independently on every call, from a Bernoulli distribution,
    and the kept ones are scaled by :math:`\frac{1}{1-p}`, so that in evaluation the module is
    the identity.

    Args:
        p: probability of an element to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``

    Shape:
        - Input: :math:`(*)`. Input can be of any shape
        - Output: :math:`(*)`. Output is of the same shape as input

    Example::

        >>> m = nn.Dropout(p=0.2)
        >>> output = m(mx.random.normal((20, 16)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_ChannelDropoutNd):
    r"""Randomly zero out entire channels (a channel is a 1D feature map, ``input[i, j]``).

    Each channel is zeroed independently on every call with probability :attr:`p`; kept
    channels are scaled by :math:`\frac{1}{1-p}`. Usually the input comes from a 1-D convolution
    in channel-first layout; pass ``channel_dim=-1`` after ``mlx.nn.Conv1d`` (NLC).

    Args:
        p: probability of a channel to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            as MLX's convolutions give). Keyword only; not in torch.

    Shape:
        - Input: :math:`(N, C, L)` or :math:`(C, L)`; :math:`(N, L, C)` or :math:`(L, C)` with
          ``channel_dim=-1``.
        - Output: same shape as input.

    Example::

        >>> m = nn.Dropout1d(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout1d(input, self.p, self.training, self.inplace, channel_dim=self.channel_dim)


class Dropout2d(_ChannelDropoutNd):
    r"""Randomly zero out entire channels (a channel is a 2D feature map, ``input[i, j]``).

    Each channel is zeroed independently on every call with probability :attr:`p`; kept
    channels are scaled by :math:`\frac{1}{1-p}`. As in torch, a channels-first 3-D input is
    taken as :math:`(N, C, L)` with a warning, not as an unbatched :math:`(C, H, W)`. After
    ``mlx.nn.Conv2d`` (NHWC) pass ``channel_dim=-1``; then a 3-D input is the unbatched
    :math:`(H, W, C)`, without a warning.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            as MLX's convolutions give). Keyword only; not in torch.

    Shape:
        - Input: :math:`(N, C, H, W)`; :math:`(N, H, W, C)` or :math:`(H, W, C)` with
          ``channel_dim=-1``.
        - Output: same shape as input.

    Example::

        >>> m = nn.Dropout2d(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout2d(input, self.p, self.training, self.inplace, channel_dim=self.channel_dim)


class Dropout3d(_ChannelDropoutNd):
    r"""Randomly zero out entire channels (a channel is a 3D feature map, ``input[i, j]``).

    Each channel is zeroed independently on every call with probability :attr:`p`; kept
    channels are scaled by :math:`\frac{1}{1-p}`. After ``mlx.nn.Conv3d`` (NDHWC) pass
    ``channel_dim=-1``.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            as MLX's convolutions give). Keyword only; not in torch.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`; :math:`(N, D, H, W, C)` or
          :math:`(D, H, W, C)` with ``channel_dim=-1``.
        - Output: same shape as input.

    Example::

        >>> m = nn.Dropout3d(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 4, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout3d(input, self.p, self.training, self.inplace, channel_dim=self.channel_dim)


class AlphaDropout(_DropoutNd):
    r"""Alpha dropout, which keeps a SELU network's zero mean and unit variance.

    Dropped elements are set to SELU's negative saturation value, then every element is scaled
    and shifted so that mean and variance are kept. In evaluation the module is the identity.
    As in torch, ``inplace`` is accepted and ignored.

    Args:
        p: probability of an element to be dropped. Default: 0.5
        inplace: accepted for torch's signature; ignored. Default: ``False``

    Shape:
        - Input: :math:`(*)`. Input can be of any shape
        - Output: :math:`(*)`. Output is of the same shape as input

    Example::

        >>> m = nn.AlphaDropout(p=0.2)
        >>> output = m(mx.random.normal((20, 16)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_ChannelDropoutNd):
    r"""Alpha dropout of entire channels (a channel is a feature map, ``input[i, j]``).

    Like :class:`AlphaDropout`, with one draw per channel. As in torch, ``inplace`` is accepted
    and ignored.

    Args:
        p: probability of a channel to be dropped. Default: 0.5
        inplace: accepted for torch's signature; ignored. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            as MLX's convolutions give). Keyword only; not in torch.

    Shape:
        - Input: :math:`(N, C, *)`; :math:`(N, *, C)` with ``channel_dim=-1``.
        - Output: same shape as input.

    Example::

        >>> m = nn.FeatureAlphaDropout(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 4, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.feature_alpha_dropout(input, self.p, self.training, channel_dim=self.channel_dim)
