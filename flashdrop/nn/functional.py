r"""torch.nn.functional's six dropout functions, and the dropout family beyond torch.nn, on
``mlx.core.array``.

The six have the same signatures, defaults, errors and warnings as torch 2.13; the channel ones
add a keyword-only ``channel_dim`` for channels-last inputs. The others follow their published
definitions: :func:`stochastic_depth`, :func:`drop_block2d` and :func:`drop_block3d` are
torchvision.ops', :func:`drop_path` is timm's, :func:`locked_dropout` AWD-LSTM's. Each function
is the Python layer (argument checks, warnings, unbatched inputs); the masks and formulas are
drawn and applied in one place, :mod:`flashdrop._dropout`, and in torch mode give the bits the
original gives on torch's CPU after the same seed.

Arguments are taken as torch takes them: p is range-checked as given, then converted to a Python
float as torch's argument parser converts it (refusing, with torch's ``TypeError``, what torch
refuses); the six torch functions require ``training`` to be a bool. Nothing after the conversion
sees p as given (see docs/argument-contract.md).

:func:`scaled_dot_product_attention` is torch's, with the attention weights dropped by the same
dropout (see docs/attention-and-rnns.md).

``inplace=True`` writes the result into the input array object itself (every reference to it
sees the new values) and returns it. MLX has no views: ``F.dropout(x[0], inplace=True)`` writes
into the temporary ``x[0]``, never into ``x``.
"""

import math

import mlx.core as mx

from flashdrop import _attention, _checks, _dropout, _random

__all__ = [
    "alpha_dropout",
    "drop_block2d",
    "drop_block3d",
    "drop_path",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
    "locked_dropout",
    "scaled_dot_product_attention",
    "stochastic_depth",
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
    p, training, inplace = _checks.element_dropout_args("dropout", input, p, training, inplace)
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
    p, training, inplace = _checks.element_dropout_args(
        "alpha_dropout", input, p, training, inplace
    )
    return _dropout.dropout(input, p, training, inplace, alpha=True)


def dropout1d(
    input: mx.array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    channel_dim: int = 1,
) -> mx.array:
    r"""Randomly zero out entire channels (a channel is a 1D feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``, or
    ``input[i, ..., j]`` with ``channel_dim=-1``. See :class:`flashdrop.nn.Dropout1d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, L)` or :math:`(C, L)`; with
            ``channel_dim=-1``, :math:`(N, L, C)` or :math:`(L, C)`.
        p: probability of a channel to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            the layout of MLX's convolutions). Keyword only; not in torch.
    """
    _checks.check_args("dropout1d", input, p)
    _checks.check_channel_dim("dropout1d", channel_dim)
    _checks.check_dropout1d_dims(input.ndim)
    p, training, inplace = _checks.vf_args("feature_dropout", p, training, inplace)
    return _dropout.dropout(
        input, p, training, inplace, feature=True, batched=input.ndim == 3, channel_dim=channel_dim
    )


def dropout2d(
    input: mx.array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    channel_dim: int = 1,
) -> mx.array:
    r"""Randomly zero out entire channels (a channel is a 2D feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``, or
    ``input[i, ..., j]`` with ``channel_dim=-1``. As in torch, a channels-first 3-D input is
    taken as :math:`(N, C, L)` (with a warning), not as an unbatched :math:`(C, H, W)`; a
    channels-last 3-D input is the unbatched :math:`(H, W, C)` (no warning: the legacy reading
    is torch's, for torch's layout). See :class:`flashdrop.nn.Dropout2d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, H, W)`; with ``channel_dim=-1``,
            :math:`(N, H, W, C)` or :math:`(H, W, C)`.
        p: probability of a channel to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            the layout of MLX's convolutions). Keyword only; not in torch.
    """
    _checks.check_args("dropout2d", input, p)
    _checks.check_channel_dim("dropout2d", channel_dim)
    _checks.warn_unexpected_dims("dropout2d", input.ndim, spatial=2)
    if input.ndim == 3 and channel_dim == 1:
        _checks.warn_dropout2d_as_1d()
    p, training, inplace = _checks.vf_args("feature_dropout", p, training, inplace)
    batched = channel_dim == 1 or input.ndim != 3
    return _dropout.dropout(
        input, p, training, inplace, feature=True, batched=batched, channel_dim=channel_dim
    )


def dropout3d(
    input: mx.array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    channel_dim: int = 1,
) -> mx.array:
    r"""Randomly zero out entire channels (a channel is a 3D feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``, or
    ``input[i, ..., j]`` with ``channel_dim=-1``. See :class:`flashdrop.nn.Dropout3d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`; with
            ``channel_dim=-1``, :math:`(N, D, H, W, C)` or :math:`(D, H, W, C)`.
        p: probability of a channel to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            the layout of MLX's convolutions). Keyword only; not in torch.
    """
    _checks.check_args("dropout3d", input, p)
    _checks.check_channel_dim("dropout3d", channel_dim)
    _checks.warn_unexpected_dims("dropout3d", input.ndim, spatial=3)
    p, training, inplace = _checks.vf_args("feature_dropout", p, training, inplace)
    return _dropout.dropout(
        input, p, training, inplace, feature=True, batched=input.ndim == 5, channel_dim=channel_dim
    )


def feature_alpha_dropout(
    input: mx.array,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    channel_dim: int = 1,
) -> mx.array:
    r"""Randomly mask out entire channels with alpha dropout (a channel is a feature map).

    The :math:`j`-th channel of the :math:`i`-th sample is ``input[i, j]``, or
    ``input[i, ..., j]`` with ``channel_dim=-1``. Note ``training`` defaults to ``False`` here,
    as in torch. See :class:`flashdrop.nn.FeatureAlphaDropout`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, *)`; with ``channel_dim=-1``,
            :math:`(N, *, C)`. As in torch, the first axis is always the batch.
        p: probability of a channel to be dropped. Default: 0.5
        training: apply dropout if is ``True``. Default: ``False``
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        channel_dim: ``1`` (default, torch's channels-first layout) or ``-1`` (channels last,
            the layout of MLX's convolutions). Keyword only; not in torch.
    """
    _checks.check_args("feature_alpha_dropout", input, p)
    _checks.check_channel_dim("feature_alpha_dropout", channel_dim)
    p, training, inplace = _checks.vf_args("feature_alpha_dropout", p, training, inplace)
    return _dropout.dropout(
        input, p, training, inplace, feature=True, alpha=True, channel_dim=channel_dim
    )


def stochastic_depth(input: mx.array, p: float, mode: str, training: bool = True) -> mx.array:
    r"""Stochastic depth (torchvision.ops): randomly drop the whole input, or whole samples.

    From "Deep Networks with Stochastic Depth"; meant for the residual branch of a block:
    ``x + stochastic_depth(branch(x), p, "row")``. Survivors are scaled by :math:`\frac{1}{1-p}`;
    ``p == 1`` gives zeros. See :class:`flashdrop.nn.StochasticDepth`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, *)`; any shape with ``mode="batch"``.
        p: probability of the input (or a sample) to be zeroed.
        mode: ``"batch"`` drops the whole input, ``"row"`` each sample ``input[i]`` on its own.
        training: apply stochastic depth if is ``True``. Default: ``True``

    Example::

        >>> y = F.stochastic_depth(mx.ones((8, 16)), p=0.2, mode="row")
    """
    _checks.check_array(input, "stochastic_depth")
    _checks.check_drop_probability("stochastic_depth", "p", p)
    _checks.check_stochastic_depth_mode(mode)
    p = _checks.to_float(p, "stochastic_depth", "p", 2)
    if not _checks.truth(training) or p == 0.0:
        return input
    # "row": one draw per sample; "batch": one draw for the whole input.
    noise_shape = _per_sample("stochastic_depth", input) if mode == "row" else (1,) * input.ndim
    return _dropout.drop(input, noise_shape, p)


def drop_path(
    x: mx.array, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True
) -> mx.array:
    r"""Drop paths per sample (timm): stochastic depth of the residual branch, ``"row"`` mode.

    Each sample ``x[i]`` is zeroed with probability :attr:`drop_prob`; survivors are scaled by
    :math:`\frac{1}{1-p}` if :attr:`scale_by_keep`. Note ``training`` defaults to ``False``, as in
    timm. See :class:`flashdrop.nn.DropPath`.

    Args:
        x: an ``mx.array`` of shape :math:`(N, *)`.
        drop_prob: probability of a sample to be zeroed. Default: 0.0
        training: apply drop path if is ``True``. Default: ``False``
        scale_by_keep: scale the survivors by :math:`\frac{1}{1-p}`. Default: ``True``

    Example::

        >>> y = x + F.drop_path(branch(x), 0.1, training=True)
    """
    _checks.check_array(x, "drop_path")
    _checks.check_drop_probability("drop_path", "drop_prob", drop_prob)
    drop_prob = _checks.to_float(drop_prob, "drop_path", "drop_prob", 2)
    if drop_prob == 0.0 or not _checks.truth(training):
        return x
    return _dropout.drop(x, _per_sample("drop_path", x), drop_prob, scale_by_keep)


def _per_sample(fn: str, input: mx.array) -> tuple[int, ...]:
    """(N, 1, ..., 1): one draw per sample of an (N, *) input."""
    _checks.check_has_batch(fn, input.ndim)
    return input.shape[:1] + (1,) * (input.ndim - 1)


def drop_block2d(
    input: mx.array,
    p: float,
    block_size: int,
    inplace: bool = False,
    eps: float = 1e-06,
    training: bool = True,
) -> mx.array:
    r"""DropBlock (torchvision.ops): zero square blocks of each channel, and rescale.

    From "DropBlock: A regularization method for convolutional networks". Block centres are
    drawn with probability :math:`\gamma = \frac{p H W}{s^2 (H - s + 1)(W - s + 1)}` (``s`` the
    block size, clamped to :math:`\min(s, H, W)`, which must be odd), so that about a fraction
    :attr:`p` of the input is dropped; the output is scaled by
    :math:`\frac{\text{numel}}{\epsilon + \text{kept}}`. See :class:`flashdrop.nn.DropBlock2d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, H, W)` (channels first).
        p: probability of an element to be dropped.
        block_size: size of the square blocks dropped; odd.
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        eps: added to the denominator of the scale. Default: 1e-6
        training: apply DropBlock if is ``True``. Default: ``True``

    Example::

        >>> y = F.drop_block2d(mx.ones((2, 8, 16, 16)), p=0.1, block_size=3)
    """
    return _drop_block("drop_block2d", 4, input, p, block_size, inplace, eps, training)


def drop_block3d(
    input: mx.array,
    p: float,
    block_size: int,
    inplace: bool = False,
    eps: float = 1e-06,
    training: bool = True,
) -> mx.array:
    r"""DropBlock (torchvision.ops) of cubic blocks: :func:`drop_block2d` with a depth axis.

    :math:`\gamma = \frac{p D H W}{s^3 (D - s + 1)(H - s + 1)(W - s + 1)}`. See
    :class:`flashdrop.nn.DropBlock3d`.

    Args:
        input: an ``mx.array`` of shape :math:`(N, C, D, H, W)` (channels first).
        p: probability of an element to be dropped.
        block_size: size of the cubic blocks dropped; odd.
        inplace: If set to ``True``, will do this operation in-place. Default: ``False``
        eps: added to the denominator of the scale. Default: 1e-6
        training: apply DropBlock if is ``True``. Default: ``True``
    """
    return _drop_block("drop_block3d", 5, input, p, block_size, inplace, eps, training)


def _drop_block(
    fn: str,
    ndim: int,
    input: mx.array,
    p: float,
    block_size: int,
    inplace: bool,
    eps: float,
    training: bool,
) -> mx.array:
    _checks.check_array(input, fn)
    _checks.check_drop_probability(fn, "p", p, end=".")
    _checks.check_drop_block_dims(fn, input.ndim, ndim)
    p = _checks.to_float(p, fn, "p", 2)
    if not _checks.truth(training) or p == 0.0:
        return input
    return _dropout.drop_block(input, p, block_size, inplace, eps)


def locked_dropout(
    input: mx.array, p: float = 0.5, training: bool = True, batch_first: bool = False
) -> mx.array:
    r"""Locked (variational) dropout of AWD-LSTM: one mask per sequence, shared over time.

    Each feature ``input[:, n, h]`` is zeroed for every time step at once with probability
    :attr:`p`; kept ones are scaled by :math:`\frac{1}{1-p}`; ``p == 1`` gives zeros. See
    :class:`flashdrop.nn.LockedDropout`.

    Args:
        input: an ``mx.array`` of shape :math:`(L, N, H)`, :math:`(N, L, H)` with
            ``batch_first=True``, or unbatched :math:`(L, H)`, as ``torch.nn.RNN`` takes.
        p: probability of a feature to be zeroed. Default: 0.5
        training: apply dropout if is ``True``. Default: ``True``
        batch_first: the input is :math:`(N, L, H)`. Default: ``False``

    Example::

        >>> y = F.locked_dropout(mx.ones((35, 8, 400)), p=0.3)
    """
    _checks.check_args("locked_dropout", input, p)
    p = _checks.to_float(p, "locked_dropout", "p", 2)
    _checks.check_p_is_probability(p)
    _checks.check_locked_dropout_dims(input.ndim)
    if not _checks.truth(training) or p == 0:
        return input
    time_axis = 1 if batch_first and input.ndim == 3 else 0
    noise_shape = (*input.shape[:time_axis], 1, *input.shape[time_axis + 1 :])
    return _dropout.drop(input, noise_shape, p, true_divide=True)


def scaled_dot_product_attention(
    query: mx.array,
    key: mx.array,
    value: mx.array,
    attn_mask: mx.array | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> mx.array:
    r"""Scaled dot-product attention with torch's dropout of the attention weights.

    Computes :math:`\text{softmax}(Q K^T \cdot \text{scale} + \text{mask})\, V`, the weights
    dropped with probability :attr:`dropout_p` (the survivors scaled by
    :math:`\frac{1}{1-p}`), as torch 2.13 does on the CPU: the dropout is a
    :func:`dropout` of the (N, ..., H, L, S) weights, so in "torch" random mode its mask is
    torch's bit for bit and torch's generator advances as it does in torch. Always in training
    mode, as in torch: pass ``dropout_p=0.0`` for evaluation. Without dropout,
    ``mx.fast.scaled_dot_product_attention`` computes it where its results are torch's (no
    float mask; float16 and bfloat16 in float32). float64 is float64-accurate, within 1e-14 of
    torch (MLX's own float64 softmax, float32-accurate on the CPU, is not used).

    Without dropout, a 0-d or 1-D ``attn_mask`` with 4-D inputs raises torch's ``IndexError``
    where torch considers its flash kernel (one batch size and head count, or GQA).

    A negative or NaN :attr:`dropout_p` raises a ``ValueError`` (torch silently applies no
    dropout); above 1 raises torch's ``RuntimeError``.

    Args:
        query: :math:`(N, ..., H_q, L, E)`.
        key: :math:`(N, ..., H, S, E)`.
        value: :math:`(N, ..., H, S, E_v)`.
        attn_mask: broadcastable to :math:`(N, ..., H_q, L, S)`: bool (``True`` takes part in
            attention) or float (added to the scores; float32 or the query's dtype).
            Default: ``None``
        dropout_p: probability of an attention weight to be zeroed. Default: 0.0
        is_causal: a lower-triangular (top-left aligned) mask; not with ``attn_mask``.
            Default: ``False``
        scale: the scores' factor. Default: :math:`\frac{1}{\sqrt{E}}`
        enable_gqa: grouped-query attention: :math:`H_q` a multiple of the key's and value's
            heads, each of which serves a group of consecutive query heads. Default: ``False``

    Shape:
        - Output: :math:`(N, ..., H_q, L, E_v)`, the batch axes broadcast as in torch; the
          query's dtype. float16 and bfloat16 are computed in float32, as in torch.

    Example::

        >>> q = k = v = mx.random.normal((8, 4, 16, 32))
        >>> out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1, is_causal=True)
    """
    dropout_p, is_causal, scale, enable_gqa = _checks.sdpa_args(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa
    )
    _checks.check_sdpa_inputs(query, key, value, attn_mask)
    if value.size == 0:  # torch's shortcut, before its other checks: zeros, and no draw
        return mx.zeros((*query.shape[:-1], value.shape[-1]), query.dtype)
    _checks.check_sdpa_dropout_p(dropout_p)
    flash = _checks.sdpa_flash_kernel(query, key, value, dropout_p, enable_gqa)
    _checks.check_sdpa_flash_mask(attn_mask, flash)
    _checks.check_sdpa_not_causal_and_mask(is_causal, attn_mask)
    # The math kernel's key and value: with GQA, each head repeated for its group of query
    # heads (lazy: nothing is computed where the fast path takes the caller's own).
    keys, values = key, value
    if enable_gqa:
        for array in (query, key, value):
            _checks.check_heads_axis(array.ndim)
        _checks.check_gqa_heads(query.shape[-3], key.shape[-3], value.shape[-3])
        keys, values = _attention.expand_heads(query, key), _attention.expand_heads(query, value)

    scores_shape = _checks.sdpa_scores_shape(query.shape, key.shape, keys.shape)
    if attn_mask is not None:
        _checks.check_mask_shape(attn_mask.shape, scores_shape)
    floating = mx.issubdtype(query.dtype, mx.floating)
    if query.dtype == mx.complex64:
        _checks.raise_sdpa_complex()

    if floating and dropout_p != 0:
        weights = _attention.scores(query, keys, attn_mask, is_causal, scale, flash)
        weights = _dropout.dropout(weights, dropout_p, True, False)
    elif not floating:
        # torch fails on integer and bool inputs only in the product with the value, after
        # it has dropped the weights: its probability check and its draw come first, so the
        # same draw is made here (keeping the generator in step with torch's) before failing.
        _checks.check_p_is_probability(dropout_p)
        if 0 < dropout_p < 1 and math.prod(scores_shape):
            _random.bernoulli(scores_shape, 1 - dropout_p, like=query)
    _checks.check_sdpa_value(scores_shape, query.shape, key.shape, value.shape, values.shape)
    if not floating:
        _checks.raise_sdpa_not_floating(query.dtype)
    if dropout_p == 0:
        out = _attention.fast(query, key, value, attn_mask, is_causal, scale)
        if out is not None:
            return out
        weights = _attention.scores(query, keys, attn_mask, is_causal, scale, flash)
    return _attention.weighted_sum(weights, values, query.dtype)
