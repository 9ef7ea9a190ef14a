"""What is compared, and on what: the kinds of dropout and draws, and the workloads."""

from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn
import numpy as np
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F

P = 0.5  # the dropout probability of every workload
ATTENTION_P = 0.1  # dropout_p of the attention workload with dropout

# Implementation keys, as the JSON's "impl" gives them.
FD_MLX = "flashdrop-mlx"
FD_COMPILED = "flashdrop-mlx-compiled"
MLX_NN = "mlx.nn"
TORCH = "torch"
FD_TORCH_MODE = "flashdrop-torch-mode"
THROUGH_TORCH = "through-torch"  # torch's own kernel, generator state in and out, copied to MLX
FD_ELEMENT = "flashdrop-mlx-element"
MLX_TIMES_2 = "mlx-times-2"


@dataclass(frozen=True)
class Kind:
    """One kind of dropout, as flashdrop, torch and mlx.nn perform it."""

    flashdrop: Callable[[mx.array], mx.array]
    torch: Callable[[torch.Tensor], torch.Tensor]
    torch_label: str
    mlx_nn: Callable[[], mlx.nn.Module] | None  # builds MLX's layer; None where MLX has none
    mlx_nn_label: str = ""
    channels_last: bool = False  # MLX's layer expects (N, H, W, C) rather than (N, C, H, W)
    uniform_input: bool = False  # inputs in [0, 1) (probabilities) rather than normal values
    # torch's call drawing from a given generator: a draw's exact path through torch's own
    # kernel (bench.measure.through_torch); None where torch's function takes no generator.
    torch_drawing: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None


class HandWrittenAttention(mlx.nn.Module):
    """Attention as one writes it in MLX: scores, softmax, ``mlx.nn.Dropout``, weighted sum."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.dropout = mlx.nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        scores = (x @ x.swapaxes(-1, -2)) * (x.shape[-1] ** -0.5)
        return self.dropout(mx.softmax(scores, axis=-1)) @ x


class FastAttention(mlx.nn.Module):
    """``mx.fast.scaled_dot_product_attention`` (no dropout)."""

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.scaled_dot_product_attention(x, x, x, scale=x.shape[-1] ** -0.5)


KINDS = {
    "element": Kind(
        flashdrop=lambda x: F.dropout(x, P),
        torch=lambda t: TF.dropout(t, P, training=True),
        torch_label="torch F.dropout",
        mlx_nn=lambda: mlx.nn.Dropout(P),
        mlx_nn_label="mlx.nn.Dropout",
    ),
    "channel": Kind(
        flashdrop=lambda x: F.dropout2d(x, P),
        torch=lambda t: TF.dropout2d(t, P, training=True),
        torch_label="torch F.dropout2d",
        mlx_nn=lambda: mlx.nn.Dropout2d(P),
        mlx_nn_label="mlx.nn.Dropout2d (NHWC)",
        channels_last=True,
    ),
    "alpha": Kind(
        flashdrop=lambda x: F.alpha_dropout(x, P, training=True),
        torch=lambda t: TF.alpha_dropout(t, P, training=True),
        torch_label="torch F.alpha_dropout",
        mlx_nn=None,
    ),
    # torch's other draws (flashdrop.rand, ...): the input gives the shape (bernoulli: the
    # probabilities); torch's call is the reference of the torch-mode draw.
    "rand": Kind(
        lambda x: flashdrop.rand(x.shape),
        lambda t: torch.rand(t.shape),
        "torch.rand",
        None,
        torch_drawing=lambda t, g: torch.rand(t.shape, generator=g),
    ),
    "randn": Kind(
        lambda x: flashdrop.randn(x.shape),
        lambda t: torch.randn(t.shape),
        "torch.randn",
        None,
        torch_drawing=lambda t, g: torch.randn(t.shape, generator=g),
    ),
    "normal": Kind(
        lambda x: flashdrop.normal(0.0, 0.02, x.shape),
        lambda t: torch.normal(0.0, 0.02, t.shape),
        "torch.normal",
        None,
        torch_drawing=lambda t, g: torch.normal(0.0, 0.02, t.shape, generator=g),
    ),
    "randint": Kind(
        lambda x: flashdrop.randint(0, 50257, x.shape),
        lambda t: torch.randint(0, 50257, t.shape),
        "torch.randint",
        None,
        torch_drawing=lambda t, g: torch.randint(0, 50257, t.shape, generator=g),
    ),
    "randperm": Kind(
        lambda x: flashdrop.randperm(x.size),
        lambda t: torch.randperm(t.numel()),
        "torch.randperm",
        None,
        torch_drawing=lambda t, g: torch.randperm(t.numel(), generator=g),
    ),
    "bernoulli": Kind(
        flashdrop.bernoulli,
        torch.bernoulli,
        "torch.bernoulli",
        None,
        uniform_input=True,
        torch_drawing=lambda t, g: torch.bernoulli(t, generator=g),
    ),
    "attention": Kind(
        flashdrop=lambda x: F.scaled_dot_product_attention(x, x, x, dropout_p=ATTENTION_P),
        torch=lambda t: TF.scaled_dot_product_attention(t, t, t, dropout_p=ATTENTION_P),
        torch_label="torch F.sdpa",
        mlx_nn=lambda: HandWrittenAttention(ATTENTION_P),
        mlx_nn_label="by hand, mlx.nn.Dropout",
    ),
    "attention-no-dropout": Kind(
        flashdrop=lambda x: F.scaled_dot_product_attention(x, x, x),
        torch=lambda t: TF.scaled_dot_product_attention(t, t, t),
        torch_label="torch F.sdpa",
        mlx_nn=FastAttention,
        mlx_nn_label="mx.fast.sdpa",
    ),
}
DRAWS = ("rand", "randn", "normal", "randint", "randperm", "bernoulli")


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # a key of KINDS
    shape: tuple[int, ...]
    dtype: str  # "float32" or "bfloat16"
    rounds: int  # timed rounds in a full run
    quick_rounds: int  # timed rounds with --quick; 0 skips the workload
    mlx_cache_limit: int | None = None  # bytes: mx.set_cache_limit for this workload only

    def rounds_for(self, quick: bool) -> int:
        return self.quick_rounds if quick else self.rounds


# Rounds are sized so that each workload takes seconds on a 2-core machine.
WORKLOADS = (
    Workload("dropout 4K f32", "element", (1 << 12,), "float32", 400, 40),
    Workload("dropout 64K f32", "element", (1 << 16,), "float32", 200, 20),
    Workload("dropout 1M f32", "element", (1 << 20,), "float32", 41, 7),
    Workload("dropout 16M f32", "element", (1 << 24,), "float32", 15, 0),
    Workload("dropout 16M bf16", "element", (1 << 24,), "bfloat16", 11, 0),
    Workload("dropout2d (32,256,64,64) f32", "channel", (32, 256, 64, 64), "float32", 11, 2),
    Workload("dropout2d, MLX cache 1 GiB", "channel", (32, 256, 64, 64), "float32", 11, 2, 1 << 30),
    Workload("alpha_dropout 1M f32", "alpha", (1 << 20,), "float32", 41, 7),
    Workload("per call (32,128) f32", "element", (32, 128), "float32", 3000, 300),
    Workload("dropout 4M f32", "element", (1 << 22,), "float32", 21, 3),
    *(Workload(f"{draw} 1M", draw, (1 << 20,), "float32", 11, 2) for draw in DRAWS),
    Workload("sdpa p=0.1 (8,8,256,64) f32", "attention", (8, 8, 256, 64), "float32", 21, 3),
    Workload(
        "sdpa p=0 (8,8,256,64) f32", "attention-no-dropout", (8, 8, 256, 64), "float32", 21, 3
    ),
)

MANY_SHAPES = "many shapes f32"
MANY_SHAPES_COUNT = 20_000  # distinct shapes; a tenth with --quick


def many_shapes_count(quick: bool) -> int:
    return MANY_SHAPES_COUNT // (10 if quick else 1)


def many_shapes(count: int) -> list[tuple[int, int]]:
    """``count`` distinct small 2-D shapes, at most 200 x 100, in a fixed shuffled order."""
    shapes = [(1 + i // 100, 1 + i % 100) for i in range(count)]
    order = np.random.default_rng(0).permutation(count)
    return [shapes[i] for i in order]


def many_shapes_contenders() -> list[tuple[str, str, str, Callable]]:
    """(key, label, mode, call) of the implementations on the many-shapes workload; each call
    takes the MLX input and the torch input of one shape."""
    layer = mlx.nn.Dropout(P)
    return [
        (FD_MLX, "flashdrop mlx eager", "mlx", lambda x, t: mx.eval(F.dropout(x, P))),
        (MLX_NN, "mlx.nn.Dropout", "mlx", lambda x, t: mx.eval(layer(x))),
        (TORCH, "torch F.dropout", "mlx", lambda x, t: TF.dropout(t, P, training=True)),
        (FD_TORCH_MODE, "flashdrop torch mode", "torch", lambda x, t: mx.eval(F.dropout(x, P))),
    ]
