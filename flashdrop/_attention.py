"""torch's scaled dot-product attention on ``mx.array``: the math kernel, and the fast path.

torch 2.13 on the CPU computes attention with dropout in ``_scaled_dot_product_attention_math``;
:func:`scores` and :func:`weighted_sum` are its two halves, the dropout of the weights between
them being an ordinary :func:`flashdrop._dropout.dropout` call (the public function makes it, so
that the draw is its own). Without dropout, :func:`fast` uses MLX's
``mx.fast.scaled_dot_product_attention`` where its results are torch's.
"""

import math

import mlx.core as mx

_HALF = (mx.float16, mx.bfloat16)


def compute_dtype(dtype: mx.Dtype) -> mx.Dtype:
    """torch keeps float16 and bfloat16 attention in float32."""
    return mx.float32 if dtype in _HALF else dtype


def scale_of(head_dim: int, scale: float | None) -> float:
    """torch's ``calculate_scale``: ``scale``, or 1 / sqrt(E), in double."""
    return 1.0 / math.sqrt(head_dim) if scale is None else scale


def expand_heads(query: mx.array, kv: mx.array) -> mx.array:
    """GQA: each key (value) head repeated for its group of query heads (``repeat_interleave``)."""
    repeats = query.shape[-3] // kv.shape[-3]
    return kv if repeats == 1 else mx.repeat(kv, repeats, axis=-3)


def causal_mask(length: int, source_length: int) -> mx.array:
    """torch's ``is_causal``: a top-left lower triangle, True where attention is allowed."""
    return mx.tril(mx.ones((length, source_length), mx.bool_))


def scores(
    query: mx.array,
    key: mx.array,
    attn_mask: mx.array | None,
    is_causal: bool,
    scale: float | None,
) -> mx.array:
    """The attention weights before dropout, (N, ..., H, L, S), in the compute dtype.

    As torch: q and k each multiplied by sqrt(|scale|) (q by its negative for a negative scale),
    ``q @ k^T``, the mask added (a bool mask as 0 / -inf), then a softmax that gives 0 on rows
    where every score is -inf. ``key`` has its heads expanded already.
    """
    dtype = compute_dtype(query.dtype)
    factor = math.sqrt(abs(scale_of(query.shape[-1], scale)))
    q_factor = mx.array(-factor if scale is not None and scale < 0 else factor, dtype)
    q = query.astype(dtype) * q_factor
    k = key.astype(dtype) * mx.array(factor, dtype)
    s = q @ k.swapaxes(-1, -2)
    if is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2])
    if attn_mask is not None:
        if attn_mask.dtype == mx.bool_:
            s = mx.where(attn_mask, s, mx.array(-math.inf, dtype))
        else:
            s = s + attn_mask.astype(dtype)
    return _safe_softmax_compiled(s)


def safe_softmax(s: mx.array) -> mx.array:
    """torch's ``_safe_softmax``: a softmax over the last axis, 0 on rows that are all -inf."""
    masked = mx.all(s == -math.inf, axis=-1, keepdims=True)
    zero = mx.array(0, s.dtype)
    # The softmax of a masked row is NaN; it is taken of zeros instead, so that its gradient
    # (which the outer select multiplies by 0) is not NaN either.
    return mx.where(masked, zero, mx.softmax(mx.where(masked, zero, s), axis=-1))


# Compiled once, traced per (shape, dtype): the selects fuse around MLX's softmax.
_safe_softmax_compiled = mx.compile(safe_softmax)


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

    MLX's kernel takes rank-4 inputs of one batch size and one key/value head count (it groups
    query heads as GQA does), aligns a causal mask bottom-right (torch: top-left; the same when
    L == S) and gives uniform weights on a fully masked row (torch: 0; those rows are zeroed
    here). Shapes were checked by the caller.
    """
    if query.dtype not in (mx.float32, *_HALF) or query.size == 0 or key.shape[-2] == 0:
        return None
    if not query.ndim == key.ndim == value.ndim == 4:
        return None
    if not query.shape[0] == key.shape[0] == value.shape[0] or key.shape[1] != value.shape[1]:
        return None
    if is_causal and query.shape[-2] != key.shape[-2]:
        return None
    if attn_mask is not None and attn_mask.dtype not in (mx.bool_, query.dtype):
        return None
    mask = "causal" if is_causal else attn_mask
    out = mx.fast.scaled_dot_product_attention(
        query, key, value, scale=scale_of(query.shape[-1], scale), mask=mask
    )
    if attn_mask is None:
        return out
    if attn_mask.dtype == mx.bool_:
        fully_masked = mx.logical_not(mx.any(attn_mask, axis=-1, keepdims=True))
    else:
        fully_masked = mx.all(attn_mask == -math.inf, axis=-1, keepdims=True)
    return mx.where(fully_masked, mx.array(0, out.dtype), out)
