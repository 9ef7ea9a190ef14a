r"""torch.nn.functional's six dropout functions, on ``mlx.core.array``.

Same signatures, defaults, errors and warnings as torch 2.13. Each function is torch's Python
layer (argument checks, deprecation warnings, unbatched inputs); the masks and formulas are drawn
and applied in one place, :mod:`flashdrop._dropout`.

``inplace=True`` writes the result into the input array object itself (every reference to it
sees the new values) and returns it. MLX has no views: ``F.dropout(x[0], inplace=True)`` writes
into the temporary ``x[0]``, never into ``x``.
"""

import mlx.core as mx

from flashdrop import _checks, _dropout

__all__ = [
    "alpha_dropout",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
]


def dropout(
    input: mx.array, p: float = 0.5, training: bool = True, inplace: bool = False
) -> mx.array:
    r"""During training, randomly zeroes some elements of the input with probability :attr:`p`.

    Kept elements are scaled by :math:`\frac{1}{1-p}`. See :class:`flashdrop.nn.Dropout`.

    Args:
        input: an ``mx.array`` of any shape.
        p: probability of an element to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``

    Example::

        >>> y = F.dropout(mx.ones((2, 4)), p=0.5)
    """
    _checks.check_args("dropout", input, p)
    return _dropout.dropout(input, p, training, inplace)


def alpha_dropout(
    input: mx.array, p: float = 0.5, training: bool = False, inplace: bool = False
) -> mx.array:
    r"""Apply alpha dropout to the input. See :class:`flashdrop.nn.AlphaDropout`.

    Note ``training`` defaults to ``False`` here, as in torch.

    Args:
        input: an ``mx.array`` of any shape.
        p: probability of an element to be dropped. Default: 0.5
        training: apply dropout if is ``True``. Default: ``False``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
    """
    _checks.check_args("alpha_dropout", input, p)
    return _dropout.dropout(input, p, training, inplace, alpha=True)


def dropout1d(
    input: mx.array, p: float = 0.5, training: bool = True, inplace: bool = False
) -> mx.array:
    r"""Randomly zero out entire channels (a channel is a 1D feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``. See
    :class:`flashdrop.nn.Dropout1d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, L)` or :math:`(C, L)`.
        p: probability of a channel to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
    """
    _checks.check_args("dropout1d", input, p)
    _checks.check_dropout1d_dims(input.ndim)
    return _dropout.dropout(input, p, training, inplace, feature=True, batched=input.ndim == 3)


def dropout2d(
    input: mx.array, p: float = 0.5, training: bool = True, inplace: bool = False
) -> mx.array:
    r"""Randomly zero out entire channels (a channel is a 2D feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``. As in torch, a 3-D
    input is taken as :math:`(N, C, L)` (with a warning), not as an unbatched :math:`(C, H, W)`.
    See :class:`flashdrop.nn.Dropout2d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, H, W)`.
        p: probability of a channel to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
    """
    _checks.check_args("dropout2d", input, p)
    _checks.warn_unexpected_dims("dropout2d", input.ndim, spatial=2)
    if input.ndim == 3:
        _checks.warn_dropout2d_as_1d()
    return _dropout.dropout(input, p, training, inplace, feature=True)


def dropout3d(
    input: mx.array, p: float = 0.5, training: bool = True, inplace: bool = False
) -> mx.array:
    r"""Randomly zero out entire channels (a channel is a 3D feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``. See
    :class:`flashdrop.nn.Dropout3d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        p: probability of a channel to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
    """
    _checks.check_args("dropout3d", input, p)
    _checks.warn_unexpected_dims("dropout3d", input.ndim, spatial=3)
    return _dropout.dropout(input, p, training, inplace, feature=True, batched=input.ndim == 5)


def feature_alpha_dropout(
    input: mx.array, p: float = 0.5, training: bool = False, inplace: bool = False
) -> mx.array:
    r"""Randomly mask out entire channels with alpha dropout (a channel is a feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``. Note ``training``
    defaults to ``False`` here, as in torch. See :class:`flashdrop.nn.FeatureAlphaDropout`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, *)`.
        p: probability of a channel to be dropped. Default: 0.5
        training: apply dropout if is ``True``. Default: ``False``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
    """
    _checks.check_args("feature_alpha_dropout", input, p)
    return _dropout.dropout(input, p, training, inplace, feature=True, alpha=True)
