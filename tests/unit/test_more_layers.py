"""StochasticDepth, DropPath, DropBlock2d/3d and LockedDropout on MLX alone, in both modes.

Statistical bounds are Hoeffding's at tests.stats.FALSE_FAILURE_RATE (1e-9); seeds are fixed.
Bit-exactness against the published definitions is in tests/parity/test_more_layers_parity.
"""

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn
from tests._support.stats import hoeffding_halfwidth


@pytest.fixture(params=["mlx", "torch"], autouse=True)
def mode(request):
    flashdrop.manual_seed(5)
    with flashdrop.rng_mode(request.param):
        yield


# Each layer in training, as a function of the input alone.
CALLS = {
    "stochastic_depth_row": lambda x: F.stochastic_depth(x, 0.3, "row"),
    "stochastic_depth_batch": lambda x: F.stochastic_depth(x, 0.3, "batch"),
    "drop_path": lambda x: F.drop_path(x, 0.3, True),
    "drop_block2d": lambda x: F.drop_block2d(x, 0.3, 3),
    "drop_block3d": lambda x: F.drop_block3d(x.reshape(2, 3, 7, 7, 3), 0.3, 3).reshape(x.shape),
    "locked_dropout": lambda x: F.locked_dropout(x[0], 0.3),
}


@pytest.mark.parametrize(
    ("call", "shape"),
    [
        (lambda x: F.stochastic_depth(x, 0.0, "row"), (2, 3)),
        (lambda x: F.stochastic_depth(x, 0.5, "batch", training=False), (2, 3)),
        (lambda x: F.drop_path(x, 0.5), (2, 3)),
        (lambda x: F.drop_path(x, 0.0, True), (2, 3)),
        (lambda x: F.drop_block2d(x, 0.0, 3), (2, 3, 5, 5)),
        (lambda x: F.drop_block2d(x, 0.5, 3, training=False), (2, 3, 5, 5)),
        (lambda x: F.drop_block3d(x, 0.5, 3, training=False), (2, 3, 5, 5, 5)),
        (lambda x: F.locked_dropout(x, 0.0), (4, 2, 3)),
        (lambda x: F.locked_dropout(x, 0.5, training=False), (4, 2, 3)),
    ],
)
def test_eval_and_p_zero_return_the_input_itself_and_draw_nothing(call, shape):
    x = mx.ones(shape)
    state = flashdrop.get_rng_state()
    assert call(x) is x
    assert mx.array_equal(flashdrop.get_rng_state(), state)


@pytest.mark.parametrize("fn", [F.stochastic_depth, F.drop_path])
@pytest.mark.parametrize("p", [0.2, 0.7])
def test_row_drop_keeps_or_drops_whole_samples_at_rate(fn, p):
    n = 100_000
    x = mx.ones((n, 3, 2))
    y = np.array(fn(x, p, "row") if fn is F.stochastic_depth else fn(x, p, True))
    flat = y.reshape(n, -1)
    assert np.all(flat == flat[:, :1]), "a sample is kept or dropped whole"
    kept = flat[:, 0] != 0
    assert np.allclose(flat[kept, 0], 1 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < hoeffding_halfwidth(n)


def test_batch_mode_keeps_or_drops_everything_at_rate():
    trials = 4_000
    kept = [
        bool(F.stochastic_depth(mx.ones((3, 2)), 0.4, "batch")[0, 0] != 0) for _ in range(trials)
    ]
    y = F.stochastic_depth(mx.ones((3, 2)), 0.4, "batch")
    assert len(set(np.array(y).ravel().tolist())) == 1
    assert abs(np.mean(kept) - 0.6) < hoeffding_halfwidth(trials)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: F.stochastic_depth(x, 1.0, "row"),
        lambda x: F.drop_path(x, 1.0, True),
        lambda x: F.locked_dropout(x, 1.0),
    ],
)
def test_p_one_gives_zeros(call):
    assert not np.array(call(mx.ones((4, 3, 2)))).any()


def test_drop_path_without_scaling_keeps_values():
    y = np.array(F.drop_path(mx.full((1000, 2), 3.0), 0.5, True, scale_by_keep=False))
    assert set(np.unique(y).tolist()) == {0.0, 3.0}


@pytest.mark.parametrize("batch_first", [False, True])
def test_locked_dropout_shares_the_mask_over_time_at_rate(batch_first):
    steps, n, h = 6, 300, 200
    shape = (n, steps, h) if batch_first else (steps, n, h)
    y = np.array(F.locked_dropout(mx.ones(shape), 0.4, True, batch_first))
    time_axis = 1 if batch_first else 0
    first = np.take(y, [0], axis=time_axis)
    assert np.all(y == first), "one mask for all time steps"
    kept = first != 0
    assert np.allclose(first[kept], 1 / 0.6, rtol=1e-6)
    assert abs(kept.mean() - 0.6) < hoeffding_halfwidth(n * h)


def test_locked_dropout_unbatched_is_time_then_features():
    y = np.array(F.locked_dropout(mx.ones((7, 50)), 0.5))
    assert np.all(y == y[:1])


def test_drop_block_of_size_one_drops_elements_at_rate_and_rescales():
    """block_size 1: gamma = p, each element dropped on its own; scale numel / (eps + kept)."""
    n = 200_000
    y = np.array(F.drop_block2d(mx.ones((2, 4, 250, 100)), 0.3, 1))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < hoeffding_halfwidth(n)
    assert np.allclose(y[kept], n / (1e-6 + kept.sum()), rtol=1e-6)


def blocks_cover_the_zeros(zero: np.ndarray, block: int) -> bool:
    """Whether every True of `zero` (one channel, 2-D or 3-D) lies in an all-True cube of side
    `block` inside the array: the union of whole blocks."""
    covered = np.zeros_like(zero)
    starts = [range(size - block + 1) for size in zero.shape]
    for corner in np.ndindex(*[len(r) for r in starts]):
        window = tuple(slice(c, c + block) for c in corner)
        if zero[window].all():
            covered[window] = True
    return bool((covered == zero).all())


@pytest.mark.parametrize(
    ("shape", "block"), [((3, 4, 12, 9), 3), ((2, 3, 7, 8, 6), 3), ((2, 2, 9, 9), 5)]
)
def test_drop_block_drops_whole_blocks_and_rescales(shape, block):
    fn = F.drop_block2d if len(shape) == 4 else F.drop_block3d
    y = np.array(fn(mx.ones(shape), 0.2, block))
    zero = y == 0
    assert zero.any() and not zero.all()
    for n, c in np.ndindex(*shape[:2]):
        assert blocks_cover_the_zeros(zero[n, c], block)
    assert np.allclose(y[~zero], zero.size / (1e-6 + (~zero).sum()), rtol=1e-6)


def test_drop_block_clamps_the_block_size_to_the_input():
    """block_size 9 on 5 x 5 is a 5 x 5 block with one centre, drawn with gamma = p = 1."""
    assert not np.array(F.drop_block2d(mx.ones((1, 1, 5, 5)), 1.0, 9)).any()


def test_drop_block_inplace_writes_into_the_input():
    x = mx.ones((2, 2, 6, 6))
    alias = x
    y = F.drop_block2d(x, 0.5, 3, inplace=True)
    assert y is x and alias is x
    assert (np.array(x) == 0).any()


@pytest.mark.parametrize("name", list(CALLS))
def test_gradient_is_the_mask_times_the_scale(name):
    """d(sum(f(x)))/dx is the noise: for x = 1 it equals the output f(x) (same mask)."""
    x = mx.ones((6, 3, 7, 7))
    call = CALLS[name]
    with flashdrop.fork_rng():
        y = call(x)
    grad = mx.grad(lambda a: call(a).sum())(x)
    if name == "locked_dropout":
        grad = grad[0]
    assert mx.allclose(grad, y, rtol=1e-6)


@pytest.mark.parametrize("name", list(CALLS))
def test_compiled_draws_the_eager_masks_in_mlx_mode_and_is_refused_in_torch_mode(name):
    """flashdrop.compile threads MLX's random state: the compiled calls draw the masks of eager
    calls from the same seed, which differ from call to call (a frozen key would repeat the
    first). Torch-mode masks come from the host and cannot be compiled."""
    x = mx.random.normal((6, 3, 7, 7))
    step = flashdrop.compile(CALLS[name])
    if flashdrop.get_rng_mode() == "torch":
        with pytest.raises(RuntimeError, match="cannot be compiled"):
            step(x)
        return
    flashdrop.manual_seed(3)
    eager = [CALLS[name](x) for _ in range(3)]
    assert not mx.array_equal(eager[0], eager[1]) or not mx.array_equal(eager[1], eager[2])
    flashdrop.manual_seed(3)
    assert all(mx.array_equal(step(x), e) for e in eager)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda x: F.stochastic_depth(x, 1.5, "row"),
            ValueError,
            r"^drop probability has to be between 0 and 1, but got 1.5$",
        ),
        (lambda x: F.stochastic_depth(x, float("nan"), "row"), ValueError, "but got nan"),
        (
            lambda x: F.stochastic_depth(x, 0.5, "rows"),
            ValueError,
            r"^mode has to be either 'batch' or 'row', but got rows$",
        ),
        (lambda x: F.stochastic_depth(x[0, 0, 0, 0], 0.5, "row"), ValueError, "0-D input"),
        (lambda x: F.drop_path(x, -0.1, True), ValueError, "between 0 and 1, but got -0.1"),
        (lambda x: F.drop_block2d(x, 1.1, 3), ValueError, r"but got 1.1\.$"),
        (
            lambda x: F.drop_block2d(x[0], 0.5, 3),
            ValueError,
            r"^input should be 4 dimensional. Got 3 dimensions.; drop_block2d takes \(N, C, H, W\)",
        ),
        (lambda x: F.drop_block3d(x, 0.5, 3), ValueError, "input should be 5 dimensional. Got 4"),
        (lambda x: F.drop_block2d(x, 0.5, 4), ValueError, "block size should be odd. Got 4"),
        (lambda x: F.drop_block2d(x[..., :4], 0.5, 5), ValueError, "Got 4 which is even"),
        (lambda x: F.drop_block2d(x, 0.5, 0), ValueError, "^block size should be odd. Got 0 "),
        (
            lambda x: F.drop_block3d(x[..., None], 0.5, -1),
            ValueError,
            "^drop_block3d: block_size must be a positive odd integer, but got -1$",
        ),
        (lambda x: F.drop_block2d(x, 0.5, 3.0), TypeError, "block_size must be an int, but got"),
        (lambda x: F.locked_dropout(x, 0.5), ValueError, "Expected 2D .* or 3D .* received a 4D"),
        (
            lambda x: F.locked_dropout(x[0], 1.5),
            ValueError,
            r"^dropout probability has to be between 0 and 1, but got 1.5$",
        ),
        (lambda x: F.stochastic_depth(np.ones(3), 0.5, "row"), TypeError, "mlx.core.array"),
    ],
)
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call(mx.ones((2, 3, 5, 5)))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: nn.StochasticDepth(0.2, "row"), "StochasticDepth(p=0.2, mode=row)"),
        (lambda: nn.DropPath(), "DropPath(drop_prob=0.000)"),
        (lambda: nn.DropPath(0.12345), "DropPath(drop_prob=0.123)"),
        (lambda: nn.DropBlock2d(0.1, 3), "DropBlock2d(p=0.1, block_size=3, inplace=False)"),
        (lambda: nn.DropBlock3d(0.1, 5, True), "DropBlock3d(p=0.1, block_size=5, inplace=True)"),
        (lambda: nn.LockedDropout(), "LockedDropout(p=0.5, batch_first=False)"),
    ],
)
def test_module_repr_and_no_parameters(make, expected):
    m = make()
    assert repr(m) == expected
    assert isinstance(m, mlx.nn.Module) and m.parameters() == {}


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.StochasticDepth(2, "row"),
        lambda: nn.StochasticDepth(0.5, "col"),
        lambda: nn.DropPath(-1),
        lambda: nn.DropBlock2d(1.5, 3),
        lambda: nn.LockedDropout(1.5),
    ],
)
def test_constructors_check_their_arguments(make):
    with pytest.raises(ValueError, match=r"between 0 and 1|mode has to be"):
        make()


@pytest.mark.parametrize(
    ("make", "function", "shape"),
    [
        (
            lambda: nn.StochasticDepth(0.5, "row"),
            lambda x: F.stochastic_depth(x, 0.5, "row"),
            (8, 4),
        ),
        (lambda: nn.DropPath(0.5), lambda x: F.drop_path(x, 0.5, True), (8, 4)),
        (lambda: nn.DropBlock2d(0.5, 3), lambda x: F.drop_block2d(x, 0.5, 3), (2, 3, 6, 6)),
        (lambda: nn.DropBlock3d(0.5, 3), lambda x: F.drop_block3d(x, 0.5, 3), (2, 2, 5, 5, 5)),
        (
            lambda: nn.LockedDropout(0.5, True),
            lambda x: F.locked_dropout(x, 0.5, True, True),
            (2, 5, 4),
        ),
    ],
)
def test_module_calls_its_function_and_follows_an_enclosing_model(make, function, shape):
    x = mx.ones(shape)
    m = make()
    with flashdrop.fork_rng():
        expected = function(x)
    assert mx.array_equal(m(x), expected)
    model = mlx.nn.Sequential(m)
    model.eval()
    assert not m.training and m(x) is x
    model.train()
    assert m.training
