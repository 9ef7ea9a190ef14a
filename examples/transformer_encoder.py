"""A Transformer encoder block and its three dropouts: a torch model and its MLX port.

Run ``python examples/transformer_encoder.py`` (add ``--quick`` for a run of a few seconds).

The block is written out (post-norm, like ``torch.nn.TransformerEncoderLayer``) so that the order of
its dropout calls is plain, and the port calls them in the same order: masks are drawn from one
stream, so the port's n-th dropout call must be torch's n-th for the masks to line up.

1. ``attn_dropout`` on the attention weights, (N, heads, L, L);
2. ``dropout1`` on the attention output, before the residual add;
3. ``dropout2`` on the feed-forward output, before the residual add.

torch's own ``nn.TransformerEncoderLayer`` has its port in ``flashdrop.nn`` (see
``torch_attention_layers.py``); this block is a model's own, written out on both sides.
"""

import math
import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import check_modes, check_parity, copy_weights, parse_args, report, train

from flashdrop import compat, nn


class TorchEncoderBlock(torch.nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, p: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, dim)
        self.ffn1 = torch.nn.Linear(dim, ffn)
        self.ffn2 = torch.nn.Linear(ffn, dim)
        self.norm1 = torch.nn.LayerNorm(dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.attn_dropout = torch.nn.Dropout(p)
        self.dropout1 = torch.nn.Dropout(p)
        self.dropout2 = torch.nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, dim)
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dim // self.heads), dim=-1)
        attn = (self.attn_dropout(weights) @ v).transpose(1, 2).reshape(n, length, dim)
        x = self.norm1(x + self.dropout1(self.out(attn)))
        return self.norm2(x + self.dropout2(self.ffn2(torch.relu(self.ffn1(x)))))


class MlxEncoderBlock(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, p: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = mlx.nn.Linear(dim, 3 * dim)
        self.out = mlx.nn.Linear(dim, dim)
        self.ffn1 = mlx.nn.Linear(dim, ffn)
        self.ffn2 = mlx.nn.Linear(ffn, dim)
        self.norm1 = mlx.nn.LayerNorm(dim)
        self.norm2 = mlx.nn.LayerNorm(dim)
        self.attn_dropout = nn.Dropout(p)
        self.dropout1 = nn.Dropout(p)
        self.dropout2 = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:  # (N, L, dim)
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.heads, -1).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = mx.softmax(q @ k.swapaxes(-1, -2) / math.sqrt(dim // self.heads), axis=-1)
        attn = (self.attn_dropout(weights) @ v).swapaxes(1, 2).reshape(n, length, dim)
        x = self.norm1(x + self.dropout1(self.out(attn)))
        return self.norm2(x + self.dropout2(self.ffn2(mlx.nn.relu(self.ffn1(x)))))


def main() -> int:
    args = parse_args(__doc__)
    batch, length, dim, heads, ffn = (4, 6, 16, 2, 32) if args.quick else (32, 32, 64, 4, 256)
    torch_model = TorchEncoderBlock(dim, heads, ffn)
    model = MlxEncoderBlock(dim, heads, ffn)
    copy_weights(torch_model, model)

    x = torch.randn(batch, length, dim)
    check_parity("encoder block", torch_model, x, model, compat.to_mlx(x), args.seed)

    # Training: regress a fixed random target sequence.
    x = mx.random.normal((batch, length, dim))
    target = mx.random.normal((batch, length, dim))
    train("encoder block", model, mlx.nn.losses.mse_loss, x, target, args.steps)
    check_modes("encoder block", model, x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
