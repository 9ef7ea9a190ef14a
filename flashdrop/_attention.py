"""torch's scaled dot-product attention on ``mx.array``: the math kernel, and the fast path.

torch 2.13 on the CPU computes attention with dropout in ``_scaled_dot_product_attention_math``;
:func:`scores` and :func:`weighted_sum` are its two halves, the dropout of the weights between
them being an ordinary :func:`flashdrop._dropout.dropout` call (the public function makes it, so
that the draw is its own). Without dropout, :func:`fast` uses MLX's
``mx.fast.scaled_dot_product_attention`` where its results are torch's.

float64 is computed accurately (to float64 rounding, as torch): MLX's float64 ``exp`` and
``softmax`` on the CPU are only float32-accurate, so the softmax here raises ``e`` to the power
with ``mx.power``, which is float64-accurate (see :func:`softmax`).
"""

import math

import mlx.core as mx

from flashdrop import _dtypes, _random


def scale_of(head_dim: int, scale: float | None) -> float:
    """torch's ``calculate_scale``: ``scale``, or 1 / sqrt(E), in double (inf for E == 0)."""
    if scale is not None:
        return scale
    return 1.0 / math.sqrt(head_dim) if head_dim else math.inf


def expand_heads(query: mx.array, kv: mx.array) -> mx.array:
    """GQA: each key (value) head repeated for its group of query heads (``repeat_interleave``)."""
    if query.shape[-3] == kv.shape[-3]:
        return kv
    return mx.repeat(kv, query.shape[-3] // kv.shape[-3], axis=-3)


def causal_mask(length: int, source_length: int) -> mx.array:
    """torch's ``is_causal``: a top-left lower triangle, True where attention is allowed."""
    return mx.tril(mx.ones((length, source_length), mx.bool_))


def scores(
    query: mx.array,
    key: mx.array,
    attn_mask: mx.array | None,
    is_causal: bool,
    scale: float | None,
    flash: bool,
) -> mx.array:
    """The attention weights before dropout, (N, ..., H, L, S), in the compute dtype.

    As torch's math kernel: q and k each multiplied by sqrt(|scale|) (q by its negative for a
    negative scale), ``q @ k^T``, the mask added (a bool mask as 0 / -inf, so that a masked-out
    NaN score makes its row NaN), then a softmax that gives 0 on rows where every score is
    -inf. Where torch takes its flash kernel (``flash``), a causal mask selects instead: that
    kernel never reads the scores it masks out. ``key`` has its heads expanded already.
    """
    dtype = _dtypes.compute_dtype(query.dtype)  # float16 and bfloat16 in float32, as torch
    factor = math.sqrt(abs(scale_of(query.shape[-1], scale)))
    q_factor = mx.array(-factor if scale is not None and scale < 0 else factor, dtype)
    q = query.astype(dtype) * q_factor
    k = key.astype(dtype) * mx.array(factor, dtype)
    s = q @ k.swapaxes(-1, -2)
    if is_causal and flash:
        s = mx.where(causal_mask(query.shape[-2], key.shape[-2]), s, mx.array(-math.inf, dtype))
    elif is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2])
    if attn_mask is not None:
        s = s + additive(attn_mask, dtype)
    # A function compiled in one thread and run in another can make MLX abort at exit: in
    # other threads the same selects run uncompiled (the same bits).
    return (_safe_softmax_compiled if _random.in_main_thread() else safe_softmax)(s)


def additive(attn_mask: mx.array, dtype: mx.Dtype) -> mx.array:
    """The mask as torch adds it to the scores, in ``dtype``: a bool mask as 0 / -inf (added,
    not selected, so that a masked-out score that is NaN or +inf makes its row NaN, as in torch)."""
    if attn_mask.dtype == mx.bool_:
        return mx.where(attn_mask, mx.array(0, dtype), mx.array(-math.inf, dtype))
    return attn_mask.astype(dtype)


def safe_softmax(s: mx.array) -> mx.array:
    """torch's ``_safe_softmax``: a softmax over the last axis, 0 on rows that are all -inf."""
    masked = mx.all(s == -math.inf, axis=-1, keepdims=True)
    zero = mx.array(0, s.dtype)
    # The softmax of a masked row is NaN; it is taken of zeros instead, so that its gradient
    # (which the outer select multiplies by 0) is not NaN either.
    return mx.where(masked, zero, softmax(mx.where(masked, zero, s)))


def softmax(s: mx.array) -> mx.array:
    """A softmax over the last axis, float64-accurate for float64 ``s`` (MLX's is not)."""
    return _softmax_float64(s) if s.dtype == mx.float64 else mx.softmax(s, axis=-1)


@mx.custom_function
def _softmax_float64(s: mx.array) -> mx.array:
    """``exp(s - max) / sum``, the exponential taken as ``mx.power(e, x)`` (C's ``pow`` in
    float64, correctly rounded or nearly; MLX's float64 ``exp`` is float32-accurate).

    ``e`` in float64 is e(1 + d) with |d| < 5.4e-17, so ``e ** x`` is ``exp(x)`` times
    (1 + x d): for x = s - max <= 0 the weight's absolute error is at most
    max(exp(x) |x|) d = d / e < 2e-17, below float64's rounding of a weight near 1.
    """
    e = mx.power(mx.array(math.e, s.dtype), s - mx.max(s, axis=-1, keepdims=True))
    return e / mx.sum(e, axis=-1, keepdims=True)


@_softmax_float64.vjp
def _softmax_float64_vjp(primals: tuple, cotangent: mx.array, output: mx.array) -> mx.array:
    """The softmax's own gradient, ``p * (g - sum(p * g))`` (MLX's of ``power`` would take
    the float32-accurate ``log(e)``)."""
    return output * (cotangent - mx.sum(output * cotangent, axis=-1, keepdims=True))


# Traced per (shape, dtype), the selects fused around MLX's softmax; the traces kept are
# bounded, so that many sequence lengths do not pile them up.
_safe_softmax_compiled = _random.CompiledPerShape(safe_softmax, safe_softmax, mx.compile)


def weighted_sum(weights: mx.array, value: mx.array, dtype: mx.Dtype) -> mx.array:
    """``weights @ value`` in the compute dtype, cast back to the inputs' ``dtype``."""
    return (weights @ value.astype(weights.dtype)).astype(dtype)


def fast(
    query: mx.array,
    key: mx.array,
    value: mx.array,
    attn_mask: mx.array | None,
    is_causal: bool,
    scale: float | None,
) -> mx.array | None:
    """``mx.fast.scaled_dot_product_attention`` where it computes torch's result, else None.

    ``key`` and ``value`` are the caller's, their heads not expanded: MLX's kernel groups the
    query heads as GQA (and ``repeat_interleave``) does, query head h using key head
    h // (H_q / H). It is used for float32, float16 and bfloat16 inputs, the latter two cast to
    float32 first, as torch computes them (in their own dtype MLX's kernel overflows above
    65504 and adds a float16 mask in float16); rank 4, one batch size, one key/value head count
    dividing the query's; no mask, a causal one with L == S (MLX aligns it bottom-right, torch
    top-left), or a bool mask, given to the kernel as torch adds it (0 / -inf: a masked-out
    score that is NaN makes its row NaN). A fully masked row reaches the kernel unmasked and
    its output is replaced after by torch's 0 weights times the value, with finite gradients
    on every backend (MLX gives uniform weights there, or NaN for a row of -inf).

    Not used for float masks: MLX's kernel cannot differentiate with respect to the mask on
    the GPU (a learned bias, T5's or ALiBi's, is a mask torch differentiates) and its backward
    pass through a fully -inf row is NaN; nor for float64 (MLX's float64 softmax is
    float32-accurate: see :func:`softmax`). Shapes were checked by the caller.
    """
    if (
        query.dtype not in (mx.float32, mx.float16, mx.bfloat16)
        or query.size == 0
        or key.shape[-2] == 0
    ):
        return None
    if not query.ndim == key.ndim == value.ndim == 4:
        return None
    if not query.shape[0] == key.shape[0] == value.shape[0] or key.shape[1] != value.shape[1]:
        return None
    if query.shape[1] % key.shape[1]:  # a query head axis of 1 broadcast against the key's
        return None
    if is_causal and query.shape[-2] != key.shape[-2]:
        return None
    if attn_mask is not None and attn_mask.dtype != mx.bool_:
        return None
    q, k, v = (a.astype(mx.float32) for a in (query, key, value))
    mask: mx.array | str | None = "causal" if is_causal else None
    if attn_mask is not None:
        fully_masked = mx.logical_not(mx.any(attn_mask, axis=-1, keepdims=True))
        mask = additive(mx.logical_or(attn_mask, fully_masked), mx.float32)
    out = mx.fast.scaled_dot_product_attention(
        q, k, v, scale=scale_of(query.shape[-1], scale), mask=mask
    )
    if attn_mask is not None:
        # torch's 0 weights times the value: 0, or NaN where a score of the row or a value of
        # the column is NaN or infinite (which the unmasked row's output shows).
        nothing = out * 0 + expand_heads(query, mx.sum(v * 0, axis=-2, keepdims=True))
        out = mx.where(fully_masked, nothing, out)
    return out.astype(query.dtype)
