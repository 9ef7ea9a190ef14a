r"""The dropout family beyond torch.nn, as ``mlx.nn.Module`` subclasses: torchvision.ops'
:class:`StochasticDepth`, :class:`DropBlock2d` and :class:`DropBlock3d`, timm's
:class:`DropPath`, AWD-LSTM's :class:`LockedDropout`.

Each checks and keeps the original's arguments, writes its repr as the original does, and calls
its function in :mod:`flashdrop.nn.functional`.
"""

import mlx.core as mx

from flashdrop import _checks
from flashdrop.nn import functional as F
from flashdrop.nn.modules._layer import Layer

__all__ = ["DropBlock2d", "DropBlock3d", "DropPath", "LockedDropout", "StochasticDepth"]


class StochasticDepth(Layer):
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


class DropPath(Layer):
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


class DropBlock2d(Layer):
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


class LockedDropout(Layer):
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
