"""flashdrop.rand, randn, randint, randperm, bernoulli, normal: in torch mode the bits torch 2.13's
CPU generator gives after the same seed, the generator left where torch leaves it; torch's
errors; mlx mode's shapes, dtypes and ranges."""

import random
import warnings

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat
from tests._support.bits import assert_same_bits, same_state
from tests._support.names import FUNCTIONS

FLOATS = {
    torch.float32: mx.float32,
    torch.float64: mx.float64,
    torch.float16: mx.float16,
    torch.bfloat16: mx.bfloat16,
}
INTS = {
    torch.int64: mx.int64,
    torch.int32: mx.int32,
    torch.int16: mx.int16,
    torch.int8: mx.int8,
    torch.uint8: mx.uint8,
    torch.bool: mx.bool_,
}
# 0-d, empty, and the sizes around randn's block of 16.
SIZES = [(), (0,), (1,), (2,), (15,), (16,), (17,), (31,), (32,), (33,), (4, 25), (1025,)]


def both(our_call, torch_call, seed, calls=2):
    """``calls`` consecutive draws on each side from one seed; same bits, same state after."""
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    with flashdrop.rng_mode("torch"):
        for _ in range(calls):
            assert_same_bits(our_call(), torch_call())
    assert same_state()


# torch's function name -> (flashdrop call, torch call) for a float dtype and a size.
FLOAT_DRAWS = {
    "rand": (lambda d, s: flashdrop.rand(s, dtype=d), lambda d, s: torch.rand(s, dtype=d)),
    "randn": (lambda d, s: flashdrop.randn(s, dtype=d), lambda d, s: torch.randn(s, dtype=d)),
    "randn_ints": (
        lambda d, s: flashdrop.randn(*s, 1, dtype=d),
        lambda d, s: torch.randn(*s, 1, dtype=d),
    ),
    "normal": (
        lambda d, s: flashdrop.normal(0.3, 1.7, s, dtype=d),
        lambda d, s: torch.normal(0.3, 1.7, s, dtype=d),
    ),
    "normal_small_std": (
        lambda d, s: flashdrop.normal(-2.1, 0.013, s, dtype=d),
        lambda d, s: torch.normal(-2.1, 0.013, s, dtype=d),
    ),
    "rand_like": (
        lambda d, s: flashdrop.rand_like(mx.zeros(s, dtype=d)),
        lambda d, s: torch.rand_like(torch.zeros(s, dtype=d)),
    ),
    "randn_like": (
        lambda d, s: flashdrop.randn_like(mx.zeros(s, dtype=d)),
        lambda d, s: torch.randn_like(torch.zeros(s, dtype=d)),
    ),
    "randint": (
        lambda d, s: flashdrop.randint(-7, 200, s, dtype=d),
        lambda d, s: torch.randint(-7, 200, s, dtype=d),
    ),
}


@pytest.mark.parametrize("name", FLOAT_DRAWS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_float_draws_bit_exact(name, dtype, size):
    ours, theirs = FLOAT_DRAWS[name]
    for seed in (0, 12345):
        both(lambda: ours(FLOATS[dtype], size), lambda: theirs(dtype, size), seed)


def test_randn_large_and_many_seeds():
    for seed in range(6):
        for dtype in FLOATS:
            n = 16 * 257 + seed  # a tail for seeds 1..5
            both(
                lambda d=dtype, n=n: flashdrop.randn(n, dtype=FLOATS[d]),
                lambda d=dtype, n=n: torch.randn(n, dtype=d),
                seed,
            )


RANGES = [
    (0, 10),
    (-5, 7),
    (0, 1),
    (-7, 300),
    (3, 2**28 - 1),
    (0, 2**28),
    (-(2**40), 2**41),
    (0, 2**63 - 1),
    (-(2**63), 2**63 - 1),
    (2**24 - 3, 2**24 + 5),
]


def _outcome(call):
    """(result or the error, the warnings' texts) of one call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except (RuntimeError, ValueError) as error:
            result = error
    # torch appends where in ATen it warned: compare the message proper.
    return result, [(w.category, str(w.message).split(" (Triggered internally")[0]) for w in caught]


@pytest.mark.parametrize("low, high", RANGES)
@pytest.mark.parametrize("dtype", [*INTS, *FLOATS], ids=str)
def test_randint_bit_exact(low, high, dtype):
    """Values, state, errors and warnings (float dtypes past their exact integers) as torch's."""
    mx_dtype = INTS.get(dtype) or FLOATS[dtype]
    for size in [(), (0,), (17,), (3, 40)]:
        torch.manual_seed(99)
        flashdrop.manual_seed(99)
        theirs, their_warnings = _outcome(lambda s=size: torch.randint(low, high, s, dtype=dtype))
        with flashdrop.rng_mode("torch"):
            ours, our_warnings = _outcome(
                lambda s=size: flashdrop.randint(low, high, s, dtype=mx_dtype)
            )
        assert our_warnings == their_warnings
        if isinstance(theirs, Exception):
            assert type(ours) is type(theirs) and str(ours) == str(theirs)
        else:
            assert_same_bits(ours, theirs)
        assert same_state()


def test_randint_forms():
    both(lambda: flashdrop.randint(10, (5,)), lambda: torch.randint(10, (5,)), 3)
    both(lambda: flashdrop.randint(2, 9, [4, 2]), lambda: torch.randint(2, 9, [4, 2]), 3)
    both(
        lambda: flashdrop.randint(low=2, high=9, size=(3,)),
        lambda: torch.randint(low=2, high=9, size=(3,)),
        3,
    )
    both(lambda: flashdrop.randint(high=9, size=(3,)), lambda: torch.randint(high=9, size=(3,)), 3)
    both(
        lambda: flashdrop.randint(2, high=9, size=(3,)),
        lambda: torch.randint(2, high=9, size=(3,)),
        3,
    )
    both(
        lambda: flashdrop.randint_like(mx.zeros((3, 4), dtype=mx.int32), 5),
        lambda: torch.randint_like(torch.zeros(3, 4, dtype=torch.int32), 5),
        3,
    )
    both(
        lambda: flashdrop.randint_like(mx.zeros((6,)), -3, 5),
        lambda: torch.randint_like(torch.zeros(6), -3, 5),
        3,
    )


@pytest.mark.parametrize("n", [0, 1, 2, 3, 16, 17, 1000, 5000])
def test_randperm_bit_exact(n):
    both(lambda: flashdrop.randperm(n), lambda: torch.randperm(n), seed=n)
    both(
        lambda: flashdrop.randperm(n, dtype=mx.float32),
        lambda: torch.randperm(n, dtype=torch.float32),
        seed=1,
    )


def test_large_draws_bit_exact():
    """Sizes past every fast path: words drawn as 64-bit pairs (an odd count), randperm's many
    blocks of steps and long writer chains, randn's many blocks with a tail."""
    n = (1 << 20) + 3
    for ours, theirs in [
        (lambda: flashdrop.randperm(n), lambda: torch.randperm(n)),
        (lambda: flashdrop.randperm(70001), lambda: torch.randperm(70001)),
        (lambda: flashdrop.rand(n), lambda: torch.rand(n)),
        (lambda: flashdrop.randint(-7, 50257, (n,)), lambda: torch.randint(-7, 50257, (n,))),
        (lambda: flashdrop.randn(n), lambda: torch.randn(n)),
        (lambda: flashdrop.normal(0.5, 0.02, (n,)), lambda: torch.normal(0.5, 0.02, (n,))),
    ]:
        both(ours, theirs, seed=n, calls=1)


@pytest.mark.parametrize("mean", [0.0, -0.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_normal_of_a_zero_mean_is_torchs(mean, dtype):
    """A mean of +-0 and a std other than 1 (the kernels take a plain product there, as
    fma(x, std, +-0) rounds once), over whole blocks and a tail."""
    for n in (16 * 300, 16 * 300 + 5):
        both(
            lambda n=n: flashdrop.normal(mean, 0.02, (n,), dtype=FLOATS[dtype]),
            lambda n=n: torch.normal(mean, 0.02, (n,), dtype=dtype),
            seed=n,
        )


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_bernoulli_bit_exact(dtype, size):
    probs = torch.rand(size, dtype=dtype, generator=torch.Generator().manual_seed(5))
    if probs.numel() > 2:
        probs.view(-1)[:2] = torch.tensor([0.0, 1.0], dtype=dtype)
    ours_probs = compat.to_mlx(probs)
    both(lambda: flashdrop.bernoulli(ours_probs), lambda: torch.bernoulli(probs), seed=8)
    both(
        lambda: flashdrop.bernoulli(ours_probs, 0.3),
        lambda: torch.bernoulli(probs, 0.3),
        seed=8,
    )


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("n", [1, 15, 16, 17, 40])
def test_normal_with_arrays(dtype, n):
    g = torch.Generator().manual_seed(n)
    mean = torch.randn(n, dtype=dtype, generator=g)
    std = torch.rand(n, dtype=dtype, generator=g) * 3
    m, s = compat.to_mlx(mean), compat.to_mlx(std)
    both(lambda: flashdrop.normal(m, 0.5), lambda: torch.normal(mean, 0.5), seed=2)
    both(lambda: flashdrop.normal(m), lambda: torch.normal(mean), seed=2)
    both(lambda: flashdrop.normal(1.5, s), lambda: torch.normal(1.5, std), seed=2)
    both(lambda: flashdrop.normal(m, s), lambda: torch.normal(mean, std), seed=2)


def test_normal_cache_travels_with_the_state():
    """torch.randn below 16 elements keeps a second normal in the state: both ways."""
    for make_cache in (lambda: torch.randn(1, dtype=torch.float64), lambda: torch.randn(3)):
        torch.manual_seed(4)
        make_cache()
        compat.copy_rng_from_torch()
        assert same_state()
        with flashdrop.rng_mode("torch"):
            for size in [(1,), (2,), (5,), (16,), (1,)]:
                theirs = torch.randn(size, dtype=torch.float64)
                assert_same_bits(flashdrop.randn(size, dtype=mx.float64), theirs)
    torch.manual_seed(4)
    flashdrop.manual_seed(4)
    with flashdrop.rng_mode("torch"):
        flashdrop.randn(3)
        compat.copy_rng_to_torch()
        assert_same_bits(flashdrop.randn(1), torch.randn(1))
        assert same_state()
        state = flashdrop.get_rng_state()
        first = flashdrop.randn(7)
        flashdrop.set_rng_state(state)
        assert np.array_equal(np.asarray(flashdrop.randn(7)), np.asarray(first))


def _random_program(rng: random.Random, steps: int):
    """(flashdrop call, torch call) pairs: every draw and every dropout op, random arguments."""
    program = []
    for _ in range(steps):
        kind = rng.choice(["draw", "draw", "dropout"])
        dtype = rng.choice(list(FLOATS))
        size = rng.choice(SIZES)
        if kind == "draw":
            name = rng.choice([*FLOAT_DRAWS, "randperm", "bernoulli", "randint64"])
            if name in FLOAT_DRAWS:
                ours, theirs = FLOAT_DRAWS[name]
                program.append(
                    (
                        lambda o=ours, d=dtype, s=size: o(FLOATS[d], s),
                        lambda t=theirs, d=dtype, s=size: t(d, s),
                    )
                )
            elif name == "randperm":
                n = rng.choice([0, 1, 7, 50])
                program.append((lambda n=n: flashdrop.randperm(n), lambda n=n: torch.randperm(n)))
            elif name == "randint64":
                high = rng.choice([2, 1000, 2**30, 2**50])
                program.append(
                    (
                        lambda h=high, s=size: flashdrop.randint(h, s),
                        lambda h=high, s=size: torch.randint(h, s),
                    )
                )
            else:
                probs = torch.rand(size, dtype=dtype, generator=torch.Generator().manual_seed(1))
                ours_probs = compat.to_mlx(probs)
                program.append(
                    (
                        lambda p=ours_probs: flashdrop.bernoulli(p),
                        lambda p=probs: torch.bernoulli(p),
                    )
                )
        else:
            name = rng.choice(FUNCTIONS)
            p = rng.choice([0.1, 0.5, 0.9])
            shape = {"dropout1d": (3, 4, 5), "dropout3d": (2, 3, 2, 2, 2)}.get(name, (2, 3, 4, 5))
            x = torch.randn(shape, generator=torch.Generator().manual_seed(2)).to(dtype)
            ours_x = compat.to_mlx(x)
            program.append(
                (
                    lambda n=name, x=ours_x, p=p: getattr(F, n)(x, p, training=True),
                    lambda n=name, x=x, p=p: getattr(TF, n)(x, p, training=True),
                )
            )
    return program


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_random_programs_with_dropout(seed):
    program = _random_program(random.Random(seed), steps=120)
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    with flashdrop.rng_mode("torch"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step, (ours, theirs) in enumerate(program):
            assert_same_bits(ours(), theirs())
            assert same_state(), f"state differs after step {step}"


# Calls torch refuses: our error must be torch's (type and text), the state left as torch's.
ERRORS = [
    ("randint(5, 5, (3,))", "randint(5, 5, (3,))"),
    ("randint(5, 3, (3,))", "randint(5, 3, (3,))"),
    ("randint(0, (3,))", "randint(0, (3,))"),
    ("randint(0, 10, (-1,))", "randint(0, 10, (-1,))"),
    ("randint(0, 10, (3,), dtype=mx.bool_)", "randint(0, 10, (3,), dtype=torch.bool)"),
    ("randint(-5, 7, (3,), dtype=mx.uint8)", "randint(-5, 7, (3,), dtype=torch.uint8)"),
    ("randint(0, 300, (3,), dtype=mx.uint8)", "randint(0, 300, (3,), dtype=torch.uint8)"),
    ("randint(0, 2**40, (3,), dtype=mx.int32)", "randint(0, 2**40, (3,), dtype=torch.int32)"),
    ("randint(0, 2**64, (3,))", "randint(0, 2**64, (3,))"),
    ("randperm(-1)", "randperm(-1)"),
    ("randperm(3000, dtype=mx.float16)", "randperm(3000, dtype=torch.float16)"),
    ("randperm(2**24 + 2, dtype=mx.float32)", "randperm(2**24 + 2, dtype=torch.float32)"),
    ("randperm(129, dtype=mx.int8)", "randperm(129, dtype=torch.int8)"),
    ("randperm(300, dtype=mx.uint8)", "randperm(300, dtype=torch.uint8)"),
    ("randperm(5, dtype=mx.bool_)", "randperm(5, dtype=torch.bool)"),
    ("bernoulli(mx.array([0.5, 1.5]))", "bernoulli(torch.tensor([0.5, 1.5]))"),
    ("bernoulli(mx.array([0.2, 0.5, -0.1]))", "bernoulli(torch.tensor([0.2, 0.5, -0.1]))"),
    ("bernoulli(mx.array([0.5, float('nan')]))", "bernoulli(torch.tensor([0.5, float('nan')]))"),
    ("bernoulli(mx.array([1, 0], dtype=mx.int64))", "bernoulli(torch.tensor([1, 0]))"),
    ("bernoulli(mx.array([0.5]), 1.5)", "bernoulli(torch.tensor([0.5]), 1.5)"),
    ("rand(3, dtype=mx.int64)", "rand(3, dtype=torch.int64)"),
    ("rand(3, dtype=mx.bool_)", "rand(3, dtype=torch.bool)"),
    ("randn(3, dtype=mx.int32)", "randn(3, dtype=torch.int32)"),
    ("rand(-1)", "rand(-1)"),
    ("randn()", "randn()"),
    ("rand((2, -3))", "rand((2, -3))"),
    ("rand(2.5)", "rand(2.5)"),
    ("randn_like(mx.zeros(3, dtype=mx.int32))", "randn_like(torch.zeros(3, dtype=torch.int32))"),
    ("normal(0.0, -1.0, (3,))", "normal(0.0, -1.0, (3,))"),
    ("normal(0.0, float('nan'), (3,))", "normal(0.0, float('nan'), (3,))"),
    ("normal(0.0, 1.0, (3,), dtype=mx.int64)", "normal(0.0, 1.0, (3,), dtype=torch.int64)"),
    ("normal(mx.zeros(3), -1.0)", "normal(torch.zeros(3), -1.0)"),
    ("normal(0.0, mx.array([1.0, -1.0]))", "normal(0.0, torch.tensor([1.0, -1.0]))"),
]


@pytest.mark.parametrize("ours, theirs", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_torchs(ours, theirs):
    torch.manual_seed(6)
    flashdrop.manual_seed(6)
    with pytest.raises(Exception) as expected:
        eval("torch." + theirs)
    with flashdrop.rng_mode("torch"), pytest.raises(Exception) as got:
        eval("flashdrop." + ours)
    assert type(got.value) is type(expected.value)
    if not isinstance(expected.value, TypeError):  # TypeErrors: ours names our signature
        assert str(got.value) == str(expected.value)
    assert same_state()


def test_torch_mode_draws_refuse_compile():
    step = flashdrop.compile(lambda x: x + flashdrop.rand(3))
    with flashdrop.rng_mode("torch"), pytest.raises(RuntimeError, match="cannot be compiled"):
        step(mx.zeros(3))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_mlx_mode_shapes_dtypes_ranges(dtype):
    d = FLOATS[dtype]
    flashdrop.manual_seed(0)
    u = flashdrop.rand(4, 500, dtype=d)
    assert u.shape == (4, 500) and u.dtype == d
    assert mx.all((u >= 0) & (u < 1)).item() or d in (mx.float16, mx.bfloat16)
    assert mx.all((u >= 0) & (u <= 1)).item()
    z = flashdrop.randn(3, 7, dtype=d)
    assert z.shape == (3, 7) and z.dtype == d
    assert flashdrop.normal(2.0, 0.5, (9,), dtype=d).dtype == d
    b = flashdrop.bernoulli(mx.array([0.0, 1.0, 1.0], dtype=d))
    assert b.dtype == d and b.tolist() == [0, 1, 1]
    k = flashdrop.randint(-3, 4, (1000,))
    assert k.dtype == mx.int64 and k.min().item() >= -3 and k.max().item() <= 3
    perm = flashdrop.randperm(50)
    assert perm.dtype == mx.int64 and sorted(perm.tolist()) == list(range(50))
    assert flashdrop.rand([]).shape == ()


def test_torch_mode_inside_a_recurrent_model():
    """An Elman RNN drawing every step: a rand_like mask (a custom dropout), randn_like noise and
    a bernoulli gate, torch's and the MLX port's, in torch mode from one seed: torch's output."""
    g = torch.Generator().manual_seed(0)
    w_x, w_h = torch.randn(6, 8, generator=g) * 0.3, torch.randn(8, 8, generator=g) * 0.3
    xs = torch.randn(5, 3, 6, generator=g)  # (time, batch, features)

    def torch_rnn(xs):
        h = torch.zeros(3, 8)
        for x in xs:
            h = torch.tanh(x @ w_x + h @ w_h)
            h = h * (torch.rand_like(h) > 0.2) / 0.8 + 0.01 * torch.randn_like(h)
            h = h * torch.bernoulli(torch.full((3, 1), 0.9))
        return h

    def mlx_rnn(xs):
        m_x, m_h = compat.to_mlx(w_x), compat.to_mlx(w_h)
        h = mx.zeros((3, 8))
        for x in xs:
            h = mx.tanh(x @ m_x + h @ m_h)
            h = h * (flashdrop.rand_like(h) > 0.2) / 0.8 + 0.01 * flashdrop.randn_like(h)
            h = h * flashdrop.bernoulli(mx.full((3, 1), 0.9))
        return h

    torch.manual_seed(11)
    flashdrop.manual_seed(11)
    expected = torch_rnn(xs)
    with flashdrop.rng_mode("torch"):
        got = mlx_rnn(compat.to_mlx(xs))
    assert np.allclose(np.asarray(got), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert same_state()


def test_mlx_mode_draws_in_a_compiled_training_step():
    """Noise and a bernoulli gate inside flashdrop.compile'd value_and_grad: fresh draws per
    call, gradients through the noisy path."""
    import mlx.nn
    import mlx.optimizers as optim

    model = mlx.nn.Linear(4, 4)
    optimizer = optim.SGD(learning_rate=0.1)

    def loss_fn(model, x):
        h = model(x) + 0.1 * flashdrop.randn_like(x)
        h = h * flashdrop.bernoulli(mx.full(h.shape, 0.8)) + flashdrop.rand(()) * 0
        return (h**2).mean()

    state = [model.state, optimizer.state]
    step = flashdrop.compile(
        lambda x: _apply(mlx.nn.value_and_grad(model, loss_fn), model, optimizer, x),
        inputs=state,
        outputs=state,
    )
    x = mx.ones((8, 4))
    flashdrop.manual_seed(0)
    before = model.weight
    losses = [step(x).item() for _ in range(3)]
    assert len(set(losses)) == 3  # fresh noise and gates on every call
    assert not mx.array_equal(model.weight, before).item()


def _apply(loss_and_grad, model, optimizer, x):
    loss, grads = loss_and_grad(model, x)
    optimizer.update(model, grads)
    return loss


def test_recorded_like_torchs_draws():
    """flashdrop.testing.record_draws sees every draw, named as compat.record_torch_draws names
    torch's, in the same order."""
    from flashdrop import testing

    def program(lib, F_, ones, full):
        lib.randint(10, (3,))
        F_.dropout(ones(4), 0.5)
        lib.rand_like(ones(2))
        lib.randn(5)
        lib.bernoulli(full((2,), 0.5))
        lib.randperm(4)
        lib.normal(0.0, 2.0, (3,))

    with flashdrop.rng_mode("torch"), testing.record_draws() as ours:
        program(flashdrop, F, mx.ones, mx.full)
    with compat.record_torch_draws() as theirs:
        program(torch, TF, torch.ones, torch.full)
    assert [(d.op, d.shape, d.p) for d in ours] == [(d.op, d.shape, d.p) for d in theirs]
