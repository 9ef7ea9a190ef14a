"""flashdrop.nn's attention, Transformer and RNN layers against the same computation written with
mlx.nn parts, in training and in evaluation mode: workloads of their own, one per layer and mode.

- ``MultiheadAttention`` (self-attention on (4, 64, 128), 4 heads, ``need_weights=False``,
  ``batch_first``) against ``mlx.nn.Linear`` projections with, in training,
  ``q @ k^T * scale``, ``mx.softmax``, ``mlx.nn.Dropout`` and ``@ v``, and in evaluation
  ``mx.fast.scaled_dot_product_attention``;
- ``TransformerEncoderLayer`` (post-norm, feed-forward 512, ``batch_first``) against that
  attention with ``mlx.nn.Linear``, ``mlx.nn.LayerNorm`` and three ``mlx.nn.Dropout``;
- ``LSTM`` and ``GRU`` (two layers of 128 on (8, 16, 64), ``dropout`` between them,
  ``batch_first``) against two ``mlx.nn.LSTM`` / ``mlx.nn.GRU`` stacked by hand with
  ``mlx.nn.Dropout`` between them.

Each call is ``mx.eval(layer(x))``, timed round-robin as every workload (:mod:`bench.timing`);
torch is not timed here (its layers are not the reference of these goals), and a layer's rows
have no bandwidth (``gbps`` None): their time is the matrix products', not memory traffic.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn

from flashdrop import nn

from .measure import result_rows
from .timing import Contender, time_round_robin, warmup_rounds
from .workloads import FD_MLX, MLX_NN, Workload

LAYER_P = 0.1  # the layers' dropout
MODES = ("train", "eval")  # model.train(), model.eval()
ROUNDS, QUICK_ROUNDS = 40, 9


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
    """torch's post-norm encoder layer written with mlx.nn parts (batch first)."""

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


@dataclass(frozen=True)
class LayerCase:
    """One flashdrop layer and its hand-written counterpart, on one input shape."""

    name: str  # the layer, as the report names it
    shape: tuple[int, ...]
    build: Callable[[], tuple[mlx.nn.Module, mlx.nn.Module]]  # (flashdrop's, mlx.nn parts')
    call: Callable[[mlx.nn.Module, mx.array], mx.array]  # how flashdrop's layer is called
    attends: bool = False  # through F.scaled_dot_product_attention (dropout_p in training)


N, L, E, HEADS, FFN = 4, 64, 128, 4, 512
SEQ, FEATURES, HIDDEN = (8, 16, 64), 64, 128

CASES = (
    LayerCase(
        "nn.MultiheadAttention",
        (N, L, E),
        lambda: (
            nn.MultiheadAttention(E, HEADS, dropout=LAYER_P, batch_first=True),
            HandAttention(E, HEADS, LAYER_P),
        ),
        lambda m, x: m(x, x, x, need_weights=False)[0],
        attends=True,
    ),
    LayerCase(
        "nn.TransformerEncoderLayer",
        (N, L, E),
        lambda: (
            nn.TransformerEncoderLayer(E, HEADS, FFN, LAYER_P, batch_first=True),
            HandEncoderLayer(E, HEADS, FFN, LAYER_P),
        ),
        lambda m, x: m(x),
        attends=True,
    ),
    *(
        LayerCase(
            f"nn.{kind}",
            SEQ,
            lambda kind=kind: (
                getattr(nn, kind)(
                    FEATURES, HIDDEN, num_layers=2, dropout=LAYER_P, batch_first=True
                ),
                HandStack(getattr(mlx.nn, kind), FEATURES, HIDDEN, LAYER_P),
            ),
            lambda m, x: m(x)[0],
        )
        for kind in ("LSTM", "GRU")
    ),
)


def workload_name(case: LayerCase, mode: str) -> str:
    """``"nn.GRU train"``: one workload per layer and mode (the shape is the row's)."""
    return f"{case.name} {mode}"


LAYER_WORKLOADS = tuple(workload_name(case, mode) for case in CASES for mode in MODES)


def layer_rows(quick: bool, only: list[str] | None = None) -> list[dict]:
    """Result rows (as :func:`bench.measure.result_rows` gives them) of each layer's workloads
    that ``only`` names (all where None): flashdrop's layer and the mlx.nn parts', per mode."""
    rounds = QUICK_ROUNDS if quick else ROUNDS
    rows: list[dict] = []
    for case in CASES:
        names = {mode: workload_name(case, mode) for mode in MODES}
        if only and not any(text in name for name in names.values() for text in only):
            continue
        ours, theirs = case.build()
        x = mx.random.normal(case.shape, key=mx.random.key(0))
        mx.eval(x, ours.parameters(), theirs.parameters())
        for mode, name in names.items():
            ours.train(mode == "train")
            theirs.train(mode == "train")
            contenders = [
                Contender(FD_MLX, f"flashdrop {case.name}", "mlx", _evaluated(case.call, ours, x)),
                Contender(MLX_NN, "mlx.nn parts", "mlx", _evaluated(_plain, theirs, x)),
            ]
            times = time_round_robin(contenders, rounds, warmup_rounds(rounds, quick))
            workload = Workload(name, "layer", case.shape, "float32", ROUNDS, QUICK_ROUNDS)
            labels = {c.key: c.label for c in contenders}
            rows += result_rows(workload, labels, times, None, None)
    return rows


def _plain(module: mlx.nn.Module, x: mx.array) -> mx.array:
    return module(x)


def _evaluated(call: Callable, module: mlx.nn.Module, x: mx.array) -> Callable[[], None]:
    return lambda: mx.eval(call(module, x))
