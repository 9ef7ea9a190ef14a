"""``scaled_dot_product_attention``'s checks and messages: torch's argument parser, its
``validate_sdpa_input`` and the shape errors of its math kernel."""

import math
from typing import Any

import mlx.core as mx

from flashdrop import _dtypes
from flashdrop._checks.arguments import check_array, to_bool, to_float

_SDPA = "scaled_dot_product_attention"


def sdpa_args(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any,
    dropout_p: Any,
    is_causal: Any,
    scale: Any,
    enable_gqa: Any,
) -> tuple[float, bool, float | None, bool]:
    """torch's argument parser for ``scaled_dot_product_attention``: ``dropout_p``, ``is_causal``,
    ``scale`` and ``enable_gqa`` as the Python float, bool, float or None and bool the kernel
    sees (torch's ``TypeError`` texts, as for arguments passed by keyword), after our conversion
    hint for arrays that are not ``mx.array``."""
    for name, array in (("query", query), ("key", key), ("value", value)):
        check_array(array, f"{_SDPA}: {name}")
    if attn_mask is not None:
        check_array(attn_mask, f"{_SDPA}: attn_mask")
    return (
        to_float(dropout_p, _SDPA, "dropout_p"),
        to_bool(is_causal, _SDPA, "is_causal"),
        None if scale is None else to_float(scale, _SDPA, "scale"),
        to_bool(enable_gqa, _SDPA, "enable_gqa"),
    )


def check_sdpa_dropout_p(dropout_p: float) -> None:
    """``ValueError`` for a negative or NaN ``dropout_p``, which torch silently takes as 0.

    ``dropout_p > 1`` is left to the dropout itself: torch's ``RuntimeError``, raised where torch
    raises it (after the shape checks of ``query @ key^T`` and of the mask).
    """
    if not dropout_p >= 0:
        raise ValueError(
            f"{_SDPA}: dropout_p has to be between 0 and 1, but got {dropout_p}; torch silently "
            "applies no dropout for a negative or NaN dropout_p, flashdrop refuses it"
        )


def check_sdpa_inputs(query: mx.array, key: mx.array, value: mx.array, attn_mask: Any) -> None:
    """torch's ``validate_sdpa_input``: one dtype, at least 2-D, a mask of an allowed dtype."""
    names = _dtypes.TORCH_CPP_NAMES
    if not query.dtype == key.dtype == value.dtype:
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{names[query.dtype]} key.dtype: {names[key.dtype]} and value.dtype: "
            f"{names[value.dtype]} instead."
        )
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise RuntimeError(
            "Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
            f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead."
        )
    if attn_mask is not None and attn_mask.dtype not in (mx.bool_, mx.float32, query.dtype):
        raise RuntimeError(
            "Expected attn_mask dtype to be bool or float or to match query dtype, but got "
            f"attn_mask.dtype: {names[attn_mask.dtype]} and  query.dtype: "
            f"{names[query.dtype]} instead."
        )


def sdpa_flash_kernel(
    query: mx.array, key: mx.array, value: mx.array, dropout_p: float, enable_gqa: bool
) -> bool:
    """Whether torch 2.13 considers its CPU flash kernel rather than its math kernel: no
    dropout, 4-D inputs of one batch size and one head count (with ``enable_gqa``, key and
    value heads alike and dividing the query's), a non-empty output and S > 0."""
    if dropout_p != 0 or not query.ndim == key.ndim == value.ndim == 4:
        return False
    if not query.shape[0] == key.shape[0] == value.shape[0]:
        return False
    heads, key_heads, value_heads = query.shape[1], key.shape[1], value.shape[1]
    if enable_gqa:
        if key_heads != value_heads or not key_heads or heads % key_heads:
            return False
    elif not heads == key_heads == value_heads:
        return False
    return bool(math.prod((*query.shape[:-1], value.shape[-1])) and key.shape[-2])


def check_sdpa_flash_mask(attn_mask: Any, flash: bool) -> None:
    """torch's ``IndexError`` for a 0-d or 1-D mask where torch considers its CPU flash kernel
    (``flash``, see :func:`sdpa_flash_kernel`): its check of the mask reads
    ``attn_mask.size(-2)``; elsewhere (the math kernel) such a mask broadcasts."""
    if attn_mask is None or attn_mask.ndim >= 2 or not flash:
        return
    raise IndexError(
        _dim_out_of_range(attn_mask.ndim, -2)
        + "; without dropout torch reads the mask's size(-2) for 4-D inputs; give the mask of "
        f"shape {attn_mask.shape} at least 2 dimensions, e.g. attn_mask.reshape(1, -1)"
    )


def _dim_out_of_range(ndim: int, dim: int) -> str:
    """torch's text for ``size(dim)`` of a tensor with ``ndim`` dimensions (too few)."""
    if ndim == 0:
        return f"Dimension specified as {dim} but tensor has no dimensions"
    return (
        f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})"
    )


def check_sdpa_not_causal_and_mask(is_causal: bool, attn_mask: Any) -> None:
    """torch's ``RuntimeError`` for ``is_causal=True`` together with an ``attn_mask``."""
    if is_causal and attn_mask is not None:
        raise RuntimeError(
            "_scaled_dot_product_attention: "
            "Explicit attn_mask should not be set when is_causal=True"
        )


def check_heads_axis(ndim: int) -> None:
    """torch's ``IndexError`` for ``size(-3)`` of a tensor with fewer than 3 dimensions."""
    if ndim < 3:
        raise IndexError(
            _dim_out_of_range(ndim, -3)
            + "; enable_gqa=True needs a heads axis: (N, ..., H, L, E) or (H, L, E) inputs"
        )


def check_gqa_heads(query_heads: int, key_heads: int, value_heads: int) -> None:
    """torch's ``RuntimeError`` (its text stops mid-sentence; ours completes it)."""
    if query_heads == key_heads == value_heads:
        return
    if query_heads % key_heads or query_heads % value_heads:
        raise RuntimeError(
            "Number of heads in key and value must divide the number of heads in "
            f"; the query has {query_heads} heads, the key {key_heads}, the value {value_heads}"
        )


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...], what: str = "") -> tuple[int, ...]:
    """torch's ``infer_size``: the broadcast shape, or its ``RuntimeError`` naming the first
    mismatched dimension from the right; ``what`` (ours) says which arrays were broadcast."""
    ndim = max(len(a), len(b))
    out = []
    for i in range(ndim - 1, -1, -1):
        offset = ndim - 1 - i
        size_a = a[len(a) - 1 - offset] if len(a) - 1 - offset >= 0 else 1
        size_b = b[len(b) - 1 - offset] if len(b) - 1 - offset >= 0 else 1
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise RuntimeError(
                f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
                f"at non-singleton dimension {i}" + (f"; {what}" if what else "")
            )
        out.append(size_a if size_a != 1 else size_b)
    return tuple(reversed(out))


def check_mask_shape(mask_shape: tuple[int, ...], scores_shape: tuple[int, ...]) -> None:
    """torch adds the mask in place to the (N, ..., H, L, S) scores: it must broadcast to their
    shape without enlarging it."""
    what = f"attn_mask of shape {mask_shape} must broadcast to the scores' shape {scores_shape}"
    shape = broadcast_shapes(scores_shape, mask_shape, what)
    if shape != scores_shape:
        raise RuntimeError(
            f"output with shape {list(scores_shape)} doesn't match the broadcast shape "
            f"{list(shape)}; {what} (N, ..., H, L, S)"
        )


def sdpa_scores_shape(
    query: tuple[int, ...], key: tuple[int, ...], expanded_key: tuple[int, ...]
) -> tuple[int, ...]:
    """The (N, ..., H, L, S) shape of the scores ``query @ key^T``: the batch axes of the query
    and of ``expanded_key`` (the key, its heads repeated for GQA) broadcast, torch's
    ``RuntimeError`` otherwise. The messages name the caller's ``query`` and ``key`` shapes;
    for a mismatched E torch's own is an internal ``bmm`` one, so ours has its type only."""
    what = f"query {query} and key {key} have batch axes that do not broadcast"
    batch = broadcast_shapes(query[:-2], expanded_key[:-2], what)
    if query[-1] != key[-1]:
        raise RuntimeError(
            f"{_SDPA}: query and key must have one embedding size E; got {query[-1]} and "
            f"{key[-1]} (query {query}, key {key})"
        )
    return (*batch, query[-2], key[-2])


def check_sdpa_value(
    scores: tuple[int, ...],
    query: tuple[int, ...],
    key: tuple[int, ...],
    value: tuple[int, ...],
    expanded_value: tuple[int, ...],
) -> None:
    """The product ``weights @ value``: the weights' batch axes (``scores``, from the caller's
    ``query`` and ``key``) broadcast with ``expanded_value``'s, and key and value have one S;
    torch's ``RuntimeError`` otherwise (for S, with our text: torch's is an internal one)."""
    what = (
        f"the batch axes {scores[:-2]} of query {query} and key {key} and those of value "
        f"{value} do not broadcast"
    )
    broadcast_shapes(scores[:-2], expanded_value[:-2], what)
    if key[-2] != value[-2]:
        raise RuntimeError(
            f"{_SDPA}: key and value must have one sequence length S; got {key[-2]} and "
            f"{value[-2]} (key {key}, value {value})"
        )


def raise_sdpa_not_floating(dtype: mx.Dtype) -> None:
    """torch fails on integer and bool inputs (with varying internal texts), after the dropout."""
    raise RuntimeError(f"{_SDPA}: expected floating-point query, key and value, but got {dtype}")


def raise_sdpa_complex() -> None:
    """torch's CPU softmax has no complex kernel."""
    raise NotImplementedError(
        "\"softmax_lastdim_kernel_impl\" not implemented for 'ComplexFloat'"
        f"; {_SDPA} needs floating-point query, key and value"
    )
