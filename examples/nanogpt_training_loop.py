"""A nanoGPT-style training loop, batches, dropout and LayerDrop included, ported whole to MLX.

The torch side is nanoGPT's loop: ``get_batch`` samples windows with ``torch.randint``, the
model (examples/nanogpt_attention.py's) drops attention weights (inside
``scaled_dot_product_attention``), residuals and embeddings, and each block is skipped in training
with probability ``layerdrop`` after a ``torch.rand([])`` draw (Hugging Face's LayerDrop, as in
BART, mBART, Marian and Whisper). The MLX side draws the same numbers with ``flashdrop.randint``,
``flashdrop.rand`` and flashdrop's dropout, in torch mode: after one seed, both loops see the
same batches, masks and skipped layers, and their per-step losses agree within float rounding,
with no copy of the random state between torch and MLX inside the loop.

Run ``python examples/nanogpt_training_loop.py`` (add ``--quick`` for a run of a few seconds).
"""

import sys

import mlx.core as mx
import mlx.nn
import mlx.optimizers as optim
import torch
from _common import check, check_modes, check_parity, copy_weights, parse_args, report, train
from nanogpt_attention import MlxGPT, TorchGPT

import flashdrop
from flashdrop import compat

TEXT = (
    "first citizen: before we proceed any further, hear me speak. all: speak, speak. "
    "first citizen: you are all resolved rather to die than to famish? all: resolved. "
)


class TorchLayerDropGPT(TorchGPT):
    """nanoGPT's model (examples/nanogpt_attention.py) with LayerDrop: in training, each block is
    skipped when a ``torch.rand([])`` draw falls below ``layerdrop``, as Hugging Face's do."""

    def __init__(self, *args: int, p: float, layerdrop: float) -> None:
        super().__init__(*args, p=p)
        self.layerdrop = layerdrop

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1])))
        for block in self.h:
            if self.training and torch.rand([]) < self.layerdrop:  # LayerDrop
                continue
            x = block(x)
        return self.lm_head(self.ln_f(x))


class MlxLayerDropGPT(MlxGPT):
    """The port: ``flashdrop.rand([])`` draws the skips from flashdrop's stream."""

    def __init__(self, *args: int, p: float, layerdrop: float) -> None:
        super().__init__(*args, p=p)
        self.layerdrop = layerdrop

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
    config = (len(chars), block, dim, heads, layers)
    torch_model = TorchLayerDropGPT(*config, p=p, layerdrop=layerdrop)
    model = MlxLayerDropGPT(*config, p=p, layerdrop=layerdrop)
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
