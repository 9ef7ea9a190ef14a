"""torch's ``_canonical_mask`` for the attention layers: one meaning of their masks.

torch turns a bool mask (True: masked out) into a float one, -inf where masked, and adds the
masks. Where every mask given is bool they are kept bool here and combined with ``or`` by the
attention: the same weights (a masked score is -inf either way), and MLX's fast attention
kernel takes bool masks. A float mask makes every mask float, as in torch, which warns when the
two masks' dtypes differ.
"""

import math
import warnings

import mlx.core as mx

from flashdrop import _checks


def canonical(
    padding: mx.array | None,
    padding_name: str,
    mask: mx.array | None,
    mask_name: str,
    dtype: mx.Dtype,
) -> tuple[mx.array | None, mx.array | None]:
    """``(padding, mask)`` checked as torch checks them, both bool or both float (``dtype``
    for a bool one made float)."""
    _check_dtype(padding, padding_name)
    if padding is not None and mask is not None and padding.dtype != mask.dtype:
        warnings.warn(_checks.mismatched_masks(padding_name, mask_name), stacklevel=4)
    _check_dtype(mask, mask_name)
    if all(array is None or array.dtype == mx.bool_ for array in (padding, mask)):
        return padding, mask
    return as_float(padding, dtype), as_float(mask, dtype)


def _check_dtype(mask: mx.array | None, name: str) -> None:
    if mask is not None and not (mask.dtype == mx.bool_ or mx.issubdtype(mask.dtype, mx.floating)):
        _checks.raise_mask_dtype(name)


def as_float(mask: mx.array | None, dtype: mx.Dtype) -> mx.array | None:
    """A bool mask as 0 / -inf in ``dtype``; a float one as it is."""
    if mask is None or mask.dtype != mx.bool_:
        return mask
    return mx.where(mask, mx.array(-math.inf, dtype), mx.array(0, dtype))


def causal(size: int, dtype: mx.Dtype = mx.float32) -> mx.array:
    """torch's ``generate_square_subsequent_mask``: -inf above the diagonal, 0 elsewhere."""
    return mx.triu(mx.full((size, size), -math.inf, dtype), k=1)


def is_causal(mask: mx.array | None, hint: bool | None, size: int) -> bool:
    """torch's ``_detect_is_causal_mask``: the hint, or when it is None whether ``mask`` is the
    causal mask of ``size`` (bool: True above the diagonal)."""
    if hint is not None or mask is None:
        return hint is True
    if mask.shape != (size, size):
        return False
    expected = causal(size, mask.dtype if mask.dtype != mx.bool_ else mx.float32)
    if mask.dtype == mx.bool_:
        expected = expected == -math.inf
    return bool(mx.array_equal(mask, expected))
