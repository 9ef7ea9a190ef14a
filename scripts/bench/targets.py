"""The goals flashdrop sets itself, each judged on one run's rows: met, or not met and why.

A goal is a ratio of median times (flashdrop's implementation over a reference, per round) at
most a limit, or, for memory, flashdrop's resident-set growth over many shapes at most
``RSS_LIMIT`` beyond ``mlx.nn.Dropout``'s. Where one is not met, its reason is a known cause
backed by figures of the same run, then the shortfall set against the run's own spread between
rounds: never a bare "not met".
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx

from .figures import duration, mebibytes, ratio
from .layers import CASES, workload_name
from .workloads import (
    DRAWS,
    FD_COMPILED,
    FD_ELEMENT,
    FD_MLX,
    FD_TORCH_MODE,
    MANY_SHAPES,
    MLX_NN,
    MLX_TIMES_2,
    THROUGH_TORCH,
    TORCH,
)

Rows = dict[tuple[str, str], dict]  # the result rows by (workload, impl)


@dataclass(frozen=True)
class Target:
    """time(impl) / time(reference) on ``workload`` at most ``limit``; ``cause`` explains a miss
    (from the run's rows, or None where the figures do not bear it out)."""

    text: str  # the goal in a user's words, without the limit
    workload: str
    impl: str
    reference: str
    limit: float
    cause: Callable[["Target", Rows], str | None] | None = None


# --- known causes -----------------------------------------------------------------------------


def words_from_numpy(target: Target, rows: Rows) -> str:
    return (
        "torch mode draws torch's mt19937 words with numpy's MT19937, then puts them in torch's "
        "order and copies them into MLX; torch fills its tensor in one pass"
    )


def normal_kernel(target: Target, rows: Rows) -> str:
    """randn and normal: the emulated kernel, set against torch-mode rand (the same 1M words)."""
    cause = (
        "torch mode emulates torch's vectorised (AVX2) normal kernel in numpy, its log and "
        "sin/cos polynomials and fused multiply-adds one array operation at a time (about 45 "
        "passes over the output, each fused multiply-add a float64 product and a sum), where "
        "torch makes one pass"
    )
    words = rows.get(("rand 1M", FD_TORCH_MODE))
    drawn = rows[(target.workload, FD_TORCH_MODE)]["median_s"]
    if words is None or words["median_s"] >= drawn:
        return cause
    return (
        f"{cause}; the same words as uniforms (torch-mode rand) took {duration(words['median_s'])}"
        f" of its {duration(drawn)}"
    )


def through_torch(target: Target, rows: Rows) -> str | None:
    """A draw's exact path through torch's own kernel, where the run timed it, and whether it
    would meet the limit (it contains torch's call): said under every miss of a draw."""
    row = rows.get((target.workload, THROUGH_TORCH))
    if row is None:
        return None
    measured = row["ratios"][target.reference]
    verdict = "would not meet the limit either" if measured > target.limit else "would meet it"
    return (
        "drawing through torch's own kernel instead (its generator's state set and read back, "
        f"its output copied into an mx.array) took {duration(row['median_s'])} here, "
        f"{ratio(measured)} torch's call: it {verdict}"
    )


def sequential_shuffle(target: Target, rows: Rows) -> str:
    return (
        "torch shuffles with a sequential Fisher-Yates loop, one swap per element; torch mode "
        "gets the same permutation in numpy, 16,384 steps at a time, with a sort and pointer "
        "doubling: about thirty passes over each block"
    )


def paging_in_the_output(target: Target, rows: Rows) -> str | None:
    """dropout2d at MLX's default cache: when a bare ``x * 2`` already misses the limit."""
    floor = rows.get((target.workload, MLX_TIMES_2))
    if floor is None or floor["ratios"][FD_ELEMENT] <= target.limit:
        return None
    output = math.prod(floor["shape"]) * getattr(mx, floor["dtype"]).size
    cause = (
        f"at MLX's default buffer cache its {mebibytes(output)} output is paged in afresh on "
        f"every call: a bare x * 2 on the same input already takes "
        f"{ratio(floor['ratios'][FD_ELEMENT])} of element dropout's time"
    )
    cached = rows.get((CACHED_CHANNEL, MLX_TIMES_2))
    if cached is None:
        return cause
    return (
        f"{cause}, and {duration(floor['median_s'])} here against {duration(cached['median_s'])}"
        " with the cache at 1 GiB (mx.set_cache_limit)"
    )


def safe_softmax(target: Target, rows: Rows) -> str:
    return (
        "flashdrop keeps torch's softmax, which gives 0 rather than NaN on rows whose scores are "
        "all -inf: a test of every score and two selects that the softmax written by hand skips"
    )


def attention_through_sdpa(target: Target, rows: Rows) -> str:
    """The attention layers in training: their attention is F.scaled_dot_product_attention's."""
    return (
        "the layer attends through F.scaled_dot_product_attention with dropout_p, as torch's "
        "does (need_weights=False), and pays its costs over the mlx.nn parts' softmax: "
        f"{safe_softmax(target, rows)}, and q and k each scaled, as torch's math kernel scales "
        "them"
    )


def why_not_met(target: Target, measured: float, rows: Rows) -> str:
    """The known cause where the run's figures bear one out; a shortfall within the spread of
    the two times between rounds is said to be so, with a rerun to try; one beyond it without a
    known cause asks for a report."""
    over = measured / target.limit - 1
    noise = max(
        (row["q3_s"] - row["q1_s"]) / row["median_s"]
        for row in (rows[(target.workload, target.impl)], rows[(target.workload, target.reference)])
    )
    spread = (
        f"these times' spread between rounds (interquartile range up to {noise:.0%} of the median)"
    )
    cause = target.cause and target.cause(target, rows)
    if over <= noise:
        rerun = (
            f"{over:.1%} over the limit, within {spread}: run "
            f'`--only "{target.workload}"` again on an idle machine'
        )
        return f"{cause}; {rerun}" if cause else rerun
    if cause:
        return cause
    return (
        f"{over:.1%} over the limit, beyond {spread}, with no known cause: please report it "
        "with this output"
    )


# --- the goals --------------------------------------------------------------------------------

CHANNEL = "dropout2d (32,256,64,64) f32"
CACHED_CHANNEL = "dropout2d, MLX cache 1 GiB"
DRAW_CAUSES = {
    "rand": words_from_numpy,
    "randint": words_from_numpy,
    "randn": normal_kernel,
    "normal": normal_kernel,
    "randperm": sequential_shuffle,
}

TARGETS = (
    *(
        Target(f"F.dropout vs mlx.nn.Dropout, {size}", f"dropout {size}", FD_MLX, MLX_NN, 1.0)
        for size in ("4K f32", "64K f32", "1M f32", "16M f32", "16M bf16")
    ),
    Target("F.dropout vs mlx.nn.Dropout, small calls of (32,128) f32",
           "per call (32,128) f32", FD_MLX, MLX_NN, 1.15),
    Target("F.dropout in flashdrop.compile vs mlx.nn.Dropout eager, 16M f32",
           "dropout 16M f32", FD_COMPILED, MLX_NN, 0.85),
    Target("F.dropout in torch mode vs torch's F.dropout, 1M f32",
           "dropout 1M f32", FD_TORCH_MODE, TORCH, 0.65),
    Target("F.dropout in torch mode vs torch's F.dropout, 16M f32",
           "dropout 16M f32", FD_TORCH_MODE, TORCH, 0.65),
    Target("F.dropout vs mlx.nn.Dropout, each call a new shape",
           MANY_SHAPES, FD_MLX, MLX_NN, 1.1),
    Target("F.dropout in torch mode vs torch's F.dropout, 4M f32",
           "dropout 4M f32", FD_TORCH_MODE, TORCH, 0.5),
    *(
        Target(f"flashdrop.{d} in torch mode vs torch.{d}, 1M", f"{d} 1M", FD_TORCH_MODE, TORCH,
               1.0, DRAW_CAUSES.get(d))
        for d in DRAWS
    ),
    Target("F.dropout2d vs F.dropout on the same (32,256,64,64) f32 input",
           CHANNEL, FD_MLX, FD_ELEMENT, 0.3, paging_in_the_output),
    Target("the same, MLX's buffer cache raised to 1 GiB",
           CACHED_CHANNEL, FD_MLX, FD_ELEMENT, 0.3),
    Target("F.scaled_dot_product_attention(dropout_p=0.1) vs by hand, mlx.nn.Dropout",
           "sdpa p=0.1 (8,8,256,64) f32", FD_MLX, MLX_NN, 1.0, safe_softmax),
    Target("F.scaled_dot_product_attention(dropout_p=0) vs mx.fast's",
           "sdpa p=0 (8,8,256,64) f32", FD_MLX, MLX_NN, 1.1),
    *(
        Target(f"{case.name} in {words} vs the same in mlx.nn parts",
               workload_name(case, mode), FD_MLX, MLX_NN, limit,
               attention_through_sdpa if case.attends and mode == "train" else None)
        for case in CASES
        for mode, words, limit in (("train", "training", 1.1), ("eval", "eval", 1.05))
    ),
)  # fmt: skip

RSS_LIMIT = 32 * 2**20  # flashdrop's RSS growth over the many shapes, beyond mlx.nn.Dropout's
MEMORY_TARGET = "memory of F.dropout beyond mlx.nn.Dropout's, each call a new shape"


# --- judging ----------------------------------------------------------------------------------


def judge(target: Target, rows: Rows) -> dict:
    """The target with its measured ratio, ``met`` (None where its workload did not run) and,
    where not met, ``why``."""
    row = rows.get((target.workload, target.impl))
    measured = None if row is None else row["ratios"][target.reference]
    met = None if measured is None else measured <= target.limit
    why = None
    if met is False:
        why = why_not_met(target, measured, rows)
        floor = through_torch(target, rows)  # a draw's: what the exact path through torch took
        why = why if floor is None else f"{why}; {floor}"
    return {
        "text": target.text,
        "workload": target.workload,
        "impl": target.impl,
        "reference": target.reference,
        "unit": "x",
        "limit": target.limit,
        "measured": measured,
        "met": met,
        "why": why,
    }


def judge_memory(memory: dict) -> dict:
    growth = memory["rss_growth_bytes"]
    met = memory["excess_bytes"] <= RSS_LIMIT
    why = None
    if not met:
        why = (
            f"over {memory['shapes']} shapes F.dropout's process grew by "
            f"{mebibytes(growth[FD_MLX])}, mlx.nn.Dropout's by {mebibytes(growth[MLX_NN])}: "
            "no known cause; please report it with this output"
        )
    return {
        "text": MEMORY_TARGET,
        "workload": MANY_SHAPES,
        "impl": FD_MLX,
        "reference": MLX_NN,
        "unit": "bytes",
        "limit": RSS_LIMIT,
        "measured": memory["excess_bytes"],
        "met": met,
        "why": why,
    }


def evaluate_targets(rows: list[dict], memory: dict | None) -> list[dict]:
    """Every target judged on the run's rows, then the memory target where it was measured."""
    by_key = {(r["workload"], r["impl"]): r for r in rows}
    judged = [judge(target, by_key) for target in TARGETS]
    return judged if memory is None else [*judged, judge_memory(memory)]


def figure(value: float, unit: str = "x") -> str:
    """A target's limit or measured value: ``0.98x`` or ``+2.1 MiB``."""
    return mebibytes(value, sign=True) if unit == "bytes" else ratio(value)


def verdict(result: dict) -> str:
    """``met``, ``not met`` or ``not measured in this run``: the reason is ``result["why"]``."""
    if result["met"] is None:
        return "not measured in this run"
    return "met" if result["met"] else "not met"
