"""Benchmark flashdrop's dropout against mlx.nn.Dropout and torch's CPU dropout, on one machine;
and flashdrop's other draws (rand, randn, normal, randint, randperm, bernoulli) against torch's.

Run from the repository root (flashdrop, mlx, numpy and torch installed)::

    python scripts/bench.py                    # the full run: a few minutes
    python scripts/bench.py --quick            # fewer rounds, no 16M workloads: well under a minute
    python scripts/bench.py --json out.json    # also write every figure to out.json
    python scripts/bench.py --only sdpa 1M     # only the workloads named with "sdpa" or "1M"
    python scripts/bench.py --markdown docs/performance.md   # the docs' table, from this run
    python scripts/bench.py --from-json out.json --markdown docs/performance.md  # no new run

What is compared on each workload (the table ``WORKLOADS``):

- ``flashdrop-mlx``: ``flashdrop.nn.functional`` in "mlx" random mode, called eagerly;
- ``flashdrop-mlx-compiled``: the same call inside ``flashdrop.compile`` (a fresh mask per call);
- ``mlx.nn``: MLX's own layer as a module in training mode: ``mlx.nn.Dropout``, and for channel
  dropout ``mlx.nn.Dropout2d`` on a channels-last input of the same size, the layout that layer
  expects (MLX has no alpha dropout);
- ``torch``: ``torch.nn.functional``'s function on a CPU tensor, with torch's default threads
  (and ``OMP_WAIT_POLICY=PASSIVE`` unless set otherwise: see the comment at the imports);
- ``flashdrop-torch-mode``: flashdrop in "torch" mode, which emulates torch's CPU mt19937 stream
  on the host with numpy (it cannot be compiled);
- on the attention workloads (``scaled_dot_product_attention`` with q = k = v, all timed the
  same way), ``mlx.nn`` is MLX's own way: with ``dropout_p=0.1``, attention written by hand
  (``q @ k^T * scale``, ``mx.softmax``, ``mlx.nn.Dropout``, ``@ v``); with ``dropout_p=0``,
  ``mx.fast.scaled_dot_product_attention``. Their GB/s count q once and the output once;
- on the channel workloads, ``flashdrop-mlx-element``: flashdrop's element ``F.dropout`` on the
  very same input, the reference of the channel-dropout target; and ``mlx-times-2``, a bare
  ``mx.eval(x * 2)`` on it: one elementwise op writing the output, the floor of channel dropout.

Method:

- Inputs are created and evaluated (``mx.eval``) before any timing. An MLX call is timed as
  ``mx.eval(f(x))``: MLX is lazy, so the evaluation is inside the timed region. torch is eager.
- The implementations of a workload are timed round-robin, one call of each per round, the
  starting one rotating from round to round (A B C, B C A, ...), after warm-up rounds that are
  discarded (they also trace the compiled functions). Each time is the median over rounds.
- A ratio "A vs B" is the median over rounds of ``time(A) / time(B)`` within one round: the two
  sides of every pair were timed moments apart, so the drift of a shared machine cancels. The
  ratios to ``mlx.nn`` and to ``torch`` come from the same rounds as the times.
- Effective bandwidth is (bytes read + bytes written) / median time, counting the input once and
  the output once (the mask is internal). It is set against memory copies of 16M float32 measured
  in the same run: numpy's ``np.copyto`` and torch's ``Tensor.copy_`` into preallocated arrays,
  and MLX's ``mx.eval(x + 0)`` (an MLX elementwise op that, like dropout, allocates its output).
  "% copy" is relative to the fastest of the three, the nearest measured figure to the physical
  limit dropout can approach. Workloads that fit in the CPU caches can beat a copy that does not.
- MLX's allocator keeps freed buffers for reuse only up to its cache limit (the header prints
  it; ``mx.set_cache_limit`` sets it). An MLX output larger than that is paged in afresh on every
  call, which weighs on the 16M and channel workloads; the figures are taken with MLX's default,
  and the channel workload once more with the limit raised to 1 GiB for that workload alone
  (flashdrop never changes the limit: it is the user's global setting). At the default limit a
  bare ``mx.eval(x * 2)`` on the channel input already takes about a third of element dropout's
  time, which bounds the channel ratio from below.
- "many shapes": dropout on 20,000 distinct small shapes (2,000 with --quick), each used once,
  as variable sequence lengths give: one call of each implementation per shape, in an order
  shuffled anew for every shape, the inputs made outside the timed region. Memory: the
  resident set size (RSS) of a fresh process before and after calling one implementation on
  all the shapes, flashdrop's growth set against ``mlx.nn.Dropout``'s (each in its own
  subprocess, so neither inherits the other's allocations).
- Nothing here asserts speed; the "targets" section prints each goal, the measured ratio and
  whether it is met in this run.

``--markdown FILE`` writes the results as Markdown tables, with the machine, the versions and the
date, between the lines ``<!-- bench.py --markdown: begin -->`` and ``<!-- bench.py --markdown:
end -->`` of FILE (the rest of FILE is left as it is; a FILE without those lines is refused, a
missing FILE is created): the documentation's table is always one run's output, never typed in.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

# torch's OpenMP workers spin-wait between parallel regions by default. On a small shared machine
# (2 vCPUs here) that made torch's dropout jump between ~1 ms and ~16 ms at 64K elements from one
# run to the next; sleeping workers give torch its stable, faster figure. Set before torch loads
# OpenMP; an OMP_WAIT_POLICY already in the environment wins, and the header prints it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import mlx.core as mx
import mlx.nn
import numpy as np
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F

P = 0.5  # the dropout probability of every workload
COPY_ELEMENTS = 1 << 24  # the memory-copy reference: 16M float32, 64 MiB read and 64 MiB written

# Implementation keys, as the JSON's "impl" gives them.
FD_MLX = "flashdrop-mlx"
FD_COMPILED = "flashdrop-mlx-compiled"
MLX_NN = "mlx.nn"
TORCH = "torch"
FD_TORCH_MODE = "flashdrop-torch-mode"
FD_ELEMENT = "flashdrop-mlx-element"
MLX_TIMES_2 = "mlx-times-2"


# --- what is measured -------------------------------------------------------------------------


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


ATTENTION_P = 0.1  # dropout_p of the attention workload with dropout


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
        lambda x: flashdrop.rand(x.shape), lambda t: torch.rand(t.shape), "torch.rand", None
    ),
    "randn": Kind(
        lambda x: flashdrop.randn(x.shape), lambda t: torch.randn(t.shape), "torch.randn", None
    ),
    "normal": Kind(
        lambda x: flashdrop.normal(0.0, 0.02, x.shape),
        lambda t: torch.normal(0.0, 0.02, t.shape),
        "torch.normal",
        None,
    ),
    "randint": Kind(
        lambda x: flashdrop.randint(0, 50257, x.shape),
        lambda t: torch.randint(0, 50257, t.shape),
        "torch.randint",
        None,
    ),
    "randperm": Kind(
        lambda x: flashdrop.randperm(x.size),
        lambda t: torch.randperm(t.numel()),
        "torch.randperm",
        None,
    ),
    "bernoulli": Kind(
        flashdrop.bernoulli, torch.bernoulli, "torch.bernoulli", None, uniform_input=True
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


@dataclass(frozen=True)
class Target:
    """A goal of the issue: time(impl) / time(reference) on ``workload`` at most ``limit``."""

    text: str
    workload: str
    impl: str
    reference: str
    limit: float


MANY_SHAPES = "many shapes f32"
MANY_SHAPES_COUNT = 20_000  # distinct shapes; a tenth with --quick
MANY_SHAPES_RSS_LIMIT = 32 * 2**20  # flashdrop's RSS growth over mlx.nn.Dropout's, at most


def many_shapes(count: int) -> list[tuple[int, int]]:
    """``count`` distinct small 2-D shapes, at most 200 x 100, in a fixed shuffled order."""
    shapes = [(1 + i // 100, 1 + i % 100) for i in range(count)]
    order = np.random.default_rng(0).permutation(count)
    return [shapes[i] for i in order]


TARGETS = (
    *(
        Target(f"mlx eager <= 1.0x mlx.nn.Dropout, {size}", f"dropout {size}", FD_MLX, MLX_NN, 1.0)
        for size in ("4K f32", "64K f32", "1M f32", "16M f32", "16M bf16")
    ),
    Target("mlx eager per call <= 1.15x mlx.nn.Dropout, (32,128) f32",
           "per call (32,128) f32", FD_MLX, MLX_NN, 1.15),
    Target("compiled <= 0.85x eager mlx.nn.Dropout, 16M f32",
           "dropout 16M f32", FD_COMPILED, MLX_NN, 0.85),
    Target("torch mode <= 0.65x torch F.dropout, 1M f32",
           "dropout 1M f32", FD_TORCH_MODE, TORCH, 0.65),
    Target("torch mode <= 0.65x torch F.dropout, 16M f32",
           "dropout 16M f32", FD_TORCH_MODE, TORCH, 0.65),
    Target("many shapes: mlx eager per call <= 1.1x mlx.nn.Dropout",
           MANY_SHAPES, FD_MLX, MLX_NN, 1.1),
    Target("torch mode <= 0.5x torch F.dropout, 4M f32",
           "dropout 4M f32", FD_TORCH_MODE, TORCH, 0.5),
    *(
        Target(f"torch mode {d} <= 1.0x torch.{d}, 1M", f"{d} 1M", FD_TORCH_MODE, TORCH, 1.0)
        for d in DRAWS
    ),
    Target("dropout2d <= 0.3x element dropout on the same input",
           "dropout2d (32,256,64,64) f32", FD_MLX, FD_ELEMENT, 0.3),
    Target("  the same, MLX buffer cache 1 GiB (this workload only)",
           "dropout2d, MLX cache 1 GiB", FD_MLX, FD_ELEMENT, 0.3),
    Target("sdpa dropout_p=0.1 <= 1.0x by hand with mlx.nn.Dropout",
           "sdpa p=0.1 (8,8,256,64) f32", FD_MLX, MLX_NN, 1.0),
    Target("sdpa dropout_p=0 <= 1.1x mx.fast.scaled_dot_product_attention",
           "sdpa p=0 (8,8,256,64) f32", FD_MLX, MLX_NN, 1.1),
)  # fmt: skip


# --- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One implementation on one workload: a call without arguments, timed as a whole."""

    key: str
    label: str
    mode: str  # flashdrop's random mode while it runs, set outside the timed region
    call: Callable[[], object]


def time_round_robin(contenders: list[Contender], rounds: int, warmup: int) -> dict:
    """Seconds per call of each contender, one list entry per round, rounds in step.

    Each round calls every contender once, starting one further along the list each round; the
    first ``warmup`` rounds are discarded. The garbage collector is paused while timing, so that
    a collection does not land on one side of a pair.
    """
    times: dict[str, list[float]] = {c.key: [] for c in contenders}
    gc.collect()
    gc.disable()
    try:
        for r in range(warmup + rounds):
            start = r % len(contenders)
            for c in contenders[start:] + contenders[:start]:
                flashdrop.set_rng_mode(c.mode)
                t0 = time.perf_counter()
                c.call()
                elapsed = time.perf_counter() - t0
                if r >= warmup:
                    times[c.key].append(elapsed)
    finally:
        gc.enable()
        flashdrop.set_rng_mode("mlx")
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median over rounds of a[i] / b[i], each pair timed in the same round."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def warmup_rounds(rounds: int, quick: bool) -> int:
    """A tenth of the timed rounds, at least 2 (1 with --quick): enough to trace and allocate."""
    return max(1 if quick else 2, rounds // 10)


# --- the copy reference -----------------------------------------------------------------------


def measure_copies(quick: bool) -> dict:
    """GB/s of three copies of 16M float32 (64 MiB read + 64 MiB written), timed round-robin."""
    src = np.random.default_rng(0).standard_normal(COPY_ELEMENTS, dtype=np.float32)
    dst = np.empty_like(src)
    t_src, t_dst = torch.from_numpy(src.copy()), torch.empty(COPY_ELEMENTS)
    x = mx.array(src)
    mx.eval(x)
    contenders = [
        Contender("numpy np.copyto", "", "mlx", lambda: np.copyto(dst, src)),
        Contender("torch Tensor.copy_", "", "mlx", lambda: t_dst.copy_(t_src)),
        Contender("mlx mx.eval(x + 0)", "", "mlx", lambda: mx.eval(x + 0)),
    ]
    rounds = 5 if quick else 21
    times = time_round_robin(contenders, rounds, warmup_rounds(rounds, quick))
    moved = 2 * src.nbytes
    return {name: moved / statistics.median(t) / 1e9 for name, t in times.items()}


# --- running a workload -----------------------------------------------------------------------


def make_inputs(w: Workload) -> tuple[mx.array, mx.array, torch.Tensor]:
    """The MLX input, its channels-last counterpart for MLX's layer, and the torch input."""
    dtype = getattr(mx, w.dtype)
    if KINDS[w.kind].uniform_input:
        x = mx.random.uniform(shape=w.shape, dtype=dtype, key=mx.random.key(0))
        t = torch.rand(w.shape, generator=torch.Generator().manual_seed(0))
        mx.eval(x)
        return x, x, t.to(getattr(torch, w.dtype))
    x = mx.random.normal(w.shape, dtype=dtype, key=mx.random.key(0))
    x_for_layer = x
    if KINDS[w.kind].channels_last:
        n, c, h, wd = w.shape
        x_for_layer = mx.random.normal((n, h, wd, c), dtype=dtype, key=mx.random.key(1))
    mx.eval(x, x_for_layer)
    generator = torch.Generator().manual_seed(0)
    t = torch.randn(w.shape, generator=generator, dtype=getattr(torch, w.dtype))
    return x, x_for_layer, t


def evaluated(fn: Callable[[mx.array], mx.array], x: mx.array) -> Callable[[], None]:
    """A call of ``fn(x)`` that evaluates its result: MLX is lazy."""
    return lambda: mx.eval(fn(x))


def double(x: mx.array) -> mx.array:
    return x * 2


def make_contenders(w: Workload, x: mx.array, x_for_layer: mx.array, t: torch.Tensor) -> list:
    kind = KINDS[w.kind]
    contenders = [
        Contender(FD_MLX, "flashdrop mlx eager", "mlx", evaluated(kind.flashdrop, x)),
        Contender(
            FD_COMPILED,
            "flashdrop mlx compiled",
            "mlx",
            evaluated(flashdrop.compile(kind.flashdrop), x),
        ),
    ]
    if kind.mlx_nn is not None:
        layer = kind.mlx_nn()
        layer.train()
        contenders.append(
            Contender(MLX_NN, kind.mlx_nn_label, "mlx", evaluated(layer, x_for_layer))
        )
    contenders += [
        Contender(TORCH, kind.torch_label, "mlx", lambda: kind.torch(t)),
        Contender(FD_TORCH_MODE, "flashdrop torch mode", "torch", evaluated(kind.flashdrop, x)),
    ]
    if w.kind == "channel":
        element = KINDS["element"].flashdrop
        label = "(flashdrop mlx F.dropout, element)"
        contenders.append(Contender(FD_ELEMENT, label, "mlx", evaluated(element, x)))
        times_2 = Contender(MLX_TIMES_2, "(mlx x * 2: the floor)", "mlx", evaluated(double, x))
        contenders.append(times_2)
    return contenders


def run_workload(w: Workload, quick: bool, copy_gbps: float) -> list[dict]:
    """Time every contender on ``w``; one result row per contender."""
    rounds = w.rounds_for(quick)
    x, x_for_layer, t = make_inputs(w)
    contenders = make_contenders(w, x, x_for_layer, t)
    previous_limit = None if w.mlx_cache_limit is None else mx.set_cache_limit(w.mlx_cache_limit)
    try:
        times = time_round_robin(contenders, rounds, warmup_rounds(rounds, quick))
    finally:
        if previous_limit is not None:
            mx.set_cache_limit(previous_limit)
            mx.clear_cache()
    moved = 2 * x.nbytes  # the input read once, the output written once
    rows = []
    for c in contenders:
        median = statistics.median(times[c.key])
        q1, _, q3 = statistics.quantiles(times[c.key], n=4)
        gbps = moved / median / 1e9
        rows.append(
            {
                "workload": w.name,
                "kind": w.kind,
                "shape": list(w.shape),
                "dtype": w.dtype,
                "impl": c.key,
                "label": c.label,
                "rounds": rounds,
                "median_s": median,
                "q1_s": q1,
                "q3_s": q3,
                "ratio_vs_mlx_nn": (
                    median_ratio(times[c.key], times[MLX_NN]) if MLX_NN in times else None
                ),
                "ratio_vs_torch": median_ratio(times[c.key], times[TORCH]),
                "ratios": {k: median_ratio(times[c.key], v) for k, v in times.items()},
                "gbps": gbps,
                "fraction_of_copy": gbps / copy_gbps,
            }
        )
    return rows


def many_shapes_contenders() -> list[tuple[str, str, str, Callable]]:
    """(key, label, mode, call) of the implementations on the many-shapes workload."""
    layer = mlx.nn.Dropout(P)
    return [
        (FD_MLX, "flashdrop mlx eager", "mlx", lambda x, t: mx.eval(F.dropout(x, P))),
        (MLX_NN, "mlx.nn.Dropout", "mlx", lambda x, t: mx.eval(layer(x))),
        (TORCH, "torch F.dropout", "mlx", lambda x, t: TF.dropout(t, P, training=True)),
        (FD_TORCH_MODE, "flashdrop torch mode", "torch", lambda x, t: mx.eval(F.dropout(x, P))),
    ]


def run_many_shapes(quick: bool, copy_gbps: float) -> list[dict]:
    """One call of each implementation per distinct shape, round-robin; rows as run_workload's."""
    shapes = many_shapes(MANY_SHAPES_COUNT // (10 if quick else 1))
    contenders = many_shapes_contenders()
    times: dict[str, list[float]] = {key: [] for key, *_ in contenders}
    moved = 0
    order = random.Random(0)
    gc.collect()
    gc.disable()
    try:
        for shape in shapes:
            x = mx.ones(shape)
            mx.eval(x)
            t = torch.ones(shape)
            moved += 2 * x.nbytes
            # A shuffled order each round: what runs just before a call weighs on it (after a
            # torch-mode call, the next MLX call of any kind is measured ~1.8x slower here),
            # and a rotation would put the same predecessor before one contender most rounds.
            for key, _, mode, call in order.sample(contenders, len(contenders)):
                flashdrop.set_rng_mode(mode)
                t0 = time.perf_counter()
                call(x, t)
                times[key].append(time.perf_counter() - t0)
    finally:
        gc.enable()
        flashdrop.set_rng_mode("mlx")
    rows = []
    for key, label, _, _ in contenders:
        median = statistics.median(times[key])
        q1, _, q3 = statistics.quantiles(times[key], n=4)
        gbps = moved / sum(times[key]) / 1e9
        rows.append(
            {
                "workload": MANY_SHAPES,
                "kind": "element",
                "shape": [len(shapes), 200, 100],  # how many shapes, up to 200 x 100
                "dtype": "float32",
                "impl": key,
                "label": label,
                "rounds": len(shapes),
                "median_s": median,
                "q1_s": q1,
                "q3_s": q3,
                "ratio_vs_mlx_nn": median_ratio(times[key], times[MLX_NN]),
                "ratio_vs_torch": median_ratio(times[key], times[TORCH]),
                "ratios": {k: median_ratio(times[key], v) for k, v in times.items()},
                "gbps": gbps,
                "fraction_of_copy": gbps / copy_gbps,
            }
        )
    return rows


def rss_bytes() -> int:
    """The resident set size now (Linux), or its peak where /proc is missing (macOS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def many_shapes_memory_worker(impl: str, count: int) -> dict:
    """In a fresh process: RSS before and after ``impl`` runs once on each of ``count`` shapes.

    "Before" is taken after a warm-up on 20 other shapes (imports, first allocations).
    """
    call = {key: c for key, _, _, c in many_shapes_contenders()}[impl]
    for n in range(20):
        call(mx.ones((300, n + 1)), None)
    gc.collect()
    before = rss_bytes()
    for shape in many_shapes(count):
        call(mx.ones(shape), None)
    gc.collect()
    return {"impl": impl, "shapes": count, "rss_before": before, "rss_after": rss_bytes()}


def measure_many_shapes_memory(quick: bool) -> dict:
    """RSS growth of flashdrop and of mlx.nn.Dropout over the many shapes, each in a fresh
    process; ``met`` when flashdrop's is at most mlx.nn's plus MANY_SHAPES_RSS_LIMIT."""
    count = MANY_SHAPES_COUNT // (10 if quick else 1)
    growth = {}
    for impl in (FD_MLX, MLX_NN):
        done = subprocess.run(
            [sys.executable, __file__, "--many-shapes-memory", impl, str(count)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        growth[impl] = result["rss_after"] - result["rss_before"]
    excess = growth[FD_MLX] - growth[MLX_NN]
    return {
        "shapes": count,
        "rss_growth_bytes": growth,
        "excess_bytes": excess,
        "limit_bytes": MANY_SHAPES_RSS_LIMIT,
        "met": excess <= MANY_SHAPES_RSS_LIMIT,
    }


def evaluate_targets(rows: list[dict]) -> list[dict]:
    """Each target with its measured ratio; ``met`` is None where its workload was skipped."""
    by_key = {(r["workload"], r["impl"]): r for r in rows}
    results = []
    for target in TARGETS:
        row = by_key.get((target.workload, target.impl))
        measured = row["ratios"][target.reference] if row else None
        met = None if measured is None else measured <= target.limit
        results.append({**asdict(target), "measured": measured, "met": met})
    return results


# --- reporting --------------------------------------------------------------------------------


def mlx_cache_limit() -> int:
    """MLX's buffer-cache limit in bytes: freed buffers above it go back to the OS.

    MLX has no getter; ``set_cache_limit`` returns the previous limit, which is set back at once.
    """
    limit = mx.set_cache_limit(mx.get_memory_limit())
    mx.set_cache_limit(limit)
    return limit


def machine_info() -> dict:
    """The machine and versions; call it first, before MLX has cached any buffer."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "mlx_device": str(mx.default_device()),
        "mlx_cache_limit_bytes": mlx_cache_limit(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "numpy": np.__version__,
        "flashdrop": flashdrop.__version__,
    }


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.2f} ms"


def format_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def print_report(report: dict) -> None:
    m = report["machine"]
    quick = " --quick" * report["quick"]
    print(f"flashdrop {m['flashdrop']} dropout benchmark (p = {P} but where named){quick}")
    print(f"machine: {m['platform']}, {m['machine']}, {m['cpu_count']} CPUs, python {m['python']}")
    print(
        f"mlx {m['mlx']} on {m['mlx_device']} (buffer cache limit "
        f"{m['mlx_cache_limit_bytes'] / 2**20:.0f} MiB), torch {m['torch']} "
        f"({m['torch_threads']} threads, OMP_WAIT_POLICY={m['omp_wait_policy']}), "
        f"numpy {m['numpy']}"
    )
    copies = report["copy_gbps"]
    print("memory copy, 16M float32 (64 MiB read + 64 MiB written): " + ", ".join(
        f"{name} {gbps:.1f} GB/s" for name, gbps in copies.items()
    ))  # fmt: skip
    print(f"'% copy' is relative to the fastest, {report['copy_reference']}.")
    print("time: median over rounds; ratios: median of per-round ratios (the lower, the faster)")
    print()

    header = (
        f"{'workload':<30} {'implementation':<36} {'median':>11} {'vs mlx.nn':>9} "
        f"{'vs torch':>8} {'GB/s':>7} {'% copy':>6} {'IQR%':>5}"
    )
    print(header)
    print("-" * len(header))
    previous = None
    for r in report["rows"]:
        if previous is not None and r["workload"] != previous:
            print()
        name = r["workload"] if r["workload"] != previous else ""
        previous = r["workload"]
        spread = 100 * (r["q3_s"] - r["q1_s"]) / r["median_s"]
        print(
            f"{name:<30} {r['label']:<36} {format_time(r['median_s']):>11} "
            f"{format_ratio(r['ratio_vs_mlx_nn']):>9} {format_ratio(r['ratio_vs_torch']):>8} "
            f"{r['gbps']:7.2f} {100 * r['fraction_of_copy']:5.0f}% {spread:4.0f}%"
        )
    memory = report["many_shapes_memory"]
    if memory is not None:
        growth = {k: v / 2**20 for k, v in memory["rss_growth_bytes"].items()}
        print()
        print(
            f"memory over {memory['shapes']} distinct shapes (RSS growth, each in a fresh "
            "process): " + ", ".join(f"{k} {v:+.1f} MiB" for k, v in growth.items())
        )
    print()
    print("targets (from the issue; reported, never asserted)")
    for t in report["targets"]:
        if t["met"] is None:
            measured, status = "-", "not measured in this run"
        else:
            measured, status = f"{t['measured']:.2f}x", "met" if t["met"] else "NOT MET"
        print(f"  {t['text']:<58} limit {t['limit']:.2f}x  measured {measured:>6}  {status}")
    if memory is None:
        return
    excess = memory["excess_bytes"] / 2**20
    limit = memory["limit_bytes"] / 2**20
    status = "met" if memory["met"] else "NOT MET"
    print(
        f"  {'many shapes: RSS growth <= mlx.nn.Dropout + 32 MiB':<58} "
        f"excess {excess:+.1f} MiB (limit {limit:.0f} MiB)  {status}"
    )


# --- Markdown ---------------------------------------------------------------------------------

MARKDOWN_BEGIN = "<!-- bench.py --markdown: begin -->"
MARKDOWN_END = "<!-- bench.py --markdown: end -->"

# The table's columns: implementation key, title, and the key its ratio in parentheses is to.
MARKDOWN_COLUMNS = (
    (FD_MLX, "flashdrop mlx eager", MLX_NN),
    (FD_COMPILED, "flashdrop compiled", MLX_NN),
    (MLX_NN, "`mlx.nn`", None),
    (TORCH, "torch CPU", None),
    (FD_TORCH_MODE, "flashdrop torch mode", TORCH),
    (FD_ELEMENT, "element dropout, same input", None),
    (MLX_TIMES_2, "`x * 2`, same input", None),
)


def _markdown_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    return f"{seconds * 1e3:.3g} ms"


def markdown_report(report: dict) -> str:
    """The report as Markdown: how and where it was measured, the times, the targets."""
    m = report["machine"]
    run = (
        "a --quick run: few rounds, no 16M workloads, not a measurement to quote"
        if report["quick"]
        else f"a full run, {report['total_s']:.0f} s"
    )
    lines = [
        f"Measured {report['date']} by `python scripts/bench.py --markdown` ({run}), p = "
        f"{report['p']}, on {m['platform']} ({m['machine']}, {m['cpu_count']} CPUs), Python "
        f"{m['python']}, mlx {m['mlx']} on {m['mlx_device']} (buffer cache limit "
        f"{m['mlx_cache_limit_bytes'] / 2**20:.0f} MiB), torch {m['torch']} "
        f"({m['torch_threads']} threads, OMP_WAIT_POLICY={m['omp_wait_policy']}), numpy "
        f"{m['numpy']}, flashdrop {m['flashdrop']}. Memory copy of 16M float32: "
        + ", ".join(f"{name} {gbps:.1f} GB/s" for name, gbps in report["copy_gbps"].items())
        + ".",
        "",
        "Median time per call; in parentheses, the median of per-round ratios to the column "
        "named: flashdrop's mlx mode to `mlx.nn`, its torch mode to torch.",
        "",
    ]
    by_workload: dict[str, dict[str, dict]] = {}
    for row in report["rows"]:
        by_workload.setdefault(row["workload"], {})[row["impl"]] = row
    columns = [c for c in MARKDOWN_COLUMNS if any(c[0] in w for w in by_workload.values())]
    lines.append("| workload | " + " | ".join(title for _, title, _ in columns) + " |")
    lines.append("| --- " * (len(columns) + 1) + "|")
    for workload, rows in by_workload.items():
        cells = []
        for key, _, reference in columns:
            row = rows.get(key)
            if row is None:
                cells.append("-")
                continue
            cell = _markdown_time(row["median_s"])
            if reference is not None and reference in row["ratios"]:
                cell += f" ({row['ratios'][reference]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    lines += ["", "| target | limit | measured | met |", "| --- | --- | --- | --- |"]
    for t in report["targets"]:
        if t["met"] is None:
            measured, met = "-", "not measured"
        else:
            measured, met = f"{t['measured']:.2f}x", "yes" if t["met"] else "**no**"
        lines.append(f"| {t['text'].strip()} | {t['limit']:.2f}x | {measured} | {met} |")
    memory = report.get("many_shapes_memory")
    if memory is not None:
        growth = ", ".join(
            f"{impl} {size / 2**20:+.1f} MiB" for impl, size in memory["rss_growth_bytes"].items()
        )
        met = "yes" if memory["met"] else "**no**"
        lines.append(
            f"| many shapes: RSS growth <= mlx.nn.Dropout + 32 MiB "
            f"({memory['shapes']} shapes: {growth}) | +32 MiB | "
            f"{memory['excess_bytes'] / 2**20:+.1f} MiB | {met} |"
        )
    return "\n".join(lines) + "\n"


def markdown_slot(path: str) -> tuple[str, str]:
    """What ``path`` holds before and after its markers ("" and "\\n" for a missing file).

    Raises:
        ValueError: ``path`` exists but lacks the two marker lines, in that order.
    """
    if not os.path.exists(path):
        return "", "\n"
    with open(path) as f:
        text = f.read()
    begin, end = text.find(MARKDOWN_BEGIN), text.find(MARKDOWN_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f"{path} has no {MARKDOWN_BEGIN!r} ... {MARKDOWN_END!r} lines to write between"
        )
    return text[:begin], text[end + len(MARKDOWN_END) :]


def write_markdown(path: str, report: dict) -> None:
    """Put the Markdown report between the markers of ``path``, or create ``path`` with them."""
    before, after = markdown_slot(path)
    with open(path, "w") as f:
        f.write(f"{before}{MARKDOWN_BEGIN}\n{markdown_report(report)}{MARKDOWN_END}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, no 16M workloads")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument(
        "--only", metavar="TEXT", nargs="+", help="only the workloads whose name has a TEXT"
    )
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the results as Markdown tables between the bench.py markers of FILE",
    )
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="run nothing: take the results of an earlier --json FILE (with --markdown)",
    )
    parser.add_argument(
        "--many-shapes-memory", nargs=2, metavar=("IMPL", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.many_shapes_memory:  # the worker measure_many_shapes_memory starts
        impl, count = args.many_shapes_memory
        print(json.dumps(many_shapes_memory_worker(impl, int(count))))
        return 0
    if args.markdown:
        try:
            markdown_slot(args.markdown)  # refused now, not after the run
        except ValueError as error:
            parser.error(str(error))
    if args.from_json:
        if not args.markdown:
            parser.error("--from-json needs --markdown")
        with open(args.from_json) as f:
            write_markdown(args.markdown, json.load(f))
        return 0

    machine = machine_info()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flashdrop.set_rng_mode("mlx")
    flashdrop.manual_seed(0)
    started = time.perf_counter()
    copies = measure_copies(args.quick)
    reference = max(copies, key=copies.get)
    rows: list[dict] = []
    for w in WORKLOADS:
        rounds = w.rounds_for(args.quick)
        if rounds == 0 or (args.only and not any(text in w.name for text in args.only)):
            continue
        t0 = time.perf_counter()
        rows += run_workload(w, args.quick, copies[reference])
        print(f"  {w.name}: {rounds} rounds, {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    memory = None
    if not args.only or any(text in MANY_SHAPES for text in args.only):
        t0 = time.perf_counter()
        rows += run_many_shapes(args.quick, copies[reference])
        memory = measure_many_shapes_memory(args.quick)
        print(f"  {MANY_SHAPES}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    report = {
        "date": date,
        "machine": machine,
        "quick": args.quick,
        "p": P,
        "copy_gbps": copies,
        "copy_reference": reference,
        "rows": rows,
        "targets": evaluate_targets(rows),
        "many_shapes_memory": memory,
        "total_s": time.perf_counter() - started,
    }
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        write_markdown(args.markdown, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
