"""torch.nn.MultiheadAttention and torch.nn.TransformerEncoderLayer: torch's layers, MLX ports.

Run ``python examples/torch_attention_layers.py`` (add ``--quick`` for a run of a few seconds).

torch's own layers are the models here (``batch_first=True``); each port computes what the
layer's training-mode forward pass computes, with its dropouts in torch's order:

- ``MultiheadAttention(dropout=p)`` with ``need_weights=True`` (the default) computes the
  weights itself and drops them with ``F.dropout`` on (N * heads, L, S); it returns them, dropped
  and averaged over the heads. With ``need_weights=False`` it calls
  ``F.scaled_dot_product_attention(q, k, v, dropout_p=p)`` on (N, heads, L, head_dim): the same
  draws, as the weights have the same element order. Both paths are ported and checked (the
  returned weights too).
- ``TransformerEncoderLayer(dropout=p)``, post-norm and ``norm_first=True``: self-attention
  (``need_weights=False``: SDPA's draw), ``dropout1``, the feed-forward's ``dropout``,
  ``dropout2``. With ``batch_first=True`` the attention output that ``dropout1`` drops is a
  transposed view in torch, (N, L, E) laid out as (L, N, E), and torch's dropout draws its mask
  in memory order: the port drops it in (L, N, E) order too.
"""

import math
import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import check_modes, check_parity, copy_weights, parse_args, report, train

from flashdrop import compat, nn
from flashdrop.nn import functional as F


class MultiheadAttention(mlx.nn.Module):
    """``torch.nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)``, self-attention.

    The parameters have torch's names and layouts (``in_proj_weight`` stacks q, k and v).
    """

    def __init__(self, dim: int, heads: int, p: float = 0.0) -> None:
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.in_proj_weight = mx.random.uniform(-bound, bound, (3 * dim, dim))
        self.in_proj_bias = mx.zeros((3 * dim,))
        self.out_proj = mlx.nn.Linear(dim, dim)
        self.heads, self.p = heads, p

    def __call__(self, x: mx.array, need_weights: bool = True) -> tuple[mx.array, mx.array | None]:
        n, length, dim = x.shape
        head_dim = dim // self.heads
        proj = x @ self.in_proj_weight.T + self.in_proj_bias
        q, k, v = (
            a.reshape(n, length, self.heads, head_dim).swapaxes(1, 2)  # (N, H, L, head_dim)
            for a in mx.split(proj, 3, axis=-1)
        )
        p = self.p if self.training else 0.0
        if not need_weights:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            weights = None
        else:
            # torch: softmax(q / sqrt(head_dim) @ k^T) on (N * H, L, S), then F.dropout
            scores = (q * math.sqrt(1.0 / head_dim)) @ k.swapaxes(-1, -2)
            weights = mx.softmax(scores.reshape(n * self.heads, length, length), axis=-1)
            weights = F.dropout(weights, p=p) if p > 0 else weights
            weights = weights.reshape(n, self.heads, length, length)
            out = weights @ v
            weights = weights.mean(axis=1)
        out = self.out_proj(out.swapaxes(1, 2).reshape(n, length, dim))
        return out, weights


class TorchAttentionModel(torch.nn.Module):
    """Self-attention through torch's layer; with ``need_weights``, the averaged weights are
    appended to the output (N, L, dim + L) so that the parity check covers them too."""

    def __init__(self, dim: int, heads: int, need_weights: bool, p: float = 0.2) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, weights = self.attn(x, x, x, need_weights=self.need_weights)
        return out if weights is None else torch.cat([out, weights], dim=-1)


class MlxAttentionModel(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, need_weights: bool, p: float = 0.2) -> None:
        super().__init__()
        self.attn = MultiheadAttention(dim, heads, p)
        self.need_weights = need_weights

    def __call__(self, x: mx.array) -> mx.array:
        out, weights = self.attn(x, need_weights=self.need_weights)
        return out if weights is None else mx.concatenate([out, weights], axis=-1)


class TransformerEncoderLayer(mlx.nn.Module):
    """``torch.nn.TransformerEncoderLayer(dim, heads, ffn, p, batch_first=True, norm_first)``."""

    def __init__(self, dim: int, heads: int, ffn: int, p: float, norm_first: bool) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(dim, heads, p)
        self.linear1 = mlx.nn.Linear(dim, ffn)
        self.dropout = nn.Dropout(p)
        self.linear2 = mlx.nn.Linear(ffn, dim)
        self.norm1 = mlx.nn.LayerNorm(dim)
        self.norm2 = mlx.nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(p)
        self.dropout2 = nn.Dropout(p)
        self.norm_first = norm_first

    def _sa_block(self, x: mx.array) -> mx.array:
        out = self.self_attn(x, need_weights=False)[0]
        # torch's attention output is a transposed view, (N, L, E) over (L, N, E) memory, and
        # dropout draws its mask in memory order: dropout1's mask comes in (L, N, E) order.
        return self.dropout1(out.swapaxes(0, 1)).swapaxes(0, 1)

    def _ff_block(self, x: mx.array) -> mx.array:
        return self.dropout2(self.linear2(self.dropout(mlx.nn.relu(self.linear1(x)))))

    def __call__(self, x: mx.array) -> mx.array:
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x))
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x))
        return self.norm2(x + self._ff_block(x))


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
        torch_layer = torch.nn.TransformerEncoderLayer(
            dim, heads, ffn, dropout=0.1, batch_first=True, norm_first=norm_first
        )
        layer = TransformerEncoderLayer(dim, heads, ffn, 0.1, norm_first)
        copy_weights(torch_layer, layer)
        check_parity(name, torch_layer, x, layer, compat.to_mlx(x), args.seed)
        train(name, layer, mlx.nn.losses.mse_loss, train_x, target, args.steps)
        check_modes(name, layer, train_x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
