"""Seeding, state, modes and compiling: reproducibility with MLX alone."""

import functools

import mlx.core as mx
import mlx.nn
import mlx.optimizers
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import _random
from flashdrop._random.torch_cpu import kernels

MODES = ["mlx", "torch"]


@pytest.fixture(params=MODES)
def mode(request):
    with flashdrop.rng_mode(request.param):
        yield request.param


def draw(shape=(64, 32), p=0.5):
    return np.array(F.dropout(mx.ones(shape), p))


def test_manual_seed_makes_runs_reproducible(mode):
    flashdrop.manual_seed(1234)
    first = [draw() for _ in range(3)]
    flashdrop.manual_seed(1234)
    second = [draw() for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], first[1]), "consecutive calls draw fresh masks"


def test_different_seeds_draw_different_masks(mode):
    flashdrop.manual_seed(1)
    a = draw()
    flashdrop.manual_seed(2)
    assert not np.array_equal(a, draw())


def test_two_fork_rng_blocks_draw_the_same_mask(mode):
    flashdrop.manual_seed(7)
    with flashdrop.fork_rng():
        a = draw()
    with flashdrop.fork_rng():
        b = draw()
    assert np.array_equal(a, b)
    assert np.array_equal(draw(), a), "the state after the blocks is the state before them"


def test_fork_rng_restores_on_error(mode):
    flashdrop.manual_seed(7)
    state = np.array(flashdrop.get_rng_state())
    with pytest.raises(ZeroDivisionError), flashdrop.fork_rng():
        draw()
        1 / 0  # noqa: B018
    assert np.array_equal(np.array(flashdrop.get_rng_state()), state)


def test_get_and_set_rng_state_cover_both_streams():
    flashdrop.manual_seed(3)
    draw()
    with flashdrop.rng_mode("torch"):
        draw()
    state = flashdrop.get_rng_state()
    assert state.dtype == mx.uint8 and state.shape == (_random.STATE_BYTES,)
    expected = {}
    for m in MODES:
        with flashdrop.rng_mode(m):
            expected[m] = draw()
    flashdrop.set_rng_state(state)
    for m in MODES:
        with flashdrop.rng_mode(m):
            assert np.array_equal(draw(), expected[m])


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (mx.zeros((10,), mx.uint8), RuntimeError),
        (mx.zeros((_random.STATE_BYTES,), mx.int32), TypeError),
        (b"state", TypeError),
    ],
)
def test_set_rng_state_rejects_other_values(bad, error):
    with pytest.raises(error, match=r"the uint8 mx.array flashdrop.get_rng_state\(\) returns"):
        flashdrop.set_rng_state(bad)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_manual_seed_rejects_seeds_torch_rejects(seed):
    with pytest.raises(ValueError, match="Overflow"):
        flashdrop.manual_seed(seed)


@pytest.mark.parametrize(("seed", "same_as"), [(-1, 2**64 - 1), (2**32 + 5, 5)])
def test_torch_stream_seeds_like_torch(seed, same_as):
    """Negative seeds wrap through 2**64; the mt19937 takes the low 32 bits."""
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(seed)
        a = draw()
        flashdrop.manual_seed(same_as)
        assert np.array_equal(a, draw())


def test_torch_stream_is_the_standard_mt19937():
    """C++'s std::mt19937 requirement: seeded with 5489, its 10000th output is 4123659995."""
    generator = _random.TorchCPUGenerator(5489)
    assert generator._bits.random_raw(10000)[-1] == 4123659995


@pytest.mark.parametrize("q", [0.5, 0.3, 1 / 3, 1 - 2**-40, 2**-30])
def test_torch_stream_keeps_where_53_bit_integer_is_below_threshold(q):
    """torch's bernoulli_: k = (r1 & 0x1FFFFF) << 32 | r2; keep iff k * 2**-53 < q.
    Checked with Python integers over more than one chunk."""
    count = kernels.CHUNK + 1000
    words = _random.TorchCPUGenerator(99)._bits.random_raw(2 * count)
    k = [
        ((int(r1) & 0x1FFFFF) << 32) | int(r2)
        for r1, r2 in zip(words[0::2], words[1::2], strict=True)
    ]
    expected = np.array([ki * 2.0**-53 < q for ki in k])
    with _random.TorchCPUGenerator(99).stream() as stream:
        assert np.array_equal(kernels.bernoulli_scalar(stream, count, q), expected)


def test_rng_mode_switches_and_restores():
    assert flashdrop.get_rng_mode() == "mlx"
    with flashdrop.rng_mode("torch"):
        assert flashdrop.get_rng_mode() == "torch"
    assert flashdrop.get_rng_mode() == "mlx"
    flashdrop.set_rng_mode("torch")
    try:
        assert flashdrop.get_rng_mode() == "torch"
    finally:
        flashdrop.set_rng_mode("mlx")


@pytest.mark.parametrize("bad", ["numpy", "Torch", None])
def test_unknown_modes_are_rejected(bad):
    with pytest.raises(ValueError, match="random mode must be one of \\('mlx', 'torch'\\)"):
        flashdrop.set_rng_mode(bad)
    with pytest.raises(ValueError, match="random mode must be one of"):
        flashdrop.rng_mode(bad).__enter__()


def test_compile_draws_a_fresh_mask_every_call():
    step = flashdrop.compile(lambda x: F.dropout(x, 0.5))
    x = mx.ones((64, 64))
    flashdrop.manual_seed(0)
    masks = [np.array(step(x)) for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    flashdrop.manual_seed(0)
    assert np.array_equal(np.array(step(x)), masks[0]), "seeding still makes it reproducible"


def test_plain_mx_compile_repeats_one_mask():
    """The problem flashdrop.compile solves (stated in the README)."""
    step = mx.compile(lambda x: F.dropout(x, 0.5))
    x = mx.ones((64, 64))
    assert np.array_equal(np.array(step(x)), np.array(step(x)))


def test_compiled_and_eager_draw_the_same_masks():
    x = mx.ones((32, 32))
    flashdrop.manual_seed(5)
    eager = [np.array(F.dropout(x, 0.5)) for _ in range(2)]
    flashdrop.manual_seed(5)
    step = flashdrop.compile(lambda v: F.dropout(v, 0.5))
    assert all(np.array_equal(np.array(step(x)), e) for e in eager)


def test_torch_mode_refuses_to_be_compiled():
    step = flashdrop.compile(lambda x: F.dropout(x, 0.5))
    with flashdrop.rng_mode("torch"), pytest.raises(RuntimeError, match="cannot be compiled"):
        step(mx.ones((4,)))


def _compiled_training_step(learning_rate):
    mx.random.seed(0)
    model = mlx.nn.Sequential(mlx.nn.Linear(4, 4), flashdrop.nn.Dropout(0.5), mlx.nn.Linear(4, 1))
    optimizer = mlx.optimizers.SGD(learning_rate=learning_rate)
    state = [model.state, optimizer.state]

    @functools.partial(flashdrop.compile, inputs=state, outputs=state)
    def step(x, y):
        loss_and_grad = mlx.nn.value_and_grad(model, lambda m, x, y: ((m(x) - y) ** 2).mean())
        loss, grads = loss_and_grad(model, x, y)
        optimizer.update(model, grads)
        return loss

    return model, step


def test_compiled_training_step_updates_the_model():
    model, step = _compiled_training_step(learning_rate=0.1)
    before = np.array(model.layers[0].weight)
    step(mx.random.normal((32, 4)), mx.zeros((32, 1)))
    assert not np.array_equal(np.array(model.layers[0].weight), before)


def test_compiled_training_step_draws_a_fresh_mask_every_step():
    # With a zero learning rate the weights stay put: only the mask changes the loss.
    _, step = _compiled_training_step(learning_rate=0.0)
    x, y = mx.random.normal((32, 4)), mx.zeros((32, 1))
    losses = [step(x, y).item() for _ in range(3)]
    assert len(set(losses)) == 3
