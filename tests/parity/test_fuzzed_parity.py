"""Torch mode, fuzzed: random sequences of calls, each compared with real torch bit for bit.

Hypothesis draws a seed and a few steps. A step is one of the six functions or modules, an
input of any rank from 0 to 6 (0-size axes included; torch decides which ranks are errors), a
dtype, a p (exactly 0 and 1, subnormal distances from 0 and 1, ordinary values, a few invalid
ones), ``inplace``, ``training``, and 1 to 3 consecutive calls on the same input. Both sides start
from the same seed, flashdrop in torch mode, and after every call must agree on: the exception
(type and message) or the output's bits, the warnings (category and text), whether the output
is the input itself, and the input afterwards (untouched, or overwritten in place). At the end
the two generators' states must be equal byte for byte: the same number of draws, even where a
call failed.

Deterministic: a fixed derandomized search, no example database, no deadline.
"""

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat, nn
from tests._support.bits import assert_same_bits, sample_input
from tests._support.names import MODULE_OF
from tests._support.outcome import assert_same_outcome, outcome
from tests.parity.test_bitexact import DTYPES, SHAPES

FUNCTIONS = list(SHAPES)  # the six of torch.nn.functional
SMALLEST_NORMAL = 2.2250738585072014e-308
# p's edges: exactly 0 and 1 (as floats, ints and -0.0); subnormal and tiny distances from 0;
# the floats just below 1 (there is nothing closer to 1 than 2**-53); where float16's 1/(1-p)
# overflows; and values torch rejects (ValueError, or RuntimeError for NaN).
EDGE_PS = [
    0.0,
    -0.0,
    0,
    1,
    1.0,
    5e-324,
    math.nextafter(5e-324, 1.0),
    math.nextafter(SMALLEST_NORMAL, 0.0),
    SMALLEST_NORMAL,
    2**-53,
    math.nextafter(2**-53, 1.0),
    0.5,
    math.nextafter(0.5, 0.0),
    0.99999,
    1 - 2**-52,
    math.nextafter(1.0, 0.0),
    -5e-324,
    math.nextafter(1.0, 2.0),
    math.nan,
]
# Input magnitudes: ordinary; subnormal in float16, float32/bfloat16, float64; large enough for
# the scaled output to overflow to inf in float16, float32 or everywhere.
SCALES = [1.0, 1e-6, 1e-41, 1e-310, 1e4, 1e38, 1e300]


class Step(NamedTuple):
    name: str
    module: bool
    shape: tuple[int, ...]
    dtype: torch.dtype
    p: float
    inplace: bool
    training: bool
    scale: float
    calls: int
    data_seed: int


@st.composite
def steps(draw: st.DrawFn) -> Step:
    rank = draw(st.integers(0, 6))
    shape = draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank))
    if rank and draw(st.integers(0, 7)) == 0:  # 0-size now and then: nothing is drawn
        shape[draw(st.integers(0, rank - 1))] = 0
    return Step(
        name=draw(st.sampled_from(FUNCTIONS)),
        module=draw(st.booleans()),
        shape=tuple(shape),
        dtype=draw(st.sampled_from(DTYPES)),
        p=draw(st.one_of(st.sampled_from(EDGE_PS), st.floats(0.0, 1.0))),
        inplace=draw(st.booleans()),
        training=draw(st.sampled_from([True, True, True, False])),  # mostly drawing
        scale=draw(st.sampled_from(SCALES)),
        calls=draw(st.integers(1, 3)),
        data_seed=draw(st.integers(0, 2**16)),
    )


def call(fn: Any, *args: Any) -> tuple[Any, tuple]:
    """The result of ``fn(*args)`` (None if it raised) and its :func:`outcome`."""
    results = []
    happened = outcome(lambda: results.append(fn(*args)))
    return (results[0] if results else None), happened


def aliases(output: torch.Tensor, input: torch.Tensor) -> bool:
    """Whether torch's output is the input or a view of its memory (unbatched inputs come back
    as a view): MLX has no views, so flashdrop returns the input itself there."""
    return output is input or output._base is input


def run_step(step: Step) -> None:
    x = (sample_input(step.shape, torch.float64, step.data_seed) * step.scale).to(step.dtype)
    xt, xm = x.clone(), compat.to_mlx(x)
    if step.module:
        name = MODULE_OF[step.name]
        theirs_fn, their_outcome = call(getattr(torch.nn, name), step.p, step.inplace)
        ours_fn, our_outcome = call(getattr(nn, name), step.p, step.inplace)
        assert_same_outcome(their_outcome, our_outcome)
        if their_outcome[0] is not None:
            return
        theirs_fn.train(step.training)
        ours_fn.train(step.training)
        args = ()
    else:
        theirs_fn, ours_fn = getattr(TF, step.name), getattr(F, step.name)
        args = (step.p, step.training, step.inplace)
    for _ in range(step.calls):
        before = xt.clone()
        theirs, their_outcome = call(theirs_fn, xt, *args)
        ours, our_outcome = call(ours_fn, xm, *args)
        assert_same_outcome(their_outcome, our_outcome)
        if their_outcome[0] is not None:
            # A failed call leaves our input as it was. (torch's in-place unbatched path
            # unsqueezes its input before failing on a 0-d one, and leaves it 1-d.)
            assert_same_bits(xm, before)
            return
        assert_same_bits(ours, theirs)
        assert (ours is xm) == aliases(theirs, xt)
        assert_same_bits(xm, xt)  # the input afterwards: untouched, or written in place


# About 11 s on a 2-core machine; about half of the calls draw a mask.
EXAMPLES = 1000


@settings(derandomize=True, database=None, deadline=None, max_examples=EXAMPLES)
@given(seed=st.integers(-(2**63), 2**64 - 1), sequence=st.lists(steps(), min_size=1, max_size=3))
def test_fuzzed_calls_match_torch(seed, sequence):
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    with flashdrop.rng_mode("torch"):
        for step in sequence:
            run_step(step)
    ours = np.array(flashdrop.get_rng_state())[:5056]
    assert np.array_equal(ours, torch.get_rng_state().numpy())
