r"""torch.nn's six dropout modules, as ``mlx.nn.Module``\ s.

Each is a docstring and a one-line ``forward`` into :mod:`flashdrop.nn.functional`;
:class:`_DropoutNd` owns ``p``, ``inplace``, validation, training mode and the repr. They hold no
parameters, nest in ``mlx.nn.Sequential`` and user modules, and follow ``model.train()`` and
``model.eval()`` of the model around them.
"""

import mlx.core as mx
import mlx.nn

from flashdrop import _checks
from flashdrop.nn import functional as F

__all__ = [
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
]


class _DropoutNd(mlx.nn.Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        # torch's modules compare p with the ints 0 and 1 (its functions with 0.0 and 1.0).
        _checks.check_p(p, 0, 1)
        self.p = p
        self.inplace = inplace

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
        return self.forward(input)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def _extra_repr(self) -> str:  # what mlx.nn.Module's repr calls
        return self.extra_repr()


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


class Dropout1d(_DropoutNd):
    r"""Randomly zero out entire channels (a channel is a 1D feature map, ``input[i, j]``).

    Each channel is zeroed independently on every call with probability :attr:`p`; kept
    channels are scaled by :math:`\frac{1}{1-p}`. Usually the input comes from a 1-D convolution
    in channel-first layout.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``

    Shape:
        - Input: :math:`(N, C, L)` or :math:`(C, L)`.
        - Output: :math:`(N, C, L)` or :math:`(C, L)` (same shape as input).

    Example::

        >>> m = nn.Dropout1d(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    r"""Randomly zero out entire channels (a channel is a 2D feature map, ``input[i, j]``).

    Each channel is zeroed independently on every call with probability :attr:`p`; kept
    channels are scaled by :math:`\frac{1}{1-p}`. As in torch, a 3-D input is taken as
    :math:`(N, C, L)` with a warning, not as an unbatched :math:`(C, H, W)`.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)` (same shape as input).

    Example::

        >>> m = nn.Dropout2d(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    r"""Randomly zero out entire channels (a channel is a 3D feature map, ``input[i, j]``).

    Each channel is zeroed independently on every call with probability :attr:`p`; kept
    channels are scaled by :math:`\frac{1}{1-p}`.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)` (same shape as input).

    Example::

        >>> m = nn.Dropout3d(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 4, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.dropout3d(input, self.p, self.training, self.inplace)


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


class FeatureAlphaDropout(_DropoutNd):
    r"""Alpha dropout of entire channels (a channel is a feature map, ``input[i, j]``).

    Like :class:`AlphaDropout`, with one draw per channel. As in torch, ``inplace`` is accepted
    and ignored.

    Args:
        p: probability of a channel to be dropped. Default: 0.5
        inplace: accepted for torch's signature; ignored. Default: ``False``

    Shape:
        - Input: :math:`(N, C, *)`.
        - Output: :math:`(N, C, *)` (same shape as input).

    Example::

        >>> m = nn.FeatureAlphaDropout(p=0.2)
        >>> output = m(mx.random.normal((20, 16, 4, 32, 32)))
    """

    def forward(self, input: mx.array) -> mx.array:
        return F.feature_alpha_dropout(input, self.p, self.training)
