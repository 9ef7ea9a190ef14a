"""The six modules: construction, repr, training mode, nesting in MLX models."""

import math

import mlx.core as mx
import mlx.nn
import mlx.utils
import numpy as np
import pytest

import flashdrop
from flashdrop import nn

MODULES = [
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
]
INPUT_SHAPES = {
    nn.Dropout: (4, 6),
    nn.Dropout1d: (4, 6, 5),
    nn.Dropout2d: (4, 6, 5, 3),
    nn.Dropout3d: (4, 6, 5, 3, 2),
    nn.AlphaDropout: (4, 6),
    nn.FeatureAlphaDropout: (4, 6, 5),
}


@pytest.mark.parametrize("cls", MODULES)
def test_defaults_attributes_and_repr(cls):
    m = cls()
    assert (m.p, m.inplace, m.training) == (0.5, False, True)
    assert repr(m) == f"{cls.__name__}(p=0.5, inplace=False)"
    assert cls(p=0.2, inplace=True).extra_repr() == "p=0.2, inplace=True"


@pytest.mark.parametrize("cls", MODULES)
def test_is_an_mlx_module_without_parameters(cls):
    m = cls(0.3)
    assert isinstance(m, mlx.nn.Module)
    assert m.parameters() == {}
    assert m.trainable_parameters() == {}


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("p", [-0.5, 1.01])
def test_constructor_rejects_p_out_of_range(cls, p):
    with pytest.raises(
        ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"
    ):
        cls(p)


@pytest.mark.parametrize("cls", MODULES)
def test_nan_p_is_accepted_by_the_constructor_and_rejected_on_call(cls):
    m = cls(math.nan)  # as in torch: only the call checks for NaN
    with pytest.raises(RuntimeError, match="but got nan"):
        m(mx.ones(INPUT_SHAPES[cls]))


@pytest.mark.parametrize("cls", MODULES)
def test_train_and_eval_return_the_module_and_switch_mode(cls):
    m = cls(0.5)
    x = mx.random.normal(INPUT_SHAPES[cls])
    assert m.eval() is m and m.training is False
    assert m(x) is x and m.forward(x) is x
    assert m.train() is m and m.training is True
    assert not np.array_equal(np.array(m(x)), np.array(x))
    m.training = False  # torch code assigns the flag too
    assert m(x) is x


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d])
def test_call_equals_functional_with_same_state(cls):
    m = cls(0.4)
    x = mx.random.normal(INPUT_SHAPES[cls])
    fn = getattr(flashdrop.nn.functional, cls.__name__.lower())
    with flashdrop.fork_rng():
        expected = fn(x, 0.4)
    assert np.array_equal(np.array(m(x)), np.array(expected))


@pytest.mark.parametrize("cls", [nn.AlphaDropout, nn.FeatureAlphaDropout])
def test_alpha_modules_ignore_inplace(cls):
    x = mx.random.normal(INPUT_SHAPES[cls])
    before = np.array(x)
    y = cls(0.5, inplace=True)(x)
    assert y is not x
    assert np.array_equal(np.array(x), before)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d])
def test_inplace_modules_write_into_the_input(cls):
    x = mx.random.normal(INPUT_SHAPES[cls])
    assert cls(0.5, inplace=True)(x) is x


class _Model(mlx.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = mlx.nn.Sequential(mlx.nn.Linear(8, 8), nn.Dropout(0.5), mlx.nn.ReLU())
        self.head = nn.AlphaDropout(0.2)

    def __call__(self, x):
        return self.head(self.body(x))


def test_follows_train_and_eval_of_an_enclosing_mlx_model():
    model = _Model()
    model.eval()
    assert not model.body.layers[1].training and not model.head.training
    x = mx.random.normal((16, 8))
    assert np.array_equal(np.array(model(x)), np.array(model(x))), "eval is deterministic"
    model.train()
    assert model.body.layers[1].training and model.head.training
    assert not np.array_equal(np.array(model(x)), np.array(model(x))), "train draws fresh masks"


def test_nested_dropout_adds_no_parameters_and_shows_in_repr():
    model = _Model()
    names = [name for name, _ in mlx.utils.tree_flatten(model.parameters())]
    assert names == ["body.layers.0.weight", "body.layers.0.bias"]
    assert "(layers.1): Dropout(p=0.5, inplace=False)" in repr(model)


# The guarantee MLX users rely on when they swap layers: in mlx mode, after the same
# mx.random.seed, the same bits as MLX's own layers (channels last for the channel ones).
SWAPS = [
    (lambda p: nn.Dropout(p), mlx.nn.Dropout, [(64, 33), (7,), (2, 3, 4, 5)]),
    (lambda p: nn.Dropout2d(p, channel_dim=-1), mlx.nn.Dropout2d, [(4, 5, 6, 7), (5, 6, 7)]),
    (lambda p: nn.Dropout3d(p, channel_dim=-1), mlx.nn.Dropout3d, [(2, 3, 4, 5, 6), (3, 4, 5, 6)]),
]


@pytest.mark.parametrize(("ours", "theirs", "shapes"), SWAPS, ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("p", [0.1, 0.15, 1 / 3, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_mlx_mode_returns_what_mlx_nn_layers_return(ours, theirs, shapes, p, dtype):
    for shape in shapes:
        # Finite and infinite values, both signs: -0.0, NaN where dropped come out alike too.
        x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype) * 3
        x = mx.where(mx.abs(x) > 5, mx.array(float("inf"), dtype) * mx.sign(x), x)
        outputs = {}
        for name, layer in (("ours", ours(p)), ("theirs", theirs(p))):
            mx.random.seed(21)
            # Three calls: the first of a shape runs uncompiled, the later ones compiled.
            outputs[name] = [
                np.array(layer(x).view(mx.uint16 if dtype != mx.float32 else mx.uint32))
                for _ in range(3)
            ]
        assert all(
            np.array_equal(a, b) for a, b in zip(outputs["ours"], outputs["theirs"], strict=True)
        ), shape
