"""The one place that draws dropout masks and applies torch's formulas.

:func:`dropout` is ATen's ``_dropout_impl`` on ``mx.array``: the same order of checks, the same
early returns, the same noise shapes, and values rounded exactly as torch rounds them, so that in
torch mode (same mask) the output bits are torch's. The public functions in
:mod:`flashdrop.nn.functional` add torch's Python layer (argument checks, warnings, unbatched
inputs) and call this.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from flashdrop import _checks, _dtypes, _random

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
    channel_dim: int = 1,
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
        batched: ``False`` for an unbatched ``(C, *)`` (or ``(*, C)``) input to feature
            dropout: masked as the batch of one torch makes of it, without reshaping the input.
        channel_dim: where feature dropout finds the channels: ``1`` (``(N, C, *)`` or
            unbatched ``(C, *)``) or ``-1`` (``(N, *, C)`` or unbatched ``(*, C)``).
    """
    _checks.check_p_is_probability(p)
    # Nothing is drawn: the very same array comes back.
    if p == 0 or not training or input.size == 0:
        return input
    # No draw either; multiplying (not filling) keeps torch's NaN for NaN and inf inputs.
    if p == 1:
        return _result(input, input * mx.zeros((), input.dtype), inplace)

    noise_shape = _feature_noise_shape(input, batched, channel_dim) if feature else input.shape
    return _result(input, _masked(input, noise_shape, p, alpha=alpha), inplace)


def drop(
    input: mx.array,
    noise_shape: tuple[int, ...],
    p: float,
    scale: bool = True,
    *,
    true_divide: bool = False,
) -> mx.array:
    """``input * empty(noise_shape, dtype=input.dtype).bernoulli_(1 - p).div_(1 - p)``.

    The formula torchvision's ``stochastic_depth``, timm's ``drop_path`` and AWD-LSTM's locked
    dropout share, with their rounding: the same values as :func:`dropout`'s, except that
    ``p == 1`` draws its (all-dropped) mask, and that ``scale=False`` or ``p == 1`` skips the
    division. The caller checks ``p`` and returns early when nothing is to be dropped.

    ``true_divide``: the mask is divided out of place (AWD-LSTM's ``m / (1 - p)``), not with
    ``div_``: on an int or bool input that gives a float32 mask and a float32 output, where
    ``div_`` fails.
    """
    if true_divide and p < 1 and not mx.issubdtype(input.dtype, mx.floating):
        _checks.check_can_draw(input.dtype)
        input = input.astype(mx.float32)  # float32(x) * float32 mask: torch's promotion
    return _masked(input, noise_shape, p, scale=scale and p < 1)


def drop_block(input: mx.array, p: float, block_size: int, inplace: Any, eps: float) -> mx.array:
    """torchvision's ``drop_block2d`` / ``drop_block3d`` on ``(N, C, *spatial)``, after its checks.

    Block centres are drawn with ``bernoulli_(gamma)`` on ``(N, C, S - block_size + 1, ...)``,
    each grown to a ``block_size`` cube (torchvision: zero padding, then a max-pool of stride 1),
    the survivors scaled by ``numel / (eps + kept)``, every step rounded as torch rounds it.
    ``inplace`` is read by truthiness after the draw, where torchvision reads it.
    """
    spatial = input.shape[2:]
    fn = f"drop_block{len(spatial)}d"
    block_size = min(_checks.to_int(block_size), *spatial)
    _checks.check_block_size(fn, block_size)
    _checks.check_can_draw(input.dtype)
    # gamma, with torchvision's order of operations: (p * H * W) / (bs**2 * ((H-bs+1) * (W-bs+1)))
    gamma = math.prod(spatial, start=p) / (
        block_size ** len(spatial) * math.prod(size - block_size + 1 for size in spatial)
    )
    centres = _random.bernoulli(
        input.shape[:2] + tuple(size - block_size + 1 for size in spatial), gamma, like=input
    )
    _checks.check_max_pool(centres, block_size, input.dtype)
    # torchvision pads the centres with block_size // 2 zeros, then max-pools (window block_size,
    # stride 1) with block_size // 2 more of padding; as every window holds a centre or one of
    # the zeros, the pool's -inf padding never wins and can be zeros too.
    half = block_size // 2
    dropped = mx.pad(centres, [(0, 0), (0, 0)] + [(2 * half, 2 * half)] * len(spatial))
    for axis in range(2, input.ndim):  # the max over a cube, one axis after the other
        length = dropped.shape[axis] - block_size + 1
        before = (slice(None),) * axis
        windows = (dropped[(*before, slice(k, k + length))] for k in range(block_size))
        dropped = functools.reduce(mx.logical_or, windows)
    keep = mx.logical_not(dropped)
    masked = input * keep.astype(input.dtype)
    # The scale is float32 (torch's default dtype) for an int input, whose result is float32.
    floating = mx.issubdtype(input.dtype, mx.floating)
    scale_dtype = input.dtype if floating else mx.float32
    normalize = _block_normalizer(keep.sum(), keep.size, eps, scale_dtype)
    if not _checks.truth(inplace):
        return masked * normalize
    # torchvision's input.mul_(noise).mul_(normalize): on an int input the first writes the
    # masked input, the second fails.
    _result(input, masked * normalize if floating else masked, inplace=True)
    if not floating:
        _checks.raise_cannot_scale(input.dtype, alpha=False)
    return input


def _block_normalizer(kept: mx.array, numel: int, eps: float, dtype: mx.Dtype) -> mx.array:
    """torch's ``noise.numel() / (eps + noise.sum())`` for ``kept`` ones in ``noise``: the sum
    (exact: a count) in the dtype, plus a scalar, then ``int / tensor``, which torch computes as
    ``tensor.reciprocal() * int``; each op computed in float32 (float64) and rounded."""
    compute = _dtypes.compute_dtype(dtype)
    total = _round(kept, dtype).astype(compute) + _round(eps, dtype).astype(compute)
    reciprocal = mx.array(1, compute) / total.astype(dtype).astype(compute)
    return _round(reciprocal.astype(dtype).astype(compute) * numel, dtype)


def _masked(
    input: mx.array,
    noise_shape: tuple[int, ...],
    p: float,
    *,
    alpha: bool = False,
    scale: bool = True,
) -> mx.array:
    """Draw the keep mask (probability 1 - p) and apply the formula, with torch's dtype errors."""
    dtype = input.dtype
    if dtype not in _dtypes.FLOATING:  # one test for the common case: a float input passes both
        _checks.check_can_draw(dtype)
        if alpha or scale:
            # torch fails only after drawing the mask: draw it too, so the streams stay in step.
            _random.bernoulli(noise_shape, 1 - p, like=input)
            _checks.raise_cannot_scale(dtype, alpha)

    mlx_mode = _random.get_rng_mode() == "mlx"
    if alpha:
        constants = _alpha_constants(dtype, p)
    else:
        constants = (_scale(dtype, p, mlx_mode) if scale else mx.array(1, dtype),)
    if not mlx_mode:
        # torch's stream is drawn on the host; the formula compiles with the mask as an input.
        keep = _random.bernoulli(noise_shape, 1 - p, like=input)
        return (_apply_compiled if _random.in_main_stream() else _apply)(input, keep, constants)
    q = _keep_probability(p)
    if noise_shape != input.shape:
        # Per-channel noise: made once per channel, then broadcast by one plain multiply (fused
        # into one graph, the select would run once per element: measured 1.05-1.5x slower).
        return _draw_and_apply(input, noise_shape, q, constants)
    # Element dropout: MLX's draw and the formula in one compiled graph, for repeated shapes.
    compiled = _draw_and_apply_compiled if _random.in_main_stream() else _draw_and_apply
    return compiled(input, noise_shape, q, constants)


def _draw_and_apply(
    input: mx.array, noise_shape: tuple[int, ...], q: mx.array, constants: tuple[mx.array, ...]
) -> mx.array:
    """mlx mode: draw the keep mask (probability ``q``) and apply torch's formula."""
    return _apply(input, _random.bernoulli(noise_shape, q), constants, select=True)


def _apply(
    input: mx.array, keep: mx.array, constants: tuple[mx.array, ...], select: bool = False
) -> mx.array:
    """torch's formula for the mask ``keep``: ``input * noise``, then alpha dropout's shift.

    The noise is torch's: the factor where kept and +0 where dropped, rounded to the input's
    dtype. MLX's fused kernels on the CPU make it fastest with a select where the mask is drawn
    in the same graph (mlx mode), and with ``keep * factor`` where the mask is an input array
    (torch mode: 2-5x faster than the select there); both give the same bits. The formula is
    a product: NaN and inf inputs give NaN where dropped, as in torch. Alpha dropout then adds
    its shift for kept or dropped elements.
    """
    if select:
        noise = mx.where(keep, constants[0].astype(input.dtype), mx.array(0, input.dtype))
    else:
        noise = (keep * constants[0]).astype(input.dtype)  # the factor is finite: no 0 * inf
    if len(constants) == 1:
        return input * noise
    _, shift_kept, shift_dropped = constants
    return input * noise + mx.where(keep, shift_kept, shift_dropped)


def _select(input: mx.array, keep: mx.array, constants: tuple[mx.array, ...]) -> mx.array:
    """:func:`_apply` with the select, for a mask drawn in mlx mode."""
    return _apply(input, keep, constants, select=True)


# One shapeless trace serves every shape (per dtype and number of dimensions).
_apply_compiled = mx.compile(_apply, shapeless=True)
_select_compiled = mx.compile(_select, shapeless=True)


def _draw_and_scale(
    input: mx.array, noise_shape: tuple[int, ...], q: mx.array, constants: tuple[mx.array, ...]
) -> mx.array:
    """:func:`_draw_and_apply` uncompiled, for a shape's first call.

    With one constant (plain dropout) in ``mlx.nn.Dropout``'s form, ``(keep * input) * factor``:
    the same bits as :func:`_apply`'s select (a product by the factor where kept, by zero where
    dropped) in the fewest passes. Alpha dropout's formula runs shapeless compiled.
    """
    keep = _random.bernoulli(noise_shape, q)
    if len(constants) > 1:
        return _select_compiled(input, keep, constants)
    return (keep * input) * constants[0].astype(input.dtype)


# The draw fused with the formula is traced per shape (random ops cannot be traced shapeless),
# the random state threaded through, so that every call draws afresh; a shape's first call
# runs uncompiled.
_draw_and_apply_compiled = _random.CompiledPerShape(
    _draw_and_apply, _draw_and_scale, _random.compile
)


def _feature_noise_shape(input: mx.array, batched: bool, channel_dim: int) -> tuple[int, ...]:
    """One draw per channel: (N, C, 1, ..., 1), or (C, 1, ..., 1) for an unbatched input.

    Channels last (``channel_dim=-1``): (N, 1, ..., 1, C), or (1, ..., 1, C). Either way the
    draws come n-major, c-minor, so a channels-last mask is the channels-first one moved.
    """
    leading = 2 if batched else 1  # the batch and channel axes
    _checks.check_feature_dims(input.ndim + 2 - leading)
    if channel_dim == 1:
        return input.shape[:leading] + (1,) * (input.ndim - leading)
    return input.shape[: leading - 1] + (1,) * (input.ndim - leading) + input.shape[-1:]


def _result(input: mx.array, output: mx.array, inplace: bool) -> mx.array:
    if not inplace:
        return output
    # MLX arrays are immutable; assigning to `input[...]` rebinds the array object itself,
    # so every reference to it sees the result, as with torch's in-place ops.
    input[...] = output
    return input


# The constants below are computed once per (dtype, p), rounded as torch rounds them: torch
# computes float16/bfloat16 ops in float32 and rounds to the dtype once per op, a Python scalar
# factor stays float32, a Python scalar addend is rounded to the dtype first. The noise's factor
# is returned in float32 (float64 for float64): `_apply` rounds its product with the mask.


def _constant(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Cache a constant per arguments, evaluated before it is cached: MLX evaluates an array
    only in the thread that built its graph, and the cached constants are shared by all."""

    @functools.lru_cache(maxsize=256)
    @functools.wraps(fn)
    def cached(*args: Any) -> Any:
        value = fn(*args)
        mx.eval(value)
        return value

    return cached


def _round(value: float | mx.array, dtype: mx.Dtype) -> mx.array:
    """``value`` as float32 (float64 for float64), rounded once to ``dtype``."""
    return mx.array(value, _dtypes.compute_dtype(dtype)).astype(dtype)


@_constant
def _keep_probability(p: float) -> mx.array:
    """1 - p as the array the fused draw takes (an array, so a new p needs no new trace)."""
    return mx.array(1 - p, mx.float32)


@_constant
def _scale(dtype: mx.Dtype, p: float, mlx_mode: bool = False) -> mx.array:
    """torch's ``noise.div_(1 - p)`` for a kept element: 1 / (1-p) with the divisor in float32.

    In mlx mode ``mlx.nn.Dropout``'s factor instead, ``1 / (1 - p)`` in double rounded to
    float32 (an ulp off torch's for some p), so that after the same ``mx.random.seed`` the
    output is ``mlx.nn.Dropout``'s, bit for bit. Not rounded to ``dtype``: in float16 it can
    overflow (p > 0.99998), and the mask's zeros times inf would be NaN, where torch's noise
    has 0.
    """
    if dtype == mx.float64 or mlx_mode:
        return mx.array(1 / (1 - p), _dtypes.compute_dtype(dtype))
    return mx.array(1, mx.float32) / mx.array(1 - p, mx.float32)


@_constant
def _alpha_constants(dtype: mx.Dtype, p: float) -> tuple[mx.array, mx.array, mx.array]:
    """Alpha dropout's factor for kept elements (float32, as :func:`_scale`'s), and its shift
    for kept and dropped elements.

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
    return mx.array(a, mx.float32), shift, shift_dropped
