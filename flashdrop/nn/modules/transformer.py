r"""torch.nn's Transformer stacks on MLX: :class:`TransformerEncoder`, :class:`TransformerDecoder`
and :class:`Transformer`, with torch 2.13's arguments, parameters (named as torch's
``state_dict()``), errors and warnings, over the layers of
:mod:`~flashdrop.nn.modules.transformer_layers` (where each draw is made, in torch's order).
"""

import copy
import math
import warnings
from typing import Any

import mlx.core as mx
import mlx.nn
from mlx.utils import tree_flatten, tree_unflatten

from flashdrop import _checks
from flashdrop.nn.modules import _masks
from flashdrop.nn.modules._layer import TorchModule
from flashdrop.nn.modules.transformer_layers import (
    Activation,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)

__all__ = [
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]


def _clones(module: mlx.nn.Module, n: int) -> list[mlx.nn.Module]:
    """torch's ``_get_clones``: ``n`` deep copies of ``module``, sharing its functions (an
    activation such as ``mlx.nn.gelu`` is a compiled function, which cannot be copied)."""
    shared = {
        id(value): value
        for m in module.modules()
        for value in vars(m).values()
        if callable(value) and not isinstance(value, mlx.nn.Module)
    }
    return [copy.deepcopy(module, dict(shared)) for _ in range(n)]


def _seq_len(src: mx.array, batch_first: bool) -> int:
    """torch's ``_get_seq_len``."""
    return src.shape[0] if src.ndim == 2 else src.shape[1 if batch_first else 0]


def _why_not_sparsity_fast_path(layer: Any) -> str:
    """Why torch's ``TransformerEncoder`` would not use nested tensors with ``layer``: its
    warning's reason (flashdrop has no nested tensors; the warning is torch's)."""
    name = "encoder_layer"
    if not isinstance(layer, TransformerEncoderLayer):
        return f"{name} was not TransformerEncoderLayer"
    attn = layer.self_attn
    reasons = (
        (layer.norm_first, f"{name}.norm_first was True"),
        (
            not attn.batch_first,
            f"{name}.self_attn.batch_first was not True"
            "(use batch_first for better inference performance)",
        ),
        (not attn._qkv_same_embed_dim, f"{name}.self_attn._qkv_same_embed_dim was not True"),
        (attn.in_proj_bias is None, f"{name}.self_attn was passed bias=False"),
        (not layer.activation_relu_or_gelu, f"{name}.activation_relu_or_gelu was not True"),
        (layer.norm1.eps != layer.norm2.eps, f"{name}.norm1.eps was not equal to {name}.norm2.eps"),
        (attn.num_heads % 2 == 1, f"{name}.self_attn.num_heads is odd"),
    )
    return next((reason for failed, reason in reasons if failed), "")


class TransformerEncoder(TorchModule):
    r"""A stack of ``num_layers`` copies of ``encoder_layer``, as torch 2.13's
    ``nn.TransformerEncoder`` (parameters ``layers.0.self_attn.in_proj_weight``, ...).

    ``enable_nested_tensor`` and ``mask_check`` are accepted for torch's signature and its
    warning; flashdrop has no nested tensors, and computes padded positions as torch does in
    training.

    Args:
        encoder_layer: a :class:`TransformerEncoderLayer` (or any module called likewise).
        num_layers: the number of sub-encoder-layers in the encoder.
        norm: the layer normalization component (optional).
        enable_nested_tensor: torch's fast-path switch (warns as torch). Default: ``True``
        mask_check: torch's check of the padding mask for nested tensors. Default: ``True``

    Example::

        >>> layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, batch_first=True)
        >>> encoder = nn.TransformerEncoder(layer, num_layers=6)
    """

    def __init__(
        self,
        encoder_layer: mlx.nn.Module,
        num_layers: int,
        norm: mlx.nn.Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check
        reason = _why_not_sparsity_fast_path(encoder_layer)
        if enable_nested_tensor and reason:
            warnings.warn(_checks.nested_tensor_disabled(reason), stacklevel=2)
            self.use_nested_tensor = False

    def forward(
        self,
        src: mx.array,
        mask: mx.array | None = None,
        src_key_padding_mask: mx.array | None = None,
        is_causal: bool | None = None,
    ) -> mx.array:
        """Pass the input through the encoder layers in turn.

        Args:
            src: the sequence to the encoder (required).
            mask: the mask for the src sequence (optional).
            src_key_padding_mask: the mask for the src keys per batch (optional).
            is_causal: whether ``mask`` is the causal mask; ``None`` detects it. Default: ``None``
        """
        src_key_padding_mask, mask = _masks.canonical(
            src_key_padding_mask, "src_key_padding_mask", mask, "mask", src.dtype
        )
        batch_first = self.layers[0].self_attn.batch_first
        is_causal = _masks.is_causal(mask, is_causal, _seq_len(src, batch_first))
        output = src
        for layer in self.layers:
            output = layer(
                output,
                src_mask=mask,
                is_causal=is_causal,
                src_key_padding_mask=src_key_padding_mask,
            )
        return output if self.norm is None else self.norm(output)


class TransformerDecoder(TorchModule):
    r"""A stack of ``num_layers`` copies of ``decoder_layer``, as torch 2.13's
    ``nn.TransformerDecoder``.

    Args:
        decoder_layer: a :class:`TransformerDecoderLayer` (or any module called likewise).
        num_layers: the number of sub-decoder-layers in the decoder.
        norm: the layer normalization component (optional).

    Example::

        >>> layer = nn.TransformerDecoderLayer(d_model=64, nhead=4)
        >>> decoder = nn.TransformerDecoder(layer, num_layers=6)
    """

    def __init__(
        self, decoder_layer: mlx.nn.Module, num_layers: int, norm: mlx.nn.Module | None = None
    ) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: mx.array,
        memory: mx.array,
        tgt_mask: mx.array | None = None,
        memory_mask: mx.array | None = None,
        tgt_key_padding_mask: mx.array | None = None,
        memory_key_padding_mask: mx.array | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> mx.array:
        """Pass the inputs (and masks) through the decoder layers in turn; the arguments are
        :meth:`TransformerDecoderLayer.forward`'s (``tgt_is_causal=None`` detects it)."""
        seq_len = _seq_len(tgt, self.layers[0].self_attn.batch_first)
        tgt_is_causal = _masks.is_causal(tgt_mask, tgt_is_causal, seq_len)
        output = tgt
        for layer in self.layers:
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=tgt_is_causal,
                memory_is_causal=memory_is_causal,
            )
        return output if self.norm is None else self.norm(output)


class Transformer(TorchModule):
    r"""An encoder-decoder transformer, as torch 2.13's ``nn.Transformer``: the same arguments,
    defaults, parameters (``encoder.layers.0....``, ``encoder.norm``, ``decoder...``), checks and
    draws, in torch's order (the encoder's layers, then the decoder's).

    Args:
        d_model: the number of expected features in the encoder/decoder inputs. Default: 512
        nhead: the number of heads in the multiheadattention models. Default: 8
        num_encoder_layers: the number of sub-encoder-layers in the encoder. Default: 6
        num_decoder_layers: the number of sub-decoder-layers in the decoder. Default: 6
        dim_feedforward: the dimension of the feedforward network model. Default: 2048
        dropout: the dropout value. Default: 0.1
        activation: ``"relu"``, ``"gelu"`` or an MLX callable. Default: ``"relu"``
        custom_encoder: custom encoder. Default: ``None``
        custom_decoder: custom decoder. Default: ``None``
        layer_norm_eps: the eps value in layer normalization components. Default: 1e-5
        batch_first: inputs and outputs are (batch, seq, feature). Default: ``False``
        norm_first: layer norm before each block (pre-norm). Default: ``False``
        bias: the Linear and LayerNorm layers learn an additive bias. Default: ``True``

    Example::

        >>> model = nn.Transformer(d_model=64, nhead=4, num_encoder_layers=2)
        >>> model.load_weights([(k, compat.to_mlx(v)) for k, v in torch_model.state_dict().items()])
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        custom_encoder: Any | None = None,
        custom_decoder: Any | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        layer_args = (
            d_model,
            nhead,
            dim_feedforward,
            dropout,
            activation,
            layer_norm_eps,
            batch_first,
            norm_first,
            bias,
        )
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(*layer_args),
                num_encoder_layers,
                mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias),
            )
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(*layer_args),
                num_decoder_layers,
                mlx.nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias),
            )
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(
        self,
        src: mx.array,
        tgt: mx.array,
        src_mask: mx.array | None = None,
        tgt_mask: mx.array | None = None,
        memory_mask: mx.array | None = None,
        src_key_padding_mask: mx.array | None = None,
        tgt_key_padding_mask: mx.array | None = None,
        memory_key_padding_mask: mx.array | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> mx.array:
        """Take in and process masked source/target sequences; the arguments are torch's."""
        is_batched = src.ndim == 3
        batch_axis = 0 if self.batch_first else 1
        if is_batched and src.shape[batch_axis] != tgt.shape[batch_axis]:
            _checks.raise_transformer_batch()
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            _checks.raise_transformer_features()
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(
        sz: int, device: Any = None, dtype: mx.Dtype | None = None
    ) -> mx.array:
        r"""A square causal mask for the sequence: ``-inf`` above the diagonal, 0 elsewhere
        (``device`` is accepted for torch's signature and ignored). Default dtype: float32."""
        return _masks.causal(sz, mx.float32 if dtype is None else dtype)

    def _reset_parameters(self) -> None:
        """torch's: ``xavier_uniform_`` of every parameter of 2 or more dimensions."""
        params = []
        for name, p in tree_flatten(self.parameters()):
            if p.ndim > 1:
                fan_in = p.shape[1] * math.prod(p.shape[2:])
                fan_out = p.shape[0] * math.prod(p.shape[2:])
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                p = mx.random.uniform(-bound, bound, p.shape)
            params.append((name, p))
        self.update(tree_unflatten(params))
