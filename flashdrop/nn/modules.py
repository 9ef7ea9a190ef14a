r"""torch.nn's six dropout modules, and the dropout family beyond torch.nn, as
``mlx.nn.Module`` subclasses.

Each is a docstring, its arguments' checks and a one-line ``forward`` into
:mod:`flashdrop.nn.functional`; :class:`_Layer` owns training mode, calling and the repr,
:class:`_DropoutNd` ``p`` and ``inplace``. They hold no parameters, nest in
``mlx.nn.Sequential`` and user modules, and follow ``model.train()`` and ``model.eval()`` of the
model around them.
"""

from typing import Any

import mlx.core as mx
import mlx.nn

from flashdrop import _checks, _random
from flashdrop.nn import functional as F

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


class _Layer(mlx.nn.Module):
    """A parameterless layer called like a torch module: ``forward``, ``extra_repr``, ``train``.

    Its arguments are kept as given, for reading and the repr, as torch keeps them, but never
    as MLX parameters, whatever their types: ``mlx.nn.Module`` makes every ``mx.array``
    attribute (and every list, tuple or dict) an entry of the module, an array a trainable
    parameter, which an optimizer would then move. Here every attribute is a plain one, and
    ``layer[key] = value`` is refused.
    """

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)  # an attribute, never an entry of the module

    def __setitem__(self, key: str, value: Any) -> None:
        _checks.raise_layer_item(type(self).__name__, key)

    def train(self, mode: bool = True) -> "_Layer":
        """Set training mode (``mode=True``) or evaluation mode, as torch: ``mode`` must be a
        bool. Returns the module."""
        _checks.check_train_mode(mode)
        return super().train(mode)

    # mlx.nn.Module's `training` is read-only; torch code also assigns it.
    @property
    def training(self) -> bool:
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = mode

    def forward(self, input: mx.array) -> mx.array:
        raise NotImplementedError

    def __call__(self, input: mx.array) -> mx.array:
        _random.note_training_flag(self)  # a flashdrop.compile trace depends on self.training
        return self.forward(input)

    def extra_repr(self) -> str:
        raise NotImplementedError

    def _extra_repr(self) -> str:  # what mlx.nn.Module's repr calls
        return self.extra_repr()


class _DropoutNd(_Layer):
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


class StochasticDepth(_Layer):
    r"""Stochastic depth (torchvision.ops): randomly drop the whole input, or whole samples.

    For the residual branch of a block: ``x + sd(branch(x))``. In training, ``mode="row"``
    zeroes each sample ``input[i]`` independently with probability :attr:`p`, ``mode="batch"``
    the whole input; survivors are scaled by :math:`\frac{1}{1-p}`. In evaluation the module
    is the identity.

    Args:
        p: probability of the input (or a sample) to be zeroed.
        mode: ``"batch"`` or ``"row"``.

    Shape:
        - Input: :math:`(N, *)`; any shape with ``mode="batch"``.
        - Output: same shape as input.

    Example::

        >>> m = nn.StochasticDepth(p=0.2, mode="row")
        >>> output = m(mx.random.normal((20, 16)))
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        _checks.check_drop_probability(type(self).__name__, "p", p)
        _checks.check_stochastic_depth_mode(mode)
        self.p = p
        self.mode = mode

    def forward(self, input: mx.array) -> mx.array:
        return F.stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class DropPath(_Layer):
    r"""Drop paths per sample (timm): stochastic depth of a residual branch, by sample.

    In training, each sample ``input[i]`` is zeroed independently with probability
    :attr:`drop_prob`; survivors are scaled by :math:`\frac{1}{1-p}` if :attr:`scale_by_keep`.
    In evaluation the module is the identity.

    Args:
        drop_prob: probability of a sample to be zeroed. Default: 0.0
        scale_by_keep: scale the survivors by :math:`\frac{1}{1-p}`. Default: ``True``

    Shape:
        - Input: :math:`(N, *)`.
        - Output: same shape as input.

    Example::

        >>> m = nn.DropPath(0.1)
        >>> output = x + m(branch(x))
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        _checks.check_drop_probability(type(self).__name__, "drop_prob", drop_prob)
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, input: mx.array) -> mx.array:
        return F.drop_path(input, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        # float(): a 0-d mx.array has no __round__ (timm's 0-d tensor has).
        return f"drop_prob={round(float(self.drop_prob), 3):0.3f}"


class DropBlock2d(_Layer):
    r"""DropBlock (torchvision.ops): zero square blocks of each channel, and rescale.

    In training, blocks of :attr:`block_size` x :attr:`block_size` (clamped to the input's
    height and width; odd) are zeroed in each channel, about a fraction :attr:`p` of the input,
    and the output is scaled by :math:`\frac{\text{numel}}{\epsilon + \text{kept}}`. In
    evaluation the module is the identity. See :func:`flashdrop.nn.functional.drop_block2d`.

    Args:
        p: probability of an element to be dropped.
        block_size: size of the blocks dropped; odd.
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        eps: added to the denominator of the scale. Default: 1e-6

    Shape:
        - Input: :math:`(N, C, H, W)` (channels first).
        - Output: same shape as input.

    Example::

        >>> m = nn.DropBlock2d(p=0.1, block_size=3)
        >>> output = m(mx.random.normal((20, 16, 32, 32)))
    """

    def __init__(
        self, p: float, block_size: int, inplace: bool = False, eps: float = 1e-06
    ) -> None:
        super().__init__()
        _checks.check_drop_probability(type(self).__name__, "p", p, end=".")
        self.p = p
        self.block_size = block_size
        self.inplace = inplace
        self.eps = eps

    def forward(self, input: mx.array) -> mx.array:
        return F.drop_block2d(input, self.p, self.block_size, self.inplace, self.eps, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}, inplace={self.inplace}"


class DropBlock3d(DropBlock2d):
    r"""DropBlock (torchvision.ops) of cubic blocks: :class:`DropBlock2d` with a depth axis.

    Args:
        p: probability of an element to be dropped.
        block_size: size of the blocks dropped; odd.
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        eps: added to the denominator of the scale. Default: 1e-6

    Shape:
        - Input: :math:`(N, C, D, H, W)` (channels first).
        - Output: same shape as input.

    Example::

        >>> m = nn.DropBlock3d(p=0.1, block_size=3)
        >>> output = m(mx.random.normal((2, 16, 8, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.drop_block3d(input, self.p, self.block_size, self.inplace, self.eps, self.training)


class LockedDropout(_Layer):
    r"""Locked (variational) dropout of AWD-LSTM: one mask per sequence, shared over time.

    For the inputs and outputs of recurrent layers: in training, each feature of each sequence
    is zeroed for all time steps at once with probability :attr:`p`, and kept ones are scaled
    by :math:`\frac{1}{1-p}`. In evaluation the module is the identity.

    Args:
        p: probability of a feature to be zeroed. Default: 0.5
        batch_first: the input is :math:`(N, L, H)` rather than :math:`(L, N, H)`.
            Default: ``False``

    Shape:
        - Input: :math:`(L, N, H)`, :math:`(N, L, H)` with ``batch_first=True``, or
          unbatched :math:`(L, H)`.
        - Output: same shape as input.

    Example::

        >>> m = nn.LockedDropout(p=0.3)
        >>> output = m(mx.random.normal((35, 8, 400)))
    """

    def __init__(self, p: float = 0.5, batch_first: bool = False) -> None:
        super().__init__()
        _checks.check_p(type(self).__name__, p, 0, 1)
        self.p = p
        self.batch_first = batch_first

    def forward(self, input: mx.array) -> mx.array:
        return F.locked_dropout(input, self.p, self.training, self.batch_first)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}"
