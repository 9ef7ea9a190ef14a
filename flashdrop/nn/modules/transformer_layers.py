r"""torch.nn's two Transformer layers on MLX: :class:`TransformerEncoderLayer` and
:class:`TransformerDecoderLayer`, with torch 2.13's arguments, parameters (named as torch's
``state_dict()``), errors and warnings; :mod:`~flashdrop.nn.modules.transformer` stacks them.

Each layer drops where torch's drops, in torch's order: the attention weights (inside
:class:`~flashdrop.nn.MultiheadAttention`), ``dropout1`` of the attention's output, the
feed-forward's ``dropout``, ``dropout2`` (a decoder layer: self-attention, ``dropout1``,
cross-attention, ``dropout2``, ``dropout``, ``dropout3``). With ``batch_first=True`` torch's
attention output is a transposed view of (L, N, E) memory, and torch draws a mask in memory
order: ``dropout1`` (and the decoder's ``dropout2``) drop it in (L, N, E) order here too, so
that in torch random mode every mask is torch's.
"""

from collections.abc import Callable

import mlx.core as mx
import mlx.nn

from flashdrop import _checks
from flashdrop.nn.modules import _masks
from flashdrop.nn.modules._layer import TorchModule
from flashdrop.nn.modules.activation import MultiheadAttention
from flashdrop.nn.modules.dropout import Dropout

__all__ = ["Activation", "TransformerDecoderLayer", "TransformerEncoderLayer"]

Activation = str | Callable[[mx.array], mx.array]


def _activation(activation: Activation) -> Callable[[mx.array], mx.array]:
    """torch's ``_get_activation_fn`` for a string; a callable as it is."""
    if not isinstance(activation, str):
        return activation
    if activation == "relu":
        return mlx.nn.relu
    if activation == "gelu":
        return mlx.nn.gelu  # torch's F.gelu: the exact (erf) form
    _checks.raise_activation(activation)


def _relu_or_gelu(activation: Callable[[mx.array], mx.array]) -> int:
    """torch's ``activation_relu_or_gelu``: 1 for relu, 2 for gelu, 0 for anything else."""
    if activation is mlx.nn.relu or isinstance(activation, mlx.nn.ReLU):
        return 1
    if activation is mlx.nn.gelu or isinstance(activation, mlx.nn.GELU):
        return 2
    return 0


def _attention_block(
    attn: MultiheadAttention,
    dropout: Dropout,
    x: mx.array,
    memory: mx.array,
    attn_mask: mx.array | None,
    key_padding_mask: mx.array | None,
    is_causal: bool,
) -> mx.array:
    """torch's ``_sa_block`` / ``_mha_block``: attention of ``x`` over ``memory``, then
    ``dropout``. With ``batch_first`` torch's attention output is an (N, L, E) view of
    (L, N, E) memory, whose mask torch draws in (L, N, E) order: so is it drawn here."""
    out = attn(
        x,
        memory,
        memory,
        attn_mask=attn_mask,
        key_padding_mask=key_padding_mask,
        need_weights=False,
        is_causal=is_causal,
    )[0]
    if attn.batch_first and out.ndim == 3:
        return dropout(out.swapaxes(0, 1)).swapaxes(0, 1)
    return dropout(out)


def _feed_forward_block(layer: mlx.nn.Module, x: mx.array, dropout: Dropout) -> mx.array:
    """torch's ``_ff_block``: ``linear2(dropout(activation(linear1(x))))``, then ``dropout``."""
    return dropout(layer.linear2(layer.dropout(layer.activation(layer.linear1(x)))))


class TransformerEncoderLayer(TorchModule):
    r"""Self-attention and a feed-forward network, as torch 2.13's ``nn.TransformerEncoderLayer``.

    The same arguments, defaults, parameters (``self_attn.in_proj_weight``, ``linear1.weight``,
    ``norm1.weight``, ...) and draws, in torch's order: self-attention's weights (through
    ``scaled_dot_product_attention``), ``dropout1``, ``dropout``, ``dropout2``. torch's
    inference fast path (nested tensors, under ``no_grad`` in evaluation) gives the same
    results within float rounding, except that it zeroes the outputs at padded positions.

    Args:
        d_model: the number of expected features in the input.
        nhead: the number of heads in the multiheadattention models.
        dim_feedforward: the dimension of the feedforward network model. Default: 2048
        dropout: the dropout value. Default: 0.1
        activation: ``"relu"``, ``"gelu"`` or an MLX callable. Default: ``"relu"``
        layer_norm_eps: the eps value in layer normalization components. Default: 1e-5
        batch_first: inputs and outputs are (batch, seq, feature). Default: ``False``
        norm_first: layer norm before attention and feedforward (pre-norm). Default: ``False``
        bias: the Linear and LayerNorm layers learn an additive bias. Default: ``True``

    Example::

        >>> layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, batch_first=True)
        >>> out = layer(mx.random.normal((2, 10, 64)))
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first
        )
        self.linear1 = mlx.nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = mlx.nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)
        self.activation_relu_or_gelu = _relu_or_gelu(self.activation)

    def forward(
        self,
        src: mx.array,
        src_mask: mx.array | None = None,
        src_key_padding_mask: mx.array | None = None,
        is_causal: bool = False,
    ) -> mx.array:
        r"""Pass the input through the encoder layer.

        Args:
            src: :math:`(S, E)`, :math:`(S, N, E)` or, with ``batch_first``, :math:`(N, S, E)`.
            src_mask: :math:`(S, S)` or :math:`(N \cdot \text{nhead}, S, S)`, bool (True: not
                allowed to attend) or float (added). Default: ``None``
            src_key_padding_mask: :math:`(S)` or :math:`(N, S)`. Default: ``None``
            is_causal: a hint that ``src_mask`` is the causal mask. Default: ``False``
        """
        src_key_padding_mask, src_mask = _masks.canonical(
            src_key_padding_mask, "src_key_padding_mask", src_mask, "src_mask", src.dtype
        )
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(
        self,
        x: mx.array,
        attn_mask: mx.array | None,
        key_padding_mask: mx.array | None,
        is_causal: bool = False,
    ) -> mx.array:
        return _attention_block(
            self.self_attn, self.dropout1, x, x, attn_mask, key_padding_mask, is_causal
        )

    def _ff_block(self, x: mx.array) -> mx.array:
        return _feed_forward_block(self, x, self.dropout2)


class TransformerDecoderLayer(TorchModule):
    r"""Self-attention, attention over the encoder's output (``memory``) and a feed-forward
    network, as torch 2.13's ``nn.TransformerDecoderLayer``.

    The same arguments, defaults and parameters; the draws in torch's order: self-attention's
    weights, ``dropout1``, cross-attention's weights, ``dropout2``, ``dropout``, ``dropout3``.

    Args:
        d_model: the number of expected features in the input.
        nhead: the number of heads in the multiheadattention models.
        dim_feedforward: the dimension of the feedforward network model. Default: 2048
        dropout: the dropout value. Default: 0.1
        activation: ``"relu"``, ``"gelu"`` or an MLX callable. Default: ``"relu"``
        layer_norm_eps: the eps value in layer normalization components. Default: 1e-5
        batch_first: inputs and outputs are (batch, seq, feature). Default: ``False``
        norm_first: layer norm before each block (pre-norm). Default: ``False``
        bias: the Linear and LayerNorm layers learn an additive bias. Default: ``True``

    Example::

        >>> layer = nn.TransformerDecoderLayer(d_model=64, nhead=4, batch_first=True)
        >>> out = layer(mx.random.normal((2, 7, 64)), mx.random.normal((2, 10, 64)))
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias
        )
        self.linear1 = mlx.nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = mlx.nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(
        self,
        tgt: mx.array,
        memory: mx.array,
        tgt_mask: mx.array | None = None,
        memory_mask: mx.array | None = None,
        tgt_key_padding_mask: mx.array | None = None,
        memory_key_padding_mask: mx.array | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> mx.array:
        """Pass the inputs (and masks) through the decoder layer.

        Args:
            tgt: :math:`(T, E)`, :math:`(T, N, E)` or, with ``batch_first``, :math:`(N, T, E)`.
            memory: the encoder's output, :math:`(S, E)`, :math:`(S, N, E)` or :math:`(N, S, E)`.
            tgt_mask, memory_mask: :math:`(T, T)` and :math:`(T, S)` (or per head, 3-D).
            tgt_key_padding_mask, memory_key_padding_mask: :math:`(N, T)` and :math:`(N, S)`.
            tgt_is_causal, memory_is_causal: hints that the masks are causal.
        """
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(
                self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )
            return x + self._ff_block(self.norm3(x))
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(
            x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)
        )
        return self.norm3(x + self._ff_block(x))

    def _sa_block(
        self,
        x: mx.array,
        attn_mask: mx.array | None,
        key_padding_mask: mx.array | None,
        is_causal: bool = False,
    ) -> mx.array:
        return _attention_block(
            self.self_attn, self.dropout1, x, x, attn_mask, key_padding_mask, is_causal
        )

    def _mha_block(
        self,
        x: mx.array,
        mem: mx.array,
        attn_mask: mx.array | None,
        key_padding_mask: mx.array | None,
        is_causal: bool = False,
    ) -> mx.array:
        return _attention_block(
            self.multihead_attn, self.dropout2, x, mem, attn_mask, key_padding_mask, is_causal
        )

    def _ff_block(self, x: mx.array) -> mx.array:
        return _feed_forward_block(self, x, self.dropout3)
