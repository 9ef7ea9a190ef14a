"""Porting torch's layers that drop inside themselves: MultiheadAttention, the Transformer family
and the RNNs, each to its flashdrop twin with the same settings and weights.

:func:`flashdrop.compat.port_dropout` hands these layers to :func:`port_layer`;
:func:`flashdrop.compat.dropout_layers` lists those whose dropout is no module of theirs
(:data:`DROPPING_INSIDE`): the attention's and the RNNs'. A Transformer layer drops through its
``Dropout`` modules and its attention, which are listed themselves.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlx.nn

from flashdrop import nn as fnn
from flashdrop.compat.lazy_torch import import_torch
from flashdrop.compat.tensors import to_mlx

# torch.nn's layers ported here, by class name (torch.nn's own classes, not subclasses).
LAYERS = (
    "MultiheadAttention",
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "RNN",
    "LSTM",
    "GRU",
)
# Those whose dropout is no module of theirs, which dropout_layers lists.
DROPPING_INSIDE = ("MultiheadAttention", "RNN", "LSTM", "GRU")


def torch_layer_name(cls: type) -> str | None:
    """The name of ``cls`` if it is one of torch.nn's :data:`LAYERS` itself, else None."""
    torch = import_torch()
    name = cls.__name__
    return name if name in LAYERS and getattr(torch.nn, name, None) is cls else None


def port_layer(module: Any) -> mlx.nn.Module:
    """The flashdrop twin of one of torch.nn's :data:`LAYERS`: built with the module's settings,
    loaded with its ``state_dict()`` (no renaming) and in its training mode."""
    port = _build(module)
    port.load_weights([(k, to_mlx(v)) for k, v in module.state_dict().items()])
    port.train(module.training)
    return port


def _build(module: Any) -> mlx.nn.Module:
    torch = import_torch()
    name = type(module).__name__
    if name == "MultiheadAttention":
        return fnn.MultiheadAttention(
            module.embed_dim,
            module.num_heads,
            dropout=module.dropout,
            bias=module.in_proj_bias is not None,
            add_bias_kv=module.bias_k is not None,
            add_zero_attn=module.add_zero_attn,
            kdim=module.kdim,
            vdim=module.vdim,
            batch_first=module.batch_first,
        )
    if name in ("RNN", "LSTM", "GRU"):
        args = [module.input_size, module.hidden_size, module.num_layers]
        if name == "RNN":
            args.append(module.nonlinearity)
        args += [module.bias, module.batch_first, module.dropout, module.bidirectional]
        if name == "LSTM":
            args.append(module.proj_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's constructor gave its warnings already
            return getattr(fnn, name)(*args)
    if name in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        attn = module.self_attn
        return getattr(fnn, name)(
            attn.embed_dim,
            attn.num_heads,
            dim_feedforward=module.linear1.out_features,
            dropout=module.dropout.p,
            activation=_activation(torch, module.activation),
            layer_norm_eps=module.norm1.eps,
            batch_first=attn.batch_first,
            norm_first=module.norm_first,
            bias=module.linear1.bias is not None,
        )
    if name == "TransformerEncoder":
        port = fnn.TransformerEncoder(
            _build(module.layers[0]), module.num_layers, _norm(torch, module.norm), False
        )
        port.enable_nested_tensor = module.enable_nested_tensor
        port.use_nested_tensor = module.use_nested_tensor
        port.mask_check = module.mask_check
        return port
    if name == "TransformerDecoder":
        return fnn.TransformerDecoder(
            _build(module.layers[0]), module.num_layers, _norm(torch, module.norm)
        )
    # Transformer
    encoder, decoder = _build(module.encoder), _build(module.decoder)
    layer = module.encoder.layers[0]
    return fnn.Transformer(
        module.d_model,
        module.nhead,
        custom_encoder=encoder,
        custom_decoder=decoder,
        batch_first=module.batch_first,
        norm_first=layer.norm_first,
    )


def _activation(torch: Any, activation: Any) -> str:
    """torch's activation as flashdrop's name for it: F.relu, nn.ReLU(), F.gelu, nn.GELU()."""
    functional = torch.nn.functional
    if activation is functional.relu or type(activation) is torch.nn.ReLU:
        return "relu"
    if activation is functional.gelu or (
        type(activation) is torch.nn.GELU and activation.approximate == "none"
    ):
        return "gelu"
    raise TypeError(
        f"port_dropout: cannot port the activation {activation!r}: only relu and gelu are "
        "ported; build the flashdrop layer with activation= an MLX callable and load the weights"
    )


def _norm(torch: Any, norm: Any) -> mlx.nn.Module | None:
    if norm is None:
        return None
    if type(norm) is not torch.nn.LayerNorm or len(norm.normalized_shape) != 1:
        raise TypeError(
            f"port_dropout: cannot port the norm {norm!r}: only a LayerNorm over the last axis"
        )
    return mlx.nn.LayerNorm(
        norm.normalized_shape[0],
        eps=norm.eps,
        affine=norm.elementwise_affine,
        bias=norm.bias is not None,
    )
