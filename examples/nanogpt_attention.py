"""A nanoGPT-style causal transformer: a torch model and its MLX port, attention dropout included.

Run ``python examples/nanogpt_attention.py`` (add ``--quick`` for a run of a few seconds).

The model is karpathy/nanoGPT's (``model.py``), without weight tying: token and position
embeddings, then blocks of pre-norm causal self-attention and MLP, then a final norm and the
language-model head. Its dropouts, in the order each forward pass calls them:

1. ``drop`` on the summed embeddings, (N, T, C);
2. per block: the attention weights' dropout inside ``scaled_dot_product_attention(...,
   dropout_p, is_causal=True)`` on (N, heads, T, T), then ``resid_dropout`` on the attention
   output, then the MLP's ``dropout``.

torch uses its own ``torch.nn.functional.scaled_dot_product_attention``; the port calls
``flashdrop.nn.functional.scaled_dot_product_attention`` with the same arguments, which draws the
weights' mask as torch does: in torch mode the logits are torch's.
"""

import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import check_modes, check_parity, copy_weights, parse_args, report, train

from flashdrop import compat, nn
from flashdrop.nn import functional as F


class TorchCausalSelfAttention(torch.nn.Module):
    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.c_attn = torch.nn.Linear(dim, 3 * dim)
        self.c_proj = torch.nn.Linear(dim, dim)
        self.resid_dropout = torch.nn.Dropout(p)
        self.heads, self.p = heads, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (a.view(n, t, self.heads, c // self.heads).transpose(1, 2) for a in (q, k, v))
        y = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.p if self.training else 0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(n, t, c)
        return self.resid_dropout(self.c_proj(y))


class MlxCausalSelfAttention(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.c_attn = mlx.nn.Linear(dim, 3 * dim)
        self.c_proj = mlx.nn.Linear(dim, dim)
        self.resid_dropout = nn.Dropout(p)
        self.heads, self.p = heads, p

    def __call__(self, x: mx.array) -> mx.array:
        n, t, c = x.shape
        q, k, v = mx.split(self.c_attn(x), 3, axis=2)
        q, k, v = (a.reshape(n, t, self.heads, c // self.heads).swapaxes(1, 2) for a in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.p if self.training else 0, is_causal=True
        )
        y = y.swapaxes(1, 2).reshape(n, t, c)
        return self.resid_dropout(self.c_proj(y))


class TorchBlock(torch.nn.Module):
    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(dim)
        self.attn = TorchCausalSelfAttention(dim, heads, p)
        self.ln_2 = torch.nn.LayerNorm(dim)
        self.c_fc = torch.nn.Linear(dim, 4 * dim)
        self.mlp_proj = torch.nn.Linear(4 * dim, dim)
        self.dropout = torch.nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        mlp = self.mlp_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x))))
        return x + self.dropout(mlp)


class MlxBlock(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.ln_1 = mlx.nn.LayerNorm(dim)
        self.attn = MlxCausalSelfAttention(dim, heads, p)
        self.ln_2 = mlx.nn.LayerNorm(dim)
        self.c_fc = mlx.nn.Linear(dim, 4 * dim)
        self.mlp_proj = mlx.nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.attn(self.ln_1(x))
        mlp = self.mlp_proj(mlx.nn.gelu(self.c_fc(self.ln_2(x))))  # torch's exact (erf) GELU
        return x + self.dropout(mlp)


class TorchGPT(torch.nn.Module):
    def __init__(self, vocab: int, block: int, dim: int, heads: int, layers: int, p=0.1) -> None:
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, dim)
        self.wpe = torch.nn.Embedding(block, dim)
        self.drop = torch.nn.Dropout(p)
        self.h = torch.nn.ModuleList(TorchBlock(dim, heads, p) for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(dim)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (N, T) token ids
        pos = torch.arange(idx.shape[1])
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class MlxGPT(mlx.nn.Module):
    def __init__(self, vocab: int, block: int, dim: int, heads: int, layers: int, p=0.1) -> None:
        super().__init__()
        self.wte = mlx.nn.Embedding(vocab, dim)
        self.wpe = mlx.nn.Embedding(block, dim)
        self.drop = nn.Dropout(p)
        self.h = [MlxBlock(dim, heads, p) for _ in range(layers)]
        self.ln_f = mlx.nn.LayerNorm(dim)
        self.lm_head = mlx.nn.Linear(dim, vocab, bias=False)

    def __call__(self, idx: mx.array) -> mx.array:
        pos = mx.arange(idx.shape[1])
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def main() -> int:
    args = parse_args(__doc__)
    vocab, block, dim, heads, layers, batch = (
        (32, 16, 32, 4, 2, 4) if args.quick else (65, 64, 128, 4, 4, 16)
    )
    torch_model = TorchGPT(vocab, block, dim, heads, layers)
    model = MlxGPT(vocab, block, dim, heads, layers)
    copy_weights(torch_model, model)

    idx = torch.randint(0, vocab, (batch, block))
    check_parity("nanoGPT", torch_model, idx, model, compat.to_mlx(idx), args.seed)

    # Training: next-token prediction on a fixed random sequence.
    tokens = mx.random.randint(0, vocab, (batch, block + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    train("nanoGPT", model, mlx.nn.losses.cross_entropy, x, y, args.steps)
    check_modes("nanoGPT", model, x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
