r"""torch.nn's :class:`MultiheadAttention` on MLX, with torch's dropout of the attention weights.

It computes what torch 2.13's ``nn.MultiheadAttention`` computes
(``F.multi_head_attention_forward``) in the same order of operations and draws: with
``need_weights=True`` the (N * heads, L, S) attention weights are dropped by
:func:`flashdrop.nn.functional.dropout`, with ``need_weights=False`` the attention is
:func:`flashdrop.nn.functional.scaled_dot_product_attention` with ``dropout_p``, as in torch.
In torch random mode the masks are torch's bit for bit.
"""

import math

import mlx.core as mx
import mlx.nn

from flashdrop import _checks
from flashdrop.nn import functional as F
from flashdrop.nn.modules import _masks
from flashdrop.nn.modules._layer import TorchModule

__all__ = ["MultiheadAttention"]


def _xavier_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int) -> mx.array:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return mx.random.uniform(-bound, bound, shape)


def _linear(x: mx.array, weight: mx.array, bias: mx.array | None) -> mx.array:
    """torch's ``F.linear``, as ``mlx.nn.Linear`` computes it."""
    return x @ weight.T if bias is None else mx.addmm(bias, x, weight.T)


def _check_array(layer: str, arg: str, value: object) -> None:
    if value is not None and not isinstance(value, mx.array):
        _checks.raise_not_an_array(layer, arg, value)


class MultiheadAttention(TorchModule):
    r"""Allows the model to jointly attend to information from different representation subspaces.

    torch 2.13's ``nn.MultiheadAttention``: the same arguments, defaults, parameters (named and
    shaped as torch's ``state_dict()``), errors and warnings. The attention weights are dropped
    with probability :attr:`dropout` in training mode: with ``need_weights=True`` (the default)
    by :func:`flashdrop.nn.functional.dropout` of the (N * num_heads, L, S) weights, which are
    returned dropped (and averaged over the heads); with ``need_weights=False`` by
    :func:`flashdrop.nn.functional.scaled_dot_product_attention` (its ``dropout_p``), as torch.
    In "torch" random mode the masks are torch's. Without dropout (or in evaluation) and with
    ``need_weights=False``, ``mx.fast.scaled_dot_product_attention`` computes it where its
    results are torch's.

    Args:
        embed_dim: Total dimension of the model.
        num_heads: Number of parallel attention heads; ``embed_dim`` is split across them.
        dropout: Dropout probability on ``attn_output_weights``. Default: ``0.0``
        bias: add bias to the input / output projection layers. Default: ``True``
        add_bias_kv: add bias to the key and value sequences at dim=0. Default: ``False``
        add_zero_attn: add a new batch of zeros to the key and value sequences at dim=1.
            Default: ``False``
        kdim: Total number of features for keys. Default: ``None`` (``embed_dim``)
        vdim: Total number of features for values. Default: ``None`` (``embed_dim``)
        batch_first: inputs and outputs are (batch, seq, feature). Default: ``False``
            (seq, batch, feature)

    Shape:
        - query: :math:`(L, E_q)`, :math:`(L, N, E_q)` or, with ``batch_first``,
          :math:`(N, L, E_q)`; key :math:`(S, E_k)` ..., value :math:`(S, E_v)` ... alike.
        - key_padding_mask: :math:`(S)` or :math:`(N, S)`, bool (True: ignored) or float (added).
        - attn_mask: :math:`(L, S)` or :math:`(N \cdot \text{num\_heads}, L, S)`, bool (True: not
          allowed to attend) or float (added).
        - Output: ``(attn_output, attn_output_weights)``: :math:`(L, E)`, :math:`(L, N, E)` or
          :math:`(N, L, E)`; the weights :math:`(N, L, S)` (averaged) or
          :math:`(N, \text{num\_heads}, L, S)`, without N for unbatched inputs, or ``None``
          with ``need_weights=False``.

    Example::

        >>> attn = nn.MultiheadAttention(64, 8, dropout=0.1, batch_first=True)
        >>> x = mx.random.normal((2, 10, 64))
        >>> out, weights = attn(x, x, x)
        >>> attn.load_weights([(k, compat.to_mlx(v)) for k, v in torch_attn.state_dict().items()])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            _checks.raise_embed_dim_and_heads(embed_dim, num_heads)
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            _checks.raise_embed_dim_not_divisible()
        # torch's initialisation: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k/v
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _xavier_uniform(
                (3 * embed_dim, embed_dim), embed_dim, 3 * embed_dim
            )
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = _xavier_uniform((embed_dim, embed_dim), embed_dim, embed_dim)
            self.k_proj_weight = _xavier_uniform((embed_dim, self.kdim), self.kdim, embed_dim)
            self.v_proj_weight = _xavier_uniform((embed_dim, self.vdim), self.vdim, embed_dim)
            self.in_proj_weight = None
        self.in_proj_bias = mx.zeros((3 * embed_dim,)) if bias else None
        self.out_proj = mlx.nn.Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            self.out_proj.bias = mx.zeros((embed_dim,))
        if add_bias_kv:
            std = math.sqrt(2.0 / (2 * embed_dim))
            self.bias_k = std * mx.random.normal((1, 1, embed_dim))
            self.bias_v = std * mx.random.normal((1, 1, embed_dim))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn

    def forward(
        self,
        query: mx.array,
        key: mx.array,
        value: mx.array,
        key_padding_mask: mx.array | None = None,
        need_weights: bool = True,
        attn_mask: mx.array | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[mx.array, mx.array | None]:
        """Compute attention outputs using query, key, and value embeddings.

        Args:
            query, key, value: see the class's Shape.
            key_padding_mask: which keys to ignore (bool: True) or a float mask added to them.
                Default: ``None``
            need_weights: return the attention weights too. ``False`` uses
                ``scaled_dot_product_attention``, faster. Default: ``True``
            attn_mask: positions not allowed to attend (bool: True) or added (float).
                Default: ``None``
            average_attn_weights: average the returned weights over the heads. Default: ``True``
            is_causal: a hint that ``attn_mask`` is the causal mask (which must be given).
                Default: ``False``

        Returns:
            ``(attn_output, attn_output_weights or None)``.
        """
        for arg, array in (("query", query), ("key", key), ("value", value)):
            _check_array("MultiheadAttention", arg, array)
        _check_array("MultiheadAttention", "key_padding_mask", key_padding_mask)
        _check_array("MultiheadAttention", "attn_mask", attn_mask)
        key_padding_mask, attn_mask = _masks.canonical(
            key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", query.dtype
        )
        bool_masks = all(m is None or m.dtype == mx.bool_ for m in (key_padding_mask, attn_mask))
        is_batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        # Batch first inside, (N, L, E): the computation is the same whatever the layout; the
        # draws are of the (N * heads, L, S) weights in either.
        if not is_batched:
            query, key, value = query[None], key[None], value[None]
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask[None]
        elif not self.batch_first:
            query, key, value = _swap_batch(query, key, value)
        n, length, embed_dim = query.shape
        if is_causal and attn_mask is None:
            _checks.raise_causal_without_mask()
        sdpa_causal = is_causal and key_padding_mask is None and not need_weights
        if sdpa_causal:
            attn_mask = None  # torch hands SDPA its is_causal instead of the mask
        if embed_dim != self.embed_dim:
            _checks.raise_embed_dim(self.embed_dim, embed_dim)
        if self._qkv_same_embed_dim and key.shape != value.shape:
            _checks.raise_key_value_shapes(_torch_layout(key), _torch_layout(value))
        if not self._qkv_same_embed_dim and key.shape[:2] != value.shape[:2]:
            _checks.raise_key_value_dims(_torch_layout(key)[:2], _torch_layout(value)[:2])

        q, k, v = self._in_projection(query, key, value)
        source = k.shape[1]
        heads, head_dim = self.num_heads, self.head_dim
        mask = None if attn_mask is None else _attn_mask(attn_mask, n, heads, length, source)
        pads = 0
        if self.bias_k is not None:
            k = mx.concatenate([k, mx.broadcast_to(self.bias_k, (n, 1, embed_dim))], axis=1)
            v = mx.concatenate([v, mx.broadcast_to(self.bias_v, (n, 1, embed_dim))], axis=1)
            pads += 1
        q, k, v = (a.reshape(n, -1, heads, head_dim).transpose(0, 2, 1, 3) for a in (q, k, v))
        if self.add_zero_attn:
            zeros = mx.zeros((n, heads, 1, head_dim), k.dtype)
            k, v = mx.concatenate([k, zeros], axis=2), mx.concatenate([v, zeros], axis=2)
            pads += 1
        source = k.shape[2]
        mask = _merged_mask(mask, key_padding_mask, pads, n, source, bool_masks)
        dropout_p = self.dropout if self.training else 0.0

        if need_weights:
            scores = (q * math.sqrt(1.0 / head_dim)) @ k.swapaxes(-1, -2)
            if mask is not None:
                scores = (
                    mx.where(mask, mx.array(-math.inf, scores.dtype), scores)
                    if bool_masks
                    else scores + mask
                )
            weights = mx.softmax(scores, axis=-1, precise=True)
            if dropout_p > 0.0:
                # torch drops the (N * heads, L, S) weights
                weights = F.dropout(weights.reshape(n * heads, length, source), p=dropout_p)
                weights = weights.reshape(n, heads, length, source)
            out = weights @ v
        else:
            if mask is not None and bool_masks:
                mask = mx.logical_not(mask)  # SDPA's bool mask: True takes part
            out = F.scaled_dot_product_attention(q, k, v, mask, dropout_p, sdpa_causal)
            weights = None
        out = self.out_proj(out.transpose(0, 2, 1, 3).reshape(n, length, embed_dim))
        if weights is not None and average_attn_weights:
            weights = weights.mean(axis=1)
        if not is_batched:
            return out[0], None if weights is None else weights[0]
        if not self.batch_first:
            out = out.swapaxes(0, 1)
        return out, weights

    def _check_shapes(
        self,
        query: mx.array,
        key: mx.array,
        value: mx.array,
        key_padding_mask: mx.array | None,
        attn_mask: mx.array | None,
    ) -> bool:
        """torch's ``_mha_shape_check``: whether the inputs are batched."""
        if query.ndim not in (2, 3):
            _checks.raise_query_dims(query.ndim)
        ndim = query.ndim
        kind = "batched (3-D)" if ndim == 3 else "unbatched (2-D)"
        if key.ndim != ndim or value.ndim != ndim:
            _checks.raise_batched_dims(
                kind,
                f"`key` and `value` to be {ndim}-D",
                f"{key.ndim}-D and {value.ndim}-D tensors respectively",
            )
        if key_padding_mask is not None and key_padding_mask.ndim != ndim - 1:
            _checks.raise_batched_dims(
                kind,
                f"`key_padding_mask` to be `None` or {ndim - 1}-D",
                f"{key_padding_mask.ndim}-D tensor instead",
            )
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            _checks.raise_batched_dims(
                kind, "`attn_mask` to be `None`, 2-D or 3-D", f"{attn_mask.ndim}-D tensor instead"
            )
        if ndim == 2 and attn_mask is not None and attn_mask.ndim == 3:
            expected = (self.num_heads, query.shape[0], key.shape[0])
            if attn_mask.shape != expected:
                _checks.raise_unbatched_3d_mask(expected, attn_mask.shape)
        return ndim == 3

    def _in_projection(
        self, query: mx.array, key: mx.array, value: mx.array
    ) -> tuple[mx.array, mx.array, mx.array]:
        """torch's ``_in_projection_packed`` (one product for self-attention, two when key is
        value) or ``_in_projection`` (separate weights)."""
        e, bias = self.embed_dim, self.in_proj_bias
        biases = (None,) * 3 if bias is None else (bias[:e], bias[e : 2 * e], bias[2 * e :])
        if self.in_proj_weight is None:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
            return tuple(
                _linear(x, w, b)
                for x, w, b in zip((query, key, value), weights, biases, strict=True)
            )
        w = self.in_proj_weight
        if query is key and key is value:
            return tuple(mx.split(_linear(query, w, bias), 3, axis=-1))
        if key is value:
            kv_bias = None if bias is None else bias[e:]
            k, v = mx.split(_linear(key, w[e:], kv_bias), 2, axis=-1)
            return _linear(query, w[:e], biases[0]), k, v
        weights = (w[:e], w[e : 2 * e], w[2 * e :])
        return tuple(
            _linear(x, w_, b) for x, w_, b in zip((query, key, value), weights, biases, strict=True)
        )


def _swap_batch(*arrays: mx.array) -> tuple[mx.array, ...]:
    """(L, N, E) to (N, L, E), keeping ``query is key`` (the projections are shared on it)."""
    swapped: dict[int, mx.array] = {}
    for a in arrays:
        swapped.setdefault(id(a), a.swapaxes(0, 1))
    return tuple(swapped[id(a)] for a in arrays)


def _torch_layout(array: mx.array) -> tuple[int, ...]:
    """A batch-first (N, S, E) input's shape as torch sees it, (S, N, E)."""
    return (array.shape[1], array.shape[0], *array.shape[2:])


def _attn_mask(mask: mx.array, n: int, heads: int, length: int, source: int) -> mx.array:
    """torch's checks of a 2-D (L, S) or 3-D (N * heads, L, S) ``attn_mask``; the mask as
    (1, 1, L, S) or (N, heads, L, S)."""
    if mask.ndim == 2:
        if mask.shape != (length, source):
            _checks.raise_attn_mask_shape(2, mask.shape, (length, source))
        return mask[None, None]
    if mask.ndim == 3:
        correct = (n * heads, length, source)
        if mask.shape != correct:
            _checks.raise_attn_mask_shape(3, mask.shape, correct)
        return mask.reshape(n, heads, length, source)
    raise RuntimeError(f"attn_mask's dimension {mask.ndim} is not supported")


def _merged_mask(
    mask: mx.array | None,
    key_padding_mask: mx.array | None,
    pads: int,
    n: int,
    source: int,
    bool_masks: bool,
) -> mx.array | None:
    """torch's one mask of the scores, broadcastable to (N, heads, L, S): ``attn_mask`` and
    ``key_padding_mask``, each padded for the ``pads`` keys added (``bias_k``, a zero key),
    the padding mask checked against (N, S) as torch checks it, then merged (``or`` of bool
    masks, the sum of float ones)."""
    if mask is not None and pads:
        mask = _pad_last(mask, pads)
    if key_padding_mask is None:
        return mask
    if pads:
        key_padding_mask = _pad_last(key_padding_mask, pads)
    if key_padding_mask.shape[0] != n:
        _checks.raise_key_padding_mask_shape(0, n, key_padding_mask.shape[0])
    if key_padding_mask.shape[1] != source:
        _checks.raise_key_padding_mask_shape(1, source, key_padding_mask.shape[1])
    padding = key_padding_mask.reshape(n, 1, 1, source)
    if mask is None:
        return padding
    return mx.logical_or(mask, padding) if bool_masks else mask + padding


def _pad_last(mask: mx.array, pads: int) -> mx.array:
    """torch's ``pad(mask, (0, pads))``: zeros (False: not masked) after the last axis."""
    widths = [(0, 0)] * (mask.ndim - 1) + [(0, pads)]
    return mx.pad(mask, widths)
