"""The random draws at their edges, against real torch 2.13 (issue 18, items 3, 5, 9 and its
errors): mlx-mode randint over every range torch accepts, mlx-mode rand below 1.0 in float16 and
bfloat16, normal with an infinite or huge std, the arguments torch takes or refuses, and
randperm past 214,748,364 elements (item 8), where torch shuffles "inside out".

Statistical bounds: Hoeffding's, from the suite's false-failure rate (tests/_support/stats.py).
"""

import math
import os
import warnings

import mlx.core as mx
import numpy as np
import pytest
import torch

import flashdrop
from flashdrop import compat
from flashdrop._random.torch_cpu import kernels
from tests._support.outcome import assert_same_outcome, outcome
from tests._support.stats import hoeffding_halfwidth

N = 200_000


def mlx_randint(low: int, high: int, n: int = N) -> np.ndarray:
    mx.random.seed(7)
    return np.array(flashdrop.randint(low, high, (n,)))


@pytest.mark.parametrize(
    "low, high",
    [(0, 2**30), (2**40, 2**40 + 5), (-(2**63), 2**63 - 1), (0, 300_000_000 - 1024), (-7, 2**62)],
)
def test_mlx_randint_stays_in_range_and_hits_every_residue(low, high):
    drawn = mlx_randint(low, high)
    assert drawn.dtype == np.int64
    assert drawn.min() >= low and drawn.max() < high
    span = high - low
    for modulus in (2, 5, 8):  # each residue's share is 1/m within the bound
        if span < modulus * 1000:
            continue
        shares = np.bincount((drawn - low) % modulus, minlength=modulus) / N
        assert np.abs(shares - 1 / modulus).max() < hoeffding_halfwidth(N), (modulus, shares)


def test_mlx_randint_of_five_huge_values_draws_each_a_fifth_of_the_time():
    drawn = mlx_randint(2**40, 2**40 + 5)
    shares = np.bincount(drawn - 2**40, minlength=5) / N
    assert np.abs(shares - 0.2).max() < hoeffding_halfwidth(N)


def test_nanogpt_offsets_over_300m_tokens_are_multiples_of_8_an_eighth_of_the_time():
    # nanoGPT's get_batch: torch.randint(len(data) - block_size, (batch_size,)).
    drawn = mlx_randint(0, 300_000_000 - 1024)
    assert abs(np.mean(drawn % 8 == 0) - 1 / 8) < hoeffding_halfwidth(N)


def test_mlx_randint_keeps_its_dtypes_and_shapes():
    assert flashdrop.randint(3, (2, 0)).shape == (2, 0)
    assert flashdrop.randint(5, ()).dtype == mx.int64
    assert flashdrop.randint(0, 2048, (4,), dtype=mx.float16).dtype == mx.float16
    assert mx.all(flashdrop.randint(2**62, 2**62 + 1, (3,)) == 2**62).item()


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16], ids=str)
@pytest.mark.parametrize("like", [False, True])
def test_mlx_rand_in_half_precision_is_below_one(dtype, like):
    mx.random.seed(3)
    n = 1_000_000  # about 200 (float16) and 2,000 (bfloat16) of these rounded to 1.0 before
    u = flashdrop.rand_like(mx.zeros((n,), dtype)) if like else flashdrop.rand(n, dtype=dtype)
    assert u.dtype == dtype
    assert mx.max(u).item() < 1.0 and mx.min(u).item() >= 0.0


def torch_and_ours(torch_call, our_call, seed=0):
    """Both calls after the same seed, in torch mode: (torch's result, ours, same state)."""
    torch.manual_seed(seed)
    theirs = torch_call()
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(seed)
        ours = our_call()
        state = np.array(flashdrop.get_rng_state())[: torch.get_rng_state().numel()]
    return theirs, ours, np.array_equal(state, torch.get_rng_state().numpy())


def assert_same_values(theirs: torch.Tensor, ours: mx.array) -> None:
    mine = compat.to_torch(ours)
    assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
    assert torch.equal(mine.isnan(), theirs.isnan())
    assert torch.equal(mine[~mine.isnan()], theirs[~theirs.isnan()])


FLOATS = {torch.float32: mx.float32, torch.float64: mx.float64, torch.float16: mx.float16}


@pytest.mark.parametrize("n", [1, 5, 16, 37])
@pytest.mark.parametrize("dtype", list(FLOATS), ids=str)
@pytest.mark.parametrize(
    "mean, std",
    [(0.0, math.inf), (1.0, math.inf), (0.0, 1.5e300), (3.0, 1.7e308), (-1e300, 1e305)],
)
def test_normal_with_an_infinite_or_huge_std_is_torchs(mean, std, dtype, n):
    theirs, ours, same_state = torch_and_ours(
        lambda: torch.normal(mean, std, (n,), dtype=dtype),
        lambda: flashdrop.normal(mean, std, (n,), dtype=FLOATS[dtype]),
    )
    assert_same_values(theirs, ours)
    assert same_state


def test_normal_with_an_array_of_infinite_and_huge_stds_is_torchs():
    std = torch.tensor([math.inf, 1e301, 2.0, 0.0] * 5, dtype=torch.float64)
    theirs, ours, same_state = torch_and_ours(
        lambda: torch.normal(0.5, std), lambda: flashdrop.normal(0.5, compat.to_mlx(std))
    )
    assert_same_values(theirs, ours)
    assert same_state


@pytest.mark.parametrize(
    "mean_dtype, std_dtype",
    [
        (torch.float16, torch.float32),
        (torch.float32, torch.float16),
        (torch.float32, torch.float64),
        (torch.float64, torch.float32),
    ],
)
def test_normal_of_a_mean_and_a_std_of_two_dtypes_is_torchs(mean_dtype, std_dtype):
    mean = torch.linspace(-2, 2, 20, dtype=mean_dtype)
    std = torch.linspace(0, 3, 20, dtype=std_dtype)
    theirs, ours, same_state = torch_and_ours(
        lambda: torch.normal(mean, std),
        lambda: flashdrop.normal(compat.to_mlx(mean), compat.to_mlx(std)),
    )
    assert_same_values(theirs, ours)
    assert same_state


@pytest.mark.parametrize(
    "p", [np.float16(0.3), np.float16(0.7), "0-d float16", np.float32(0.3)], ids=str
)
def test_bernoulli_with_a_float16_p_draws_as_torch(p):
    x = torch.rand(50, generator=torch.Generator().manual_seed(1))
    their_p, our_p = (
        (torch.tensor(0.3, dtype=torch.float16), mx.array(0.3, mx.float16))
        if isinstance(p, str)
        else (p, p)
    )
    theirs, ours, same_state = torch_and_ours(
        lambda: torch.bernoulli(x, p=their_p),
        lambda: flashdrop.bernoulli(compat.to_mlx(x), p=our_p),
    )
    assert_same_values(theirs, ours)
    assert same_state


ERRORS = {
    "randperm uint16": (
        lambda: torch.randperm(5, dtype=torch.uint16),
        lambda: flashdrop.randperm(5, dtype=mx.uint16),
    ),
    "randperm uint32": (
        lambda: torch.randperm(5, dtype=torch.uint32),
        lambda: flashdrop.randperm(5, dtype=mx.uint32),
    ),
    "randperm uint64": (
        lambda: torch.randperm(5, dtype=torch.uint64),
        lambda: flashdrop.randperm(5, dtype=mx.uint64),
    ),
    "rand 2**62 + 1 by 4": (lambda: torch.rand(2**62 + 1, 4), lambda: flashdrop.rand(2**62 + 1, 4)),
    "randn 4 by 2**62 + 1": (
        lambda: torch.randn(4, 2**62 + 1),
        lambda: flashdrop.randn(4, 2**62 + 1),
    ),
    "rand 2**61 float32": (lambda: torch.rand(2**61), lambda: flashdrop.rand(2**61)),
    "randint 2**62 by 4": (
        lambda: torch.randint(9, (2**62, 4)),
        lambda: flashdrop.randint(9, (2**62, 4)),
    ),
    "float16 randint [-65504, 65505)": (
        lambda: torch.randint(-65504, 65505, (9,), dtype=torch.float16),
        lambda: flashdrop.randint(-65504, 65505, (9,), dtype=mx.float16),
    ),
    "float16 randint from -65505": (
        lambda: torch.randint(-65505, 0, (9,), dtype=torch.float16),
        lambda: flashdrop.randint(-65505, 0, (9,), dtype=mx.float16),
    ),
    "float16 randint to 65506": (
        lambda: torch.randint(0, 65506, (9,), dtype=torch.float16),
        lambda: flashdrop.randint(0, 65506, (9,), dtype=mx.float16),
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_what_torch_takes_or_refuses_and_draws_nothing_before(case):
    torch_call, our_call = ERRORS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the float16 bounds' warnings: compared elsewhere
        torch.manual_seed(0)
        theirs = outcome(torch_call)
        their_state = torch.get_rng_state().numpy()
        with flashdrop.rng_mode("torch"):
            flashdrop.manual_seed(0)
            ours = outcome(our_call)
            our_state = np.array(flashdrop.get_rng_state())[: their_state.size]
    assert_same_outcome((theirs[0], []), (ours[0], []))
    assert np.array_equal(our_state, their_state)


def test_float16_randint_up_to_its_largest_value_is_torchs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warning past 2**11, ours alike
        theirs, ours, same_state = torch_and_ours(
            lambda: torch.randint(-65504, 65505, (1000,), dtype=torch.float16),
            lambda: flashdrop.randint(-65504, 65505, (1000,), dtype=mx.float16),
        )
    assert_same_values(theirs, ours)
    assert same_state


def inside_out_as_torch_loops(z: np.ndarray) -> np.ndarray:
    """torch's loop for randperm(n >= 214748364), given its draws z[i] = random64() % (i + 1)."""
    r = np.empty(z.size, dtype=np.int64)
    for i, zi in enumerate(z.tolist()):
        r[i] = r[zi]
        r[zi] = i
    return r


class Pairs:
    """A stand-in stream: given ``random64()`` draws, in order."""

    def __init__(self, pairs: np.ndarray) -> None:
        self._pairs = pairs.astype(np.uint64)

    def pairs(self, count: int) -> np.ndarray:
        taken, self._pairs = self._pairs[:count], self._pairs[count:]
        return taken


@pytest.mark.parametrize(
    "n",
    # Sizes around whole blocks of steps too: chains from one block into the next.
    [
        1,
        2,
        3,
        17,
        1000,
        kernels._STEPS - 1,
        kernels._STEPS,
        kernels._STEPS + 1,
        2 * kernels._STEPS + 5,
    ],
)
def test_randperm_inside_out_resolution_is_torchs_loop(n):
    gen = np.random.default_rng(n)
    draws = [gen.integers(0, np.arange(1, n + 1)) for _ in range(30 if n <= 1000 else 3)]
    draws += [np.zeros(n, np.int64), np.arange(n), np.maximum(np.arange(n) - 1, 0)]
    for z in draws:  # z[i] <= i: random64() % (i + 1) is z[i] itself
        expected = inside_out_as_torch_loops(z)
        assert np.array_equal(kernels._inside_out(Pairs(z), n), expected)


@pytest.mark.parametrize(
    "n",
    [
        kernels._STEPS - 1,  # steps 0 .. n - 2: one whole block
        kernels._STEPS,
        kernels._STEPS + 1,  # a last block of one step
        kernels._STEPS + 2,
        5 * kernels._STEPS + 3,
        (1 << 22) + 3,
    ],
)
def test_randperm_resolved_in_blocks_is_torchs(n):
    theirs, ours, same_state = torch_and_ours(
        lambda: torch.randperm(n), lambda: flashdrop.randperm(n)
    )
    assert np.array_equal(np.array(ours), theirs.numpy())
    assert same_state


@pytest.mark.skipif(
    os.environ.get("FLASHDROP_BIG_RANDPERM") != "1",
    reason="about 7 GB and minutes: set FLASHDROP_BIG_RANDPERM=1",
)
@pytest.mark.parametrize("n", [kernels.INSIDE_OUT_FROM - 1, kernels.INSIDE_OUT_FROM])
def test_randperm_at_torchs_switch_of_algorithm_is_torchs(n):
    theirs, ours, same_state = torch_and_ours(
        lambda: torch.randperm(n), lambda: flashdrop.randperm(n)
    )
    assert np.array_equal(np.array(ours), theirs.numpy())
    assert same_state
