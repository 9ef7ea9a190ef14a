"""A nanoGPT-style training loop, batches, dropout and LayerDrop included, ported whole to MLX.

The torch side is nanoGPT's loop: ``get_batch`` samples windows with ``torch.randint``, the
model drops attention weights, residuals and embeddings, and each block is skipped in training
with probability ``layerdrop`` after a ``torch.rand([])`` draw (Hugging Face's LayerDrop, as in
BART, mBART, Marian and Whisper). The MLX side draws the same numbers with ``flashdrop.randint``,
``flashdrop.rand`` and flashdrop's dropout, in torch mode: after one seed, both loops see the
same batches, masks and skipped layers, and their per-step losses agree within float rounding,
with no copy of the random state between torch and MLX inside the loop.

Run ``python examples/nanogpt_training_loop.py`` (add ``--quick`` for a run of a few seconds).
"""

import math
import sys

import mlx.core as mx
import mlx.nn
import mlx.optimizers as optim
import torch
from _common import check, check_modes, check_parity, copy_weights, parse_args, report, train

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat, nn

TEXT = (
    "first citizen: before we proceed any further, hear me speak. all: speak, speak. "
    "first citizen: you are all resolved rather to die than to famish? all: resolved. "
)


class TorchBlock(torch.nn.Module):
    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.heads, self.p = heads, p
        self.ln1 = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.ln2 = torch.nn.LayerNorm(dim)
        self.fc = torch.nn.Linear(dim, 4 * dim)
        self.out = torch.nn.Linear(4 * dim, dim)
        self.dropout = torch.nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(n, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        att = torch.nn.functional.dropout(att, self.p, self.training)  # attention dropout
        y = (att @ v).transpose(1, 2).reshape(n, t, c)
        x = x + self.dropout(self.proj(y))
        return x + self.dropout(self.out(torch.nn.functional.gelu(self.fc(self.ln2(x)))))


class TorchGPT(torch.nn.Module):
    def __init__(self, vocab, block, dim, heads, layers, p, layerdrop) -> None:
        super().__init__()
        self.layerdrop = layerdrop
        self.wte = torch.nn.Embedding(vocab, dim)
        self.wpe = torch.nn.Embedding(block, dim)
        self.drop = torch.nn.Dropout(p)
        self.h = torch.nn.ModuleList(TorchBlock(dim, heads, p) for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(dim)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1])))
        for block in self.h:
            if self.training and torch.rand([]) < self.layerdrop:  # LayerDrop
                continue
            x = block(x)
        return self.lm_head(self.ln_f(x))


class MlxBlock(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.heads, self.p = heads, p
        self.ln1 = mlx.nn.LayerNorm(dim)
        self.qkv = mlx.nn.Linear(dim, 3 * dim)
        self.proj = mlx.nn.Linear(dim, dim)
        self.ln2 = mlx.nn.LayerNorm(dim)
        self.fc = mlx.nn.Linear(dim, 4 * dim)
        self.out = mlx.nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        n, t, c = x.shape
        q, k, v = mx.split(self.qkv(self.ln1(x)), 3, axis=2)
        q, k, v = (
            z.reshape(n, t, self.heads, c // self.heads).transpose(0, 2, 1, 3) for z in (q, k, v)
        )
        att = (q @ k.swapaxes(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        causal = mx.tril(mx.ones((t, t), dtype=mx.bool_))
        att = mx.softmax(mx.where(causal, att, -mx.inf), axis=-1)
        att = F.dropout(att, self.p, self.training)  # attention dropout
        y = (att @ v).transpose(0, 2, 1, 3).reshape(n, t, c)
        x = x + self.dropout(self.proj(y))
        return x + self.dropout(self.out(mlx.nn.gelu(self.fc(self.ln2(x)))))


class MlxGPT(mlx.nn.Module):
    def __init__(self, vocab, block, dim, heads, layers, p, layerdrop) -> None:
        super().__init__()
        self.layerdrop = layerdrop
        self.wte = mlx.nn.Embedding(vocab, dim)
        self.wpe = mlx.nn.Embedding(block, dim)
        self.drop = nn.Dropout(p)
        self.h = [MlxBlock(dim, heads, p) for _ in range(layers)]
        self.ln_f = mlx.nn.LayerNorm(dim)
        self.lm_head = mlx.nn.Linear(dim, vocab, bias=False)

    def __call__(self, idx: mx.array) -> mx.array:
        x = self.drop(self.wte(idx) + self.wpe(mx.arange(idx.shape[1])))
        for block in self.h:
            if self.training and flashdrop.rand([]).item() < self.layerdrop:  # LayerDrop
                continue
            x = block(x)
        return self.lm_head(self.ln_f(x))


def torch_loop(model, data, block, batch, steps, seed, lr) -> list[float]:
    """nanoGPT's loop: sample a batch, forward, backward, an AdamW step; the losses.

    MLX's gradient of a parameter a step did not use (a block LayerDrop skipped) is zeros, and
    its AdamW steps every parameter with one step count. torch's skips a parameter whose
    gradient is None, and counts steps per parameter: gradients start as zeros and are zeroed,
    not set to None, so that both optimizers do the same arithmetic.
    """

    def get_batch():
        ix = torch.randint(len(data) - block, (batch,))
        x = torch.stack([data[i : i + block] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + block] for i in ix])
        return x, y

    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    model.train()
    losses = []
    for _ in range(steps):
        x, y = get_batch()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def mlx_loop(model, data, block, batch, steps, seed, lr) -> list[float]:
    """The same loop on MLX: flashdrop's torch mode draws the batches, masks and skips."""

    def get_batch():
        ix = flashdrop.randint(len(data) - block, (batch,)).tolist()
        x = mx.stack([data[i : i + block] for i in ix])
        y = mx.stack([data[i + 1 : i + 1 + block] for i in ix])
        return x, y

    def loss_of(model, x, y):
        logits = model(x)
        return mlx.nn.losses.cross_entropy(logits, y).mean()

    flashdrop.manual_seed(seed)
    optimizer = optim.AdamW(learning_rate=lr, weight_decay=0.01, bias_correction=True)
    loss_and_grad = mlx.nn.value_and_grad(model, loss_of)
    model.train()
    losses = []
    with flashdrop.rng_mode("torch"):
        for _ in range(steps):
            x, y = get_batch()
            loss, grads = loss_and_grad(model, x, y)
            optimizer.update(model, grads)
            mx.eval(model.parameters(), optimizer.state)
            losses.append(loss.item())
    return losses


def main() -> int:
    args = parse_args(__doc__)
    block, batch, dim, heads, layers = (16, 4, 32, 2, 3) if args.quick else (32, 8, 48, 4, 4)
    p, layerdrop, lr = 0.1, 0.25, 3e-3
    chars = sorted(set(TEXT))
    data = torch.tensor([chars.index(ch) for ch in TEXT])
    config = (len(chars), block, dim, heads, layers, p, layerdrop)
    torch_model, model = TorchGPT(*config), MlxGPT(*config)
    copy_weights(torch_model, model)

    x = data[:block].unsqueeze(0).repeat(2, 1)
    check_parity("nanoGPT", torch_model, x, model, compat.to_mlx(x), args.seed)

    # The whole loop, one seed, no state copies inside: per-step losses equal torch's.
    steps = max(args.steps, 5)
    expected = torch_loop(torch_model, data, block, batch, steps, args.seed + 1, lr)
    got = mlx_loop(model, compat.to_mlx(data), block, batch, steps, args.seed + 1, lr)
    worst = max(abs(a - b) / abs(a) for a, b in zip(expected, got, strict=True))
    for step in sorted({0, steps // 2, steps - 1}):
        print(f"nanoGPT loop: step {step + 1:3d}  torch {expected[step]:.6f}  mlx {got[step]:.6f}")
    check(
        worst <= 1e-4,
        f"nanoGPT loop: {steps} steps of batches, dropout and LayerDrop give torch's losses: "
        f"max relative diff {worst:.1e}",
    )

    # The port trains on its own in mlx mode, and its modes behave.
    xs = compat.to_mlx(torch.stack([data[i : i + block] for i in range(0, 64, 8)]))
    ys = compat.to_mlx(torch.stack([data[i + 1 : i + 1 + block] for i in range(0, 64, 8)]))
    train("nanoGPT", model, mlx.nn.losses.cross_entropy, xs, ys, args.steps, learning_rate=3e-3)
    check_modes("nanoGPT", model, xs)
    return report()


if __name__ == "__main__":
    sys.exit(main())
