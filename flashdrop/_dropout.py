"""The one place that draws dropout masks and applies torch's formulas.

:func:`dropout` is ATen's ``_dropout_impl`` on ``mx.array``: the same order of checks, the same
early returns, the same noise shapes, and values rounded exactly as torch rounds them, so that in
torch mode (same mask) the output bits are torch's. The public functions in
:mod:`flashdrop.nn.functional` add torch's Python layer (argument checks, warnings, unbatched
inputs) and call this.
"""

import functools
import math

import mlx.core as mx

from flashdrop import _checks, _random

# SELU's scale * alpha: alpha dropout sets dropped activations to -A before its affine correction.
_ALPHA = 1.7580993408473766


def dropout(
    input: mx.array,
    p: float,
    training: bool,
    inplace: bool,
    *,
    feature: bool = False,
    alpha: bool = False,
    batched: bool = True,
) -> mx.array:
    """Dropout of every kind on an ``mx.array``.

    Args:
        input: the array; its dtype is kept.
        p: probability of an element (or channel) to be dropped.
        training: apply dropout if ``True``; otherwise ``input`` itself is returned.
        inplace: write the result into ``input`` (every reference to it sees the new values)
            and return ``input``.
        feature: one mask value per channel, ``input[n, c]``, instead of per element.
        alpha: alpha dropout (dropped values set to SELU's saturation, then an affine
            correction keeps mean and variance) instead of zeroing and scaling by 1/(1-p).
        batched: ``False`` for an unbatched ``(C, ...)`` input to feature dropout: masked as
            the batch of one torch makes of it, without reshaping the input.
    """
    _checks.check_p_is_probability(p)
    # Nothing is drawn: the very same array comes back.
    if p == 0 or not training or input.size == 0:
        return input
    # No draw either; multiplying (not filling) keeps torch's NaN for NaN and inf inputs.
    if p == 1:
        return _result(input, input * mx.zeros((), input.dtype), inplace)

    noise_shape = _feature_noise_shape(input, batched) if feature else input.shape
    _checks.check_can_draw(input.dtype)
    if not mx.issubdtype(input.dtype, mx.floating):
        # torch fails only after drawing the mask: draw it too, so the streams stay in step.
        _random.bernoulli(noise_shape, 1 - p)
        _checks.raise_cannot_scale(input.dtype, alpha)

    constants = _alpha_constants(input.dtype, p) if alpha else (_scale(input.dtype, p),)
    if _random.get_rng_mode() == "mlx":
        output = _draw_and_apply_fused(input, noise_shape, _keep_probability(p), constants)
    else:
        output = _draw_and_apply(input, noise_shape, 1 - p, constants)
    return _result(input, output, inplace)


def _draw_and_apply(
    input: mx.array,
    noise_shape: tuple[int, ...],
    q: float | mx.array,
    constants: tuple[mx.array, ...],
) -> mx.array:
    """Draw the keep mask (probability ``q``) and apply torch's formula with ``constants``.

    Plain dropout multiplies by the noise, ``scale`` where kept and 0 where dropped (a product,
    not a select, so NaN and inf inputs give NaN where dropped, as in torch). Alpha dropout
    then adds its shift for kept or dropped elements.
    """
    keep = _random.bernoulli(noise_shape, q)
    if len(constants) == 1:
        (scale,) = constants
        return input * mx.where(keep, scale, 0)
    scale, shift_kept, shift_dropped = constants
    return input * mx.where(keep, scale, 0) + mx.where(keep, shift_kept, shift_dropped)


# In mlx mode MLX draws the mask itself, so the draw and the formula compile into fused kernels
# (the random state threaded through, so every call draws afresh). In torch mode the mask is
# drawn on the host and cannot be compiled.
_draw_and_apply_fused = _random.compile(_draw_and_apply)


def _feature_noise_shape(input: mx.array, batched: bool) -> tuple[int, ...]:
    """(N, C, 1, ..., 1): one draw per channel; (C, 1, ..., 1) for an unbatched input."""
    leading = 2 if batched else 1
    _checks.check_feature_dims(input.ndim + 2 - leading)
    return input.shape[:leading] + (1,) * (input.ndim - leading)


def _result(input: mx.array, output: mx.array, inplace: bool) -> mx.array:
    if not inplace:
        return output
    # MLX arrays are immutable; assigning to `input[...]` rebinds the array object itself,
    # so every reference to it sees the result, as with torch's in-place ops.
    input[...] = output
    return input


# The constants below are computed once per (dtype, p), rounded as torch rounds them: torch
# computes float16/bfloat16 ops in float32 and rounds to the dtype once per op, a Python scalar
# factor stays float32, a Python scalar addend is rounded to the dtype first.


def _round(value: float | mx.array, dtype: mx.Dtype) -> mx.array:
    """``value`` as float32 (float64 for float64), rounded once to ``dtype``."""
    compute = mx.float64 if dtype == mx.float64 else mx.float32
    return mx.array(value, compute).astype(dtype)


@functools.lru_cache(maxsize=256)
def _keep_probability(p: float) -> mx.array:
    """1 - p as the array the fused draw takes (an array, so a new p needs no new trace)."""
    return mx.array(1 - p, mx.float32)


@functools.lru_cache(maxsize=256)
def _scale(dtype: mx.Dtype, p: float) -> mx.array:
    """torch's ``noise.div_(1 - p)`` for a kept element: 1 / (1-p) with the divisor in float32."""
    if dtype == mx.float64:
        return mx.array(1 / (1 - p), mx.float64)
    return _round(mx.array(1, mx.float32) / mx.array(1 - p, mx.float32), dtype)


@functools.lru_cache(maxsize=256)
def _alpha_constants(dtype: mx.Dtype, p: float) -> tuple[mx.array, mx.array, mx.array]:
    """Alpha dropout's per-element factor for kept elements, and its shift for kept and dropped.

    torch computes, with noise 1 where kept and 0 where dropped::

        a = 1 / sqrt((A*A*p + 1) * (1 - p))
        b = (noise - 1) * (A*a) + A*a*p
        output = input * (noise * a) + b

    so a kept element gets ``input * a + A*a*p`` and a dropped one ``input * 0 + (A*a*p - A*a)``.
    """
    a = 1 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    if dtype == mx.float64:
        return (
            mx.array(a, mx.float64),
            mx.array(_ALPHA * a * p, mx.float64),
            mx.array(-1.0 * (_ALPHA * a) + _ALPHA * a * p, mx.float64),
        )
    shift = _round(_ALPHA * a * p, dtype)
    minus_aa = _round(mx.array(-1, mx.float32) * mx.array(_ALPHA * a, mx.float32), dtype)
    shift_dropped = _round(minus_aa.astype(mx.float32) + shift.astype(mx.float32), dtype)
    return _round(a, dtype), shift, shift_dropped
