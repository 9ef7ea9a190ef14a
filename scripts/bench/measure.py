"""The runs: the memory-copy reference, one workload, the many shapes; each gives result rows.

A result row (one per implementation and workload, as the JSON's "rows" hold them) has the
workload's name, kind, shape and dtype, the implementation's key and label, the rounds, the
median and quartiles of its time, its median per-round ratio to every other implementation of
the workload ("ratios", and the two most read of them apart), its effective bandwidth and that
bandwidth as a fraction of the fastest memory copy.
"""

import gc
import random
import statistics
import time
from collections.abc import Callable

import mlx.core as mx
import numpy as np
import torch

import flashdrop

from .timing import Contender, median_ratio, time_round_robin, warmup_rounds
from .workloads import (
    FD_COMPILED,
    FD_ELEMENT,
    FD_MLX,
    FD_TORCH_MODE,
    KINDS,
    MANY_SHAPES,
    MLX_NN,
    MLX_TIMES_2,
    THROUGH_TORCH,
    TORCH,
    Workload,
    many_shapes,
    many_shapes_contenders,
    many_shapes_count,
)

COPY_ELEMENTS = 1 << 24  # the memory-copy reference: 16M float32, 64 MiB read and 64 MiB written


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


def result_rows(
    workload: Workload,
    labels: dict[str, str],
    times: dict,
    gbps: dict | None,
    copy_gbps: float | None,
) -> list[dict]:
    """One row per implementation (``labels``: key to label, in order) from its ``times``; a
    ratio to mlx.nn or torch is None where that was not timed, the bandwidth where ``gbps`` is
    None (a layer's time is not memory traffic)."""
    rows = []
    for key, label in labels.items():
        median = statistics.median(times[key])
        q1, _, q3 = statistics.quantiles(times[key], n=4)
        rows.append(
            {
                "workload": workload.name,
                "kind": workload.kind,
                "shape": list(workload.shape),
                "dtype": workload.dtype,
                "impl": key,
                "label": label,
                "rounds": len(times[key]),
                "median_s": median,
                "q1_s": q1,
                "q3_s": q3,
                "ratio_vs_mlx_nn": (
                    median_ratio(times[key], times[MLX_NN]) if MLX_NN in times else None
                ),
                "ratio_vs_torch": (
                    median_ratio(times[key], times[TORCH]) if TORCH in times else None
                ),
                "ratios": {k: median_ratio(times[key], v) for k, v in times.items()},
                "gbps": None if gbps is None else gbps[key],
                "fraction_of_copy": None if gbps is None else gbps[key] / copy_gbps,
            }
        )
    return rows


# --- one workload -----------------------------------------------------------------------------


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


def through_torch(
    draw: Callable[[torch.Tensor, torch.Generator], torch.Tensor], t: torch.Tensor
) -> Callable[[], None]:
    """A draw through torch's own kernel, as an exact torch mode would make it with torch
    importable: a generator's state set (here, from the previous call's), the draw, the state
    read back, the result copied into an ``mx.array``. Nothing more (the stream's state kept as
    torch's tensor, never converted): the floor of any such path."""
    generator = torch.Generator()
    state = generator.get_state()

    def call() -> None:
        nonlocal state
        generator.set_state(state)
        out = draw(t, generator)
        state = generator.get_state()
        mx.eval(mx.array(out.numpy()))

    return call


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
    if kind.torch_drawing is not None:
        label = "(torch's kernel, state, copy: floor)"
        call = through_torch(kind.torch_drawing, t)
        contenders.append(Contender(THROUGH_TORCH, label, "mlx", call))
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
    gbps = {key: moved / statistics.median(t) / 1e9 for key, t in times.items()}
    return result_rows(w, {c.key: c.label for c in contenders}, times, gbps, copy_gbps)


# --- the many shapes --------------------------------------------------------------------------


def run_many_shapes(quick: bool, copy_gbps: float) -> list[dict]:
    """One call of each implementation per distinct shape; rows as run_workload's."""
    shapes = many_shapes(many_shapes_count(quick))
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
    # shape: how many shapes, up to 200 x 100; rounds: one per shape.
    workload = Workload(MANY_SHAPES, "element", (len(shapes), 200, 100), "float32", 0, 0)
    gbps = {key: moved / sum(t) / 1e9 for key, t in times.items()}
    labels = {key: label for key, label, _, _ in contenders}
    return result_rows(workload, labels, times, gbps, copy_gbps)
