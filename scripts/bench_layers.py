"""Speed of flashdrop.nn's attention, Transformer and RNN layers against the same computation
written with mlx.nn parts, in flashdrop's default "mlx" random mode.

Run from the repository root::

    .venv/bin/python scripts/bench_layers.py            # a few minutes
    .venv/bin/python scripts/bench_layers.py --quick    # fewer rounds: under a minute

:func:`layer_rows` is the whole measurement (one row per layer and mode), meant to be wired into
``scripts/bench.py``'s report. Each row times ``mx.eval(layer(x))`` for the flashdrop layer and
for its hand-written counterpart, in training and in evaluation mode:

- ``MultiheadAttention`` (self-attention, ``need_weights=False``, ``batch_first``) against
  ``mlx.nn.Linear`` projections with, in training, ``q @ k^T * scale``, ``mx.softmax``,
  ``mlx.nn.Dropout`` and ``@ v``, and in evaluation ``mx.fast.scaled_dot_product_attention``;
- ``TransformerEncoderLayer`` (post-norm, ``batch_first``) against that attention with
  ``mlx.nn.Linear``, ``mlx.nn.LayerNorm`` and three ``mlx.nn.Dropout``;
- ``LSTM`` and ``GRU`` (two layers, ``dropout`` between them, ``batch_first``) against two
  ``mlx.nn.LSTM`` / ``mlx.nn.GRU`` stacked by hand with ``mlx.nn.Dropout`` between them.

The two are timed round-robin, one call of each per round (the first alternating), after
warm-up rounds; a ratio is the median over rounds of the two times within one round. Targets:
training at most 1.1x, evaluation at most 1.05x. Nothing here asserts speed.
"""

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable

import mlx.core as mx
import mlx.nn

from flashdrop import nn

TARGETS = {"train": 1.1, "eval": 1.05}


class HandAttention(mlx.nn.Module):
    """Self-attention written with mlx.nn parts (batch first)."""

    def __init__(self, dim: int, heads: int, p: float) -> None:
        super().__init__()
        self.in_proj = mlx.nn.Linear(dim, 3 * dim)
        self.out_proj = mlx.nn.Linear(dim, dim)
        self.dropout = mlx.nn.Dropout(p)
        self.heads = heads

    def __call__(self, x: mx.array) -> mx.array:
        n, length, dim = x.shape
        q, k, v = (
            a.reshape(n, length, self.heads, -1).transpose(0, 2, 1, 3)
            for a in mx.split(self.in_proj(x), 3, axis=-1)
        )
        scale = 1 / math.sqrt(dim // self.heads)
        if self.training:
            weights = self.dropout(mx.softmax((q * scale) @ k.swapaxes(-1, -2), axis=-1))
            out = weights @ v
        else:
            out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(n, length, dim))


class HandEncoderLayer(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, p: float) -> None:
        super().__init__()
        self.self_attn = HandAttention(dim, heads, p)
        self.linear1, self.linear2 = mlx.nn.Linear(dim, ffn), mlx.nn.Linear(ffn, dim)
        self.norm1, self.norm2 = mlx.nn.LayerNorm(dim), mlx.nn.LayerNorm(dim)
        self.dropout, self.dropout1, self.dropout2 = (mlx.nn.Dropout(p) for _ in range(3))

    def __call__(self, x: mx.array) -> mx.array:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        ff = self.linear2(self.dropout(mlx.nn.relu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ff))


class HandStack(mlx.nn.Module):
    """Two mlx.nn recurrent layers (batch first) with dropout between them."""

    def __init__(self, cls: type, features: int, hidden: int, p: float) -> None:
        super().__init__()
        self.layers = [cls(features, hidden), cls(hidden, hidden)]
        self.dropout = mlx.nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        out = self.layers[0](x)
        out = out[0] if isinstance(out, tuple) else out  # LSTM: (hidden, cell)
        out = self.layers[1](self.dropout(out))
        return out[0] if isinstance(out, tuple) else out


def workloads() -> list[tuple[str, mlx.nn.Module, mlx.nn.Module, Callable, mx.array]]:
    """(name, flashdrop layer, hand-written layer, how to call the flashdrop one, input)."""
    n, length, dim, heads, ffn, p = 4, 64, 128, 4, 512, 0.1
    x = mx.random.normal((n, length, dim))
    seq = mx.random.normal((8, 16, 64))
    attn = nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)
    return [
        (
            f"MultiheadAttention N={n} L={length} E={dim} H={heads}",
            attn,
            HandAttention(dim, heads, p),
            lambda m, x: m(x, x, x, need_weights=False)[0],
            x,
        ),
        (
            f"TransformerEncoderLayer N={n} L={length} E={dim} ff={ffn}",
            nn.TransformerEncoderLayer(dim, heads, ffn, p, batch_first=True),
            HandEncoderLayer(dim, heads, ffn, p),
            lambda m, x: m(x),
            x,
        ),
        (
            "LSTM 2 layers N=8 L=16 in=64 H=128",
            nn.LSTM(64, 128, num_layers=2, dropout=p, batch_first=True),
            HandStack(mlx.nn.LSTM, 64, 128, p),
            lambda m, x: m(x)[0],
            seq,
        ),
        (
            "GRU 2 layers N=8 L=16 in=64 H=128",
            nn.GRU(64, 128, num_layers=2, dropout=p, batch_first=True),
            HandStack(mlx.nn.GRU, 64, 128, p),
            lambda m, x: m(x)[0],
            seq,
        ),
    ]


def _time(fn: Callable[[], mx.array]) -> float:
    start = time.perf_counter()
    mx.eval(fn())
    return time.perf_counter() - start


def layer_rows(quick: bool = False) -> list[dict]:
    """One row per layer and mode: the median times and their ratio, with the target."""
    rounds, warmup = (9, 2) if quick else (40, 5)
    rows = []
    for name, ours, theirs, call, x in workloads():
        mx.eval(ours.parameters(), theirs.parameters())
        for mode in ("train", "eval"):
            ours.train(mode == "train")
            theirs.train(mode == "train")
            contenders = [
                lambda call=call, ours=ours, x=x: call(ours, x),
                lambda theirs=theirs, x=x: theirs(x),
            ]
            times: list[list[float]] = [[], []]
            for r in range(warmup + rounds):
                order = (0, 1) if r % 2 == 0 else (1, 0)
                measured = {i: _time(contenders[i]) for i in order}
                if r >= warmup:
                    for i in (0, 1):
                        times[i].append(measured[i])
            ratio = statistics.median(a / b for a, b in zip(*times, strict=True))
            rows.append(
                {
                    "layer": name,
                    "mode": mode,
                    "flashdrop_s": statistics.median(times[0]),
                    "mlx_nn_s": statistics.median(times[1]),
                    "ratio": ratio,
                    "target": TARGETS[mode],
                    "met": ratio <= TARGETS[mode],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    print(f"{'layer':<46} {'mode':<6} {'flashdrop':>10} {'mlx.nn':>10} {'ratio':>7} target")
    for row in layer_rows(args.quick):
        print(
            f"{row['layer']:<46} {row['mode']:<6} {row['flashdrop_s'] * 1e3:>8.2f}ms "
            f"{row['mlx_nn_s'] * 1e3:>8.2f}ms {row['ratio']:>6.2f}x <= {row['target']}"
            f" {'met' if row['met'] else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
