"""The six functions with MLX alone: shapes, dtypes, edge cases, errors, warnings, in-place
writes and gradients. Texts are checked word for word against real torch in tests/parity."""

import math
import warnings

import mlx.core as mx
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F

ALL = [F.dropout, F.alpha_dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.feature_alpha_dropout]
ALPHA = {F.alpha_dropout, F.feature_alpha_dropout}
FEATURE = {F.dropout1d, F.dropout2d, F.dropout3d, F.feature_alpha_dropout}
# A batched input of the rank each function expects without warnings.
SHAPES = {
    F.dropout: (4, 6, 5),
    F.alpha_dropout: (4, 6, 5),
    F.dropout1d: (4, 6, 5),
    F.dropout2d: (4, 6, 5, 3),
    F.dropout3d: (4, 6, 5, 3, 2),
    F.feature_alpha_dropout: (4, 6, 5, 3),
}
FLOATS = [mx.float32, mx.float16, mx.bfloat16, mx.float64]
INTEGERS = [mx.bool_, mx.uint8, mx.int8, mx.int16, mx.int32, mx.int64]


def call(fn, x, p=0.5, training=True, inplace=False):
    return fn(x, p, training, inplace)


def normal(shape, dtype=mx.float32):
    return mx.random.normal(shape).astype(dtype)


@pytest.fixture(autouse=True)
def _seed():
    flashdrop.manual_seed(0)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", FLOATS)
def test_shape_and_dtype_are_kept(fn, dtype):
    x = normal(SHAPES[fn], dtype)
    y = call(fn, x, 0.3)
    assert y.shape == x.shape
    assert y.dtype == dtype


@pytest.mark.parametrize("fn", ALL)
def test_plain_and_feature_outputs_take_two_values_per_element(fn):
    """Plain dropout: 0 or x / (1-p). Alpha dropout: x*a + b, one of two affine maps."""
    p = 0.25
    x = normal(SHAPES[fn])
    y = np.array(call(fn, x, p))
    xs = np.array(x)
    if fn in ALPHA:
        A = 1.7580993408473766
        a = 1 / math.sqrt((A * A * p + 1) * (1 - p))
        kept = np.isclose(y, xs * a + A * a * p, rtol=1e-5, atol=1e-6)
        dropped = np.isclose(y, np.full_like(xs, A * a * p - A * a), rtol=1e-5, atol=1e-6)
    else:
        kept = y == (xs * np.float32(1 / (1 - p)))
        dropped = y == 0
    assert np.all(kept | dropped)
    assert kept.any() and dropped.any()


@pytest.mark.parametrize("fn", sorted(FEATURE, key=lambda f: f.__name__))
def test_feature_dropout_drops_whole_channels(fn):
    x = mx.ones(SHAPES[fn])
    y = np.array(call(fn, x, 0.5))
    per_channel = y.reshape(y.shape[0], y.shape[1], -1)
    # Every value of a channel is the same: all kept or all dropped.
    assert np.all(per_channel == per_channel[:, :, :1])
    assert len(np.unique(per_channel[:, :, 0])) == 2


@pytest.mark.parametrize(
    ("fn", "shape"),
    [(F.dropout1d, (6, 50)), (F.dropout3d, (6, 5, 4, 3))],
)
def test_unbatched_inputs_drop_whole_channels(fn, shape):
    y = np.array(call(fn, mx.ones(shape), 0.5))
    per_channel = y.reshape(shape[0], -1)
    assert np.all(per_channel == per_channel[:, :1])


def test_dropout2d_3d_input_is_treated_as_n_c_l():
    with pytest.warns(UserWarning, match="interpreted as shape \\(N, C, L\\)"):
        y = np.array(F.dropout2d(mx.ones((8, 6, 40)), 0.5))
    assert np.all(y == y[:, :, :1])  # one draw per (n, c), not per (c, h)
    assert len(np.unique(y[:, :, 0])) == 2


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize(
    "case",
    ["p=0", "eval", "empty"],
)
def test_nothing_to_do_returns_the_input_itself(fn, case):
    x = mx.zeros((0, *SHAPES[fn][1:])) if case == "empty" else normal(SHAPES[fn])
    p, training = (0.0, True) if case == "p=0" else (0.5, case != "eval")
    state = np.array(flashdrop.get_rng_state())
    assert call(fn, x, p, training) is x
    assert np.array_equal(np.array(flashdrop.get_rng_state()), state), "nothing may be drawn"


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", FLOATS)
def test_p_one_multiplies_by_zero(fn, dtype):
    x = mx.array([[1.0, -2.0, math.nan, math.inf, -math.inf, 0.0]] * 2).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = call(fn, x, 1.0)
    out = np.array(y.astype(mx.float32))
    assert y.dtype == dtype
    assert np.array_equal(out[:, [0, 1, 5]], np.zeros((2, 3)))
    assert np.isnan(out[:, 2:5]).all(), "NaN and inf times zero are NaN, as in torch"


@pytest.mark.parametrize("fn", ALL)
def test_p_one_keeps_integer_dtypes(fn):
    x = mx.full(SHAPES[fn], 3, mx.int32)
    y = call(fn, x, 1.0)
    assert y.dtype == mx.int32
    assert np.array_equal(np.array(y), np.zeros(SHAPES[fn]))


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", INTEGERS)
def test_integer_inputs_in_training_raise(fn, dtype):
    x = mx.ones(SHAPES[fn], dtype)
    with pytest.raises(RuntimeError, match="result type Float can't be cast") as info:
        call(fn, x, 0.5)
    assert str(dtype) in str(info.value)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", [mx.uint16, mx.uint32, mx.uint64, mx.complex64])
def test_dtypes_without_a_bernoulli_kernel_raise(fn, dtype):
    x = mx.ones(SHAPES[fn], dtype)
    with pytest.raises(NotImplementedError, match="bernoulli_scalar_cpu_"):
        call(fn, x, 0.5)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("p", [-0.1, 1.5, -math.inf, math.inf])
def test_p_out_of_range_raises_value_error(fn, p):
    with pytest.raises(ValueError, match=f"between 0 and 1, but got {p}"):
        call(fn, normal(SHAPES[fn]), p)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("training", [True, False])
def test_nan_p_raises_runtime_error_even_in_eval(fn, training):
    with pytest.raises(RuntimeError, match="between 0 and 1, but got nan"):
        call(fn, normal(SHAPES[fn]), math.nan, training)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize(
    ("value", "hint"),
    [(np.ones((2, 3), np.float32), "mlx.core.array\\(a\\)"), ([1.0, 2.0], "mlx.core.array")],
)
def test_non_mlx_inputs_raise_type_error_saying_how_to_convert(fn, value, hint):
    with pytest.raises(TypeError, match=f"expected input to be an mlx.core.array.*{hint}"):
        fn(value, 0.5, True)


@pytest.mark.parametrize("ndim", [0, 1, 4])
def test_dropout1d_rejects_other_ranks(ndim):
    with pytest.raises(
        RuntimeError, match=f"dropout1d: Expected 2D or 3D input, but received a {ndim}D"
    ):
        F.dropout1d(mx.ones((2,) * ndim), 0.5)


@pytest.mark.parametrize(("fn", "ndim"), [(F.dropout2d, 2), (F.dropout2d, 5), (F.dropout3d, 3)])
def test_deprecated_ranks_warn(fn, ndim):
    with pytest.warns(UserWarning, match=f"{fn.__name__}: Received a {ndim}-D input") as record:
        fn(mx.ones((2,) * ndim), 0.5)
    assert record[0].filename == __file__, "the warning points at the caller"


@pytest.mark.parametrize("fn", [F.dropout2d, F.dropout3d, F.feature_alpha_dropout])
def test_feature_dropout_needs_two_dimensions(fn):
    x = mx.ones((5,)) if fn is not F.dropout3d else mx.array(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions"):
            fn(x, 0.5, True)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_inplace_writes_into_the_input_object(fn, p, training):
    x = normal(SHAPES[fn])
    alias = x
    with flashdrop.fork_rng():
        expected = np.array(call(fn, x, p, training, inplace=False))
    y = call(fn, x, p, training, inplace=True)
    assert y is x
    assert np.array_equal(np.array(alias), expected), "every reference sees the result"


def test_inplace_on_a_slice_does_not_write_into_its_base():
    """MLX has no views: documented as the one thing in-place cannot emulate."""
    x = mx.ones((4, 8))
    row = x[0]
    F.dropout(row, 0.5, inplace=True)
    assert np.array_equal(np.array(x), np.ones((4, 8)))


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("p", [0.2, 0.7])
def test_gradient_is_the_mask_that_was_drawn(fn, p):
    """d(sum(y))/dx = noise: mask/(1-p) for plain dropout, a*mask for alpha dropout."""
    x = normal(SHAPES[fn])
    with flashdrop.fork_rng():
        y = np.array(call(fn, x, p))
    grad = np.array(mx.grad(lambda v: call(fn, v, p).sum())(x))
    if fn in ALPHA:
        A = 1.7580993408473766
        a = 1 / math.sqrt((A * A * p + 1) * (1 - p))
        kept = ~np.isclose(y, A * a * p - A * a, rtol=1e-6)
        expected = np.where(kept, np.float32(a), 0)
    else:
        kept = y != 0
        expected = np.where(kept, np.float32(1) / np.float32(1 - p), 0)
    assert np.array_equal(grad, expected)


@pytest.mark.parametrize("fn", ALL)
def test_gradient_in_eval_is_one(fn):
    x = normal(SHAPES[fn])
    grad = mx.grad(lambda v: call(fn, v, 0.5, training=False).sum())(x)
    assert np.array_equal(np.array(grad), np.ones(SHAPES[fn]))


def test_value_and_grad_through_inplace_dropout():
    x = normal((3, 4))
    with flashdrop.fork_rng():
        y = F.dropout(x, 0.5)
    value, grad = mx.value_and_grad(lambda v: F.dropout(v, 0.5, inplace=True).sum())(x)
    assert value.item() == pytest.approx(y.sum().item())
    assert np.array_equal(np.array(grad), np.array(y != 0) * 2.0)
