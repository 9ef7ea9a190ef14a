"""The argument contract without torch: the conversion at the boundary, modules' p, train(mode),
set_rng_state with torch's 5056 bytes, fork_rng's parameters (tests/parity compares all of these
with real torch)."""

import fractions
import inspect
import math
import re

import mlx.core as mx
import mlx.nn
import mlx.optimizers
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import _checks, nn


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.3, 0.3),
        (1, 1.0),
        (True, 1.0),
        (np.float16(0.3), 0.300048828125),
        (np.float32(0.3), 0.30000001192092896),
        (np.int64(0), 0.0),
        (np.bool_(True), 1.0),
        (mx.array(0.3), 0.30000001192092896),
        (mx.array(0.3, mx.float16), 0.300048828125),
        (mx.array(0.3, mx.bfloat16), 0.30078125),
        (mx.array(1), 1.0),
        (mx.array(False), 0.0),
    ],
    ids=repr,
)
def test_p_becomes_a_python_float_as_torchs_parser_makes_it(value, expected):
    converted = _checks.to_float(value, "dropout", "p", 2)
    assert type(converted) is float and converted == expected


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (fractions.Fraction(1, 2), "Fraction"),
        (np.array(0.3), "numpy.ndarray"),
        (mx.array([0.3]), "array"),
        ("0.5", "str"),
        (None, "NoneType"),
    ],
    ids=repr,
)
def test_refused_p_names_the_op_argument_and_position(value, name):
    op = "scaled_dot_product_attention"
    message = f"{op}(): argument 'dropout_p' (position 5) must be float, not {name}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        _checks.to_float(value, "scaled_dot_product_attention", "dropout_p", 5)
    # Passed by keyword, torch leaves the position out.
    with pytest.raises(TypeError, match=r"^f\(\): argument 'q' must be float, not "):
        _checks.to_float(value, "f", "q")


def test_a_complex_0d_array_is_refused():
    with pytest.raises(TypeError, match=r"must be float, not array; .*complex64$"):
        F.dropout(mx.ones(3), mx.array(0.3 + 0j))


def test_training_must_be_a_bool():
    assert _checks.to_bool(False, "dropout", "train", 3) is False
    with pytest.raises(TypeError, match=r"^alpha_dropout\(\): .* must be bool, not numpy.bool$"):
        F.alpha_dropout(mx.ones(3), 0.5, np.bool_(True))


def test_cached_constants_see_only_the_converted_p():
    """np.float16(0.5) is exactly 0.5: after it, a float 0.5 gets the same constants; and
    np.float32(0.3) is not 0.3: a float 0.3 after it gets its own."""
    x = mx.ones((1000,))
    for p in [np.float16(0.5), 0.5, np.float32(0.3), 0.3]:
        y = np.array(F.dropout(x, p))
        kept = y[y != 0]
        assert np.all(kept == np.float32(1) / np.float32(1 - float(p)))


LAYERS = [
    lambda p: nn.Dropout(p),
    lambda p: nn.Dropout2d(p),
    lambda p: nn.AlphaDropout(p),
    lambda p: nn.FeatureAlphaDropout(p, channel_dim=-1),
    lambda p: nn.StochasticDepth(p, "row"),
    lambda p: nn.DropPath(p),
    lambda p: nn.DropBlock2d(p, 3, eps=mx.array(1e-6)),
    lambda p: nn.DropBlock3d(p, 3),
    lambda p: nn.LockedDropout(p),
]


@pytest.mark.parametrize("make", LAYERS)
def test_no_layer_holds_p_as_a_parameter(make):
    layer = make(mx.array(0.25))
    assert layer.parameters() == {} and layer.trainable_parameters() == {}
    assert "0.25" in repr(layer)
    model = mlx.nn.Sequential(mlx.nn.Linear(4, 4), layer)
    assert set(model.parameters()["layers"][0]) == {"weight", "bias"}
    assert model.parameters()["layers"][1] == {}
    # Set again later, as torch code does: still not a parameter.
    if hasattr(layer, "p"):
        layer.p = mx.array(0.5)
        assert layer.parameters() == {} and layer.p.item() == 0.5


# Every layer with every argument an mx.array (0-d), and the input shape it takes.
ALL_ARRAY_ARGUMENTS = [
    (nn.Dropout, (mx.array(0.25), mx.array(False)), (2, 8)),
    (nn.Dropout1d, (mx.array(0.25), mx.array(False)), (2, 4, 2)),
    (nn.Dropout2d, (mx.array(0.25), mx.array(True)), (2, 2, 2, 2)),
    (nn.Dropout3d, (mx.array(0.25), mx.array(False)), (2, 2, 1, 2, 2)),
    (nn.AlphaDropout, (mx.array(0.25), mx.array(True)), (2, 8)),
    (nn.FeatureAlphaDropout, (mx.array(0.25), mx.array(False)), (2, 4, 2)),
    (nn.StochasticDepth, (mx.array(0.25), "row"), (2, 8)),
    (nn.DropPath, (mx.array(0.25), mx.array(True)), (2, 8)),
    (nn.DropBlock2d, (mx.array(0.25), mx.array(3), mx.array(False), mx.array(1e-6)), (1, 1, 4, 4)),
    (
        nn.DropBlock3d,
        (mx.array(0.25), mx.array(1), mx.array(True), mx.array(1e-6)),
        (2, 1, 2, 2, 2),
    ),
    (nn.LockedDropout, (mx.array(0.25), mx.array(True)), (2, 4, 2)),
]


@pytest.mark.parametrize(
    ("cls", "args", "shape"),
    ALL_ARRAY_ARGUMENTS,
    ids=[case[0].__name__ for case in ALL_ARRAY_ARGUMENTS],
)
def test_no_layer_holds_any_argument_as_a_parameter(cls, args, shape):
    """Whatever the argument (p, inplace, block_size, eps, scale_by_keep, batch_first, a
    channel_dim): a 0-d array stays a plain attribute, and an optimizer's steps leave it."""
    has_channel_dim = "channel_dim" in inspect.signature(cls).parameters
    kwargs = {"channel_dim": mx.array(1)} if has_channel_dim else {}
    layer = cls(*args, **kwargs)
    assert layer.parameters() == {} and layer.trainable_parameters() == {} and len(layer) == 0
    arrays = {key: value for key, value in vars(layer).items() if isinstance(value, mx.array)}
    before = {key: np.array(value) for key, value in arrays.items()}
    assert len(before) == sum(isinstance(a, mx.array) for a in args) + len(kwargs)

    class Model(mlx.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = mlx.nn.Linear(4, 8)
            self.drop = layer

        def __call__(self, x):
            return self.drop(self.linear(x).reshape(shape))

    model = Model()
    optimizer = mlx.optimizers.Adam(learning_rate=1.0)
    loss_and_grad = mlx.nn.value_and_grad(model, lambda m, x: (m(x) ** 2).sum())
    for _ in range(3):
        _, grads = loss_and_grad(model, mx.ones((2, 4)))
        assert grads["drop"] == {}
        optimizer.update(model, grads)
        mx.eval(model.parameters())
    for key, value in before.items():
        assert np.array_equal(np.array(getattr(layer, key)), value), key


@pytest.mark.parametrize("make", LAYERS)
def test_a_parameter_cannot_be_set_as_a_dict_entry(make):
    layer = make(0.25)
    with pytest.raises(TypeError, match=r"holds no MLX parameters: layer\['p'\] = \.\.\."):
        layer["p"] = mx.array(0.9)
    assert layer.parameters() == {} and len(layer) == 0
    with pytest.raises(ValueError, match='does not have parameter named "p"'):
        layer.update({"p": mx.array(0.9)})


@pytest.mark.parametrize("make", LAYERS)
def test_train_refuses_a_mode_that_is_not_a_bool(make):
    layer = make(0.25)
    with pytest.raises(ValueError, match=r"^training mode is expected to be boolean$"):
        layer.train("yes")
    assert layer.train(False) is layer and layer.training is False
    assert layer.eval().training is False and layer.train().training is True


def test_set_rng_state_with_torchs_5056_bytes_keeps_mlxs_key():
    flashdrop.manual_seed(1)
    torch_part = flashdrop.get_rng_state()[:5056]
    flashdrop.manual_seed(2)
    key = np.array(mx.random.state[0])
    flashdrop.set_rng_state(torch_part)
    assert np.array_equal(np.array(mx.random.state[0]), key)
    assert np.array_equal(np.array(flashdrop.get_rng_state()[:5056]), np.array(torch_part))


@pytest.mark.parametrize("shape", [(5064,), (2, 2532), (8, 633), (5056,), (8, 632), (1, 5056)])
def test_set_rng_state_takes_any_shape_with_the_right_count_as_torch(shape):
    flashdrop.manual_seed(1)
    state = flashdrop.get_rng_state()[: math.prod(shape)]
    flashdrop.manual_seed(2)
    flashdrop.set_rng_state(state.reshape(shape))
    assert np.array_equal(np.array(flashdrop.get_rng_state()[: state.size]), np.array(state))


def _mlx_key():
    return np.array(mx.random.state[0]).copy()


@pytest.mark.parametrize(
    ("kwargs", "torch_stream_restored", "mlx_key_restored"),
    [
        ({}, True, True),
        ({"devices": [0]}, True, True),
        ({"devices": iter([0])}, True, True),
        ({"devices": []}, True, False),
        ({"enabled": False}, False, False),
        ({"device_type": "meta"}, False, False),
        ({"device_type": "cuda", "_caller": "x", "_devices_kw": "y"}, True, True),
        ({"device_type": "mps:0", "devices": []}, True, False),
    ],
    ids=repr,
)
def test_fork_rng_parameters(kwargs, torch_stream_restored, mlx_key_restored):
    flashdrop.manual_seed(4)
    before, key = np.array(flashdrop.get_rng_state()[:5056]), _mlx_key()
    with flashdrop.fork_rng(**kwargs):
        mx.random.uniform()
        with flashdrop.rng_mode("torch"):
            F.dropout(mx.ones(8))
    after = np.array(flashdrop.get_rng_state()[:5056])
    assert np.array_equal(after, before) is torch_stream_restored
    assert np.array_equal(_mlx_key(), key) is mlx_key_restored


def test_rank_above_64_in_both_modes():
    x = mx.ones([1] * 64 + [2, 8])
    for mode in flashdrop._random.MODES:
        with flashdrop.rng_mode(mode):
            assert F.dropout(x, 0.5).shape == x.shape
            assert F.feature_alpha_dropout(x, 0.5, True).shape == x.shape


def test_drop_path_keeps_a_bool_input_bool_in_mlx_mode():
    x = mx.ones((8, 3), dtype=mx.bool_)
    assert F.drop_path(x, 0.5, True, scale_by_keep=False).dtype == mx.bool_


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_])
def test_locked_dropout_of_an_int_or_bool_input_is_float32(dtype):
    y = F.locked_dropout(mx.ones((5, 4, 3), dtype=dtype), 0.5)
    assert y.dtype == mx.float32 and set(np.unique(np.array(y))) <= {0.0, 2.0}


def test_drop_block_of_an_int_input_is_float32_and_fails_in_place():
    x = mx.ones((2, 3, 6, 6), dtype=mx.int32)
    assert F.drop_block2d(x, 0.5, 3).dtype == mx.float32
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Int"):
        F.drop_block2d(x, 0.5, 3, inplace=True)


def test_block_size_of_numpy_int_and_bool():
    x = mx.ones((2, 3, 6, 6))
    assert F.drop_block2d(x, 0.5, np.int64(3)).shape == x.shape
    with pytest.raises(TypeError, match=r"^max_pool2d\(\): argument 'kernel_size'"):
        F.drop_block2d(x, 0.5, True)


def test_p_of_the_layers_beyond_torch_is_converted_or_refused_as_torchs():
    x = mx.ones((4, 3))
    assert F.drop_path(x, np.float16(0.0), True) is x
    with pytest.raises(TypeError, match=r"^drop_path\(\): argument 'drop_prob' \(position 2\)"):
        F.drop_path(x, fractions.Fraction(1, 2), True)


def test_a_0d_array_p_in_a_compiled_training_step_of_an_rnn():
    """An LSTM language model with locked and plain dropout, p given as 0-d arrays, trained with
    a compiled step: p stays out of the state the step updates, and keeps its value."""

    class Model(mlx.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = mlx.nn.Embedding(20, 8)
            self.locked = nn.LockedDropout(mx.array(0.3), batch_first=True)
            self.lstm = mlx.nn.LSTM(8, 8)
            self.drop = nn.Dropout(mx.array(0.2, mx.float16))
            self.out = mlx.nn.Linear(8, 20)

        def __call__(self, tokens):
            hidden, _ = self.lstm(self.locked(self.embed(tokens)))
            return self.out(self.drop(hidden))

    model = Model()
    optimizer = mlx.optimizers.Adam(learning_rate=0.1)
    state = [model.state, optimizer.state]

    def loss(model, tokens):
        return mlx.nn.losses.cross_entropy(model(tokens[:, :-1]), tokens[:, 1:]).mean()

    def train_step(tokens):
        value, grads = mlx.nn.value_and_grad(model, loss)(model, tokens)
        optimizer.update(model, grads)
        return value

    step = flashdrop.compile(train_step, inputs=state, outputs=state)
    tokens = mx.random.randint(0, 20, (4, 12))
    for _ in range(3):
        mx.eval(step(tokens), state)
    assert model.locked.p.item() == np.float32(0.3) and model.drop.p.item() == np.float16(0.2)
    assert "p" not in model.locked and "p" not in model.drop


# A p that a transformation traces cannot become a float: a clear TypeError, never a silent zero
# gradient or MLX's eval error.

TRACED_CALLS = {
    "grad": lambda f: mx.grad(lambda p: f(p).sum())(mx.array(0.3)),
    "value_and_grad": lambda f: mx.value_and_grad(lambda p: f(p).sum())(mx.array(0.3)),
    "grad of a function of p": lambda f: mx.grad(lambda q: f(q * 0.5).sum())(mx.array(0.6)),
    "vjp": lambda f: mx.vjp(f, [mx.array(0.3)], [mx.ones((2, 3, 4))]),
    "jvp": lambda f: mx.jvp(f, [mx.array(0.3)], [mx.array(1.0)]),
    "vmap": lambda f: mx.vmap(f)(mx.array([0.3, 0.4])),
    "compile": lambda f: mx.compile(f)(mx.array(0.3)),
    "compiled grad": lambda f: mx.compile(mx.grad(lambda p: f(p).sum()))(mx.array(0.3)),
}
TRACED_FUNCTIONS = {
    "dropout": (lambda p: F.dropout(mx.ones((2, 3, 4)), p), "dropout: p"),
    "dropout2d": (lambda p: F.dropout2d(mx.ones((2, 3, 4)), p), "dropout2d: p"),
    "alpha_dropout": (lambda p: F.alpha_dropout(mx.ones((2, 3, 4)), p, True), "alpha_dropout: p"),
    "drop_path": (lambda p: F.drop_path(mx.ones((2, 3, 4)), p, True), "drop_path: drop_prob"),
    "drop_block2d": (lambda p: F.drop_block2d(mx.ones((2, 3, 4, 1)), p, 1), "drop_block2d: p"),
    "stochastic_depth": (lambda p: F.stochastic_depth(mx.ones((2, 3)), p, "row"), "stochastic"),
    "locked_dropout": (lambda p: F.locked_dropout(mx.ones((2, 3, 4)), p), "locked_dropout: p"),
    "Dropout": (lambda p: nn.Dropout(p)(mx.ones((2, 3, 4))), "Dropout: p"),
    "DropPath": (lambda p: nn.DropPath(p)(mx.ones((2, 3, 4))), "DropPath: drop_prob"),
    "to_float": (lambda p: _checks.to_float(p, "dropout", "p", 2) * mx.ones(1), "dropout: p"),
}


@pytest.mark.parametrize("call", list(TRACED_CALLS))
@pytest.mark.parametrize("function", list(TRACED_FUNCTIONS))
def test_a_traced_p_is_refused_clearly(function, call):
    fn, start = TRACED_FUNCTIONS[function]
    with pytest.raises(TypeError, match=f"^{start}.* traced by a function transformation"):
        TRACED_CALLS[call](fn)


def test_an_array_p_that_is_not_traced_works_inside_transformations():
    """grad, vmap and compile over the input, with a constant 0-d array p: no refusal, and the
    gradient is the mask's (the kept elements' scale)."""
    p = mx.array(0.25)
    flashdrop.manual_seed(0)
    x = mx.ones((64,))
    grad = mx.grad(lambda x: F.dropout(x, p).sum())(x)
    assert set(np.unique(np.array(grad)).tolist()) == {0.0, np.float32(1) / np.float32(0.75)}
    assert mx.vmap(lambda x: F.dropout(x, p))(mx.ones((2, 8))).shape == (2, 8)
    assert flashdrop.compile(lambda x: F.dropout(x, p))(x).shape == (64,)


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.dropout(mx.ones(4), mx.array([0.3, 0.2])),
        lambda: F.dropout(mx.ones(4), 0.3, True, mx.array([True, False])),
        lambda: nn.Dropout(mx.array([0.3, 0.2])),
        lambda: F.drop_path(mx.ones((4, 2)), 0.3, mx.array([True, False])),
        lambda: F.drop_block2d(mx.ones((1, 1, 3, 3)), 0.3, 1, mx.array([True, False])),
        lambda: F.stochastic_depth(mx.ones((4, 2)), mx.array([0.3, 0.2]), "row"),
    ],
)
def test_arrays_of_more_than_one_value_are_ambiguous_as_torchs_tensors(call):
    with pytest.raises(RuntimeError, match=r"^Boolean value of Tensor with more than one value"):
        call()
