"""The argument contract without torch: the conversion at the boundary, modules' p, train(mode),
set_rng_state with torch's 5056 bytes, fork_rng's parameters (tests/parity compares all of these
with real torch)."""

import fractions
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
        ({"device_type": "gpu", "_caller": "x", "_devices_kw": "y"}, True, True),
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
