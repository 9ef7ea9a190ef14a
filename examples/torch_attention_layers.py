"""torch.nn.MultiheadAttention, TransformerEncoderLayer and TransformerDecoderLayer, ported.

Run ``python examples/torch_attention_layers.py`` (add ``--quick`` for a run of a few seconds).

torch's own layers are the models here (``batch_first=True``); each port is the
``flashdrop.nn`` layer of the same name, built with the same arguments and loaded with the
torch layer's ``state_dict()`` as it is (``self_attn.in_proj_weight``, ``linear1.weight``, ...):

- ``MultiheadAttention(dropout=p)`` with ``need_weights=True`` (the default) drops the
  (N * heads, L, S) weights with ``F.dropout`` and returns them, dropped and averaged over the
  heads; with ``need_weights=False`` it calls ``F.scaled_dot_product_attention(q, k, v,
  dropout_p=p)``. Both paths are checked (the returned weights too), with a key padding mask.
- ``TransformerEncoderLayer(dropout=p)``, post-norm and ``norm_first=True``, and
  ``TransformerDecoderLayer`` with a causal target mask: their draws come in torch's order
  (self-attention, ``dropout1``, ...), ``dropout1`` of the attention output in torch's
  (L, N, E) memory order.
"""

import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import check_modes, check_parity, copy_weights, parse_args, report, train

from flashdrop import compat, nn


class TorchAttentionModel(torch.nn.Module):
    """Self-attention through torch's layer; with ``need_weights``, the averaged weights are
    appended to the output (N, L, dim + L) so that the parity check covers them too."""

    def __init__(self, dim: int, heads: int, need_weights: bool, p: float = 0.2) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = torch.zeros(x.shape[:2], dtype=torch.bool)
        padding[0, -2:] = True  # the first sample's last two steps are padding
        out, weights = self.attn(x, x, x, key_padding_mask=padding, need_weights=self.need_weights)
        return out if weights is None else torch.cat([out, weights], dim=-1)


class MlxAttentionModel(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, need_weights: bool, p: float = 0.2) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)
        self.need_weights = need_weights

    def __call__(self, x: mx.array) -> mx.array:
        padding = mx.zeros(x.shape[:2], mx.bool_)
        padding[0, -2:] = True
        out, weights = self.attn(x, x, x, key_padding_mask=padding, need_weights=self.need_weights)
        return out if weights is None else mx.concatenate([out, weights], axis=-1)


class TorchDecoder(torch.nn.Module):
    """A decoder layer on a causal target, attending to a fixed memory."""

    def __init__(self, layer: torch.nn.Module, memory: torch.Tensor) -> None:
        super().__init__()
        self.layer, self.memory = layer, memory

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.layer(x, self.memory, tgt_mask=mask, tgt_is_causal=True)


class MlxDecoder(mlx.nn.Module):
    def __init__(self, layer: mlx.nn.Module, memory: mx.array) -> None:
        super().__init__()
        self.layer = layer
        self._memory = memory  # an input, not a parameter: MLX leaves "_" names out

    def __call__(self, x: mx.array) -> mx.array:
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.layer(x, self._memory, tgt_mask=mask, tgt_is_causal=True)


def main() -> int:
    args = parse_args(__doc__)
    batch, length, dim, heads, ffn = (4, 6, 16, 2, 32) if args.quick else (32, 32, 64, 4, 256)
    x = torch.randn(batch, length, dim)
    # Training: regress a fixed random target sequence.
    train_x = mx.random.normal((batch, length, dim))
    target = mx.random.normal((batch, length, dim))

    for need_weights in (True, False):
        name = f"MultiheadAttention need_weights={need_weights}"
        torch_model = TorchAttentionModel(dim, heads, need_weights)
        model = MlxAttentionModel(dim, heads, need_weights)
        copy_weights(torch_model, model)
        check_parity(name, torch_model, x, model, compat.to_mlx(x), args.seed)
        # the output and, with need_weights, the averaged weights regress a random target
        wide = mx.random.normal((batch, length, dim + length)) if need_weights else target
        train(name, model, mlx.nn.losses.mse_loss, train_x, wide, args.steps)
        check_modes(name, model, train_x)

    for norm_first in (False, True):
        name = f"TransformerEncoderLayer norm_first={norm_first}"
        settings = {"dropout": 0.1, "batch_first": True, "norm_first": norm_first}
        torch_layer = torch.nn.TransformerEncoderLayer(dim, heads, ffn, **settings)
        layer = nn.TransformerEncoderLayer(dim, heads, ffn, **settings)
        copy_weights(torch_layer, layer)
        check_parity(name, torch_layer, x, layer, compat.to_mlx(x), args.seed)
        train(name, layer, mlx.nn.losses.mse_loss, train_x, target, args.steps)
        check_modes(name, layer, train_x)

    name = "TransformerDecoderLayer, causal"
    memory = torch.randn(batch, length + 2, dim)
    settings = {"dropout": 0.1, "batch_first": True}
    torch_decoder = TorchDecoder(
        torch.nn.TransformerDecoderLayer(dim, heads, ffn, **settings), memory
    )
    decoder = MlxDecoder(
        nn.TransformerDecoderLayer(dim, heads, ffn, **settings), compat.to_mlx(memory)
    )
    copy_weights(torch_decoder, decoder)
    check_parity(name, torch_decoder, x, decoder, compat.to_mlx(x), args.seed)
    train(name, decoder, mlx.nn.losses.mse_loss, train_x, target, args.steps)
    check_modes(name, decoder, train_x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
