"""torch's argument contract to the letter, against real torch: p and training of every type,
modules' p, train(mode), constructor errors, rank above 64, torch's own state, fork_rng, and the
layers beyond torch.nn on int and bool inputs and odd block sizes.

Each expectation is what torch (or the torch implementation of an original's definition, from
test_more_layers_parity) does at test time.
"""

import decimal
import fractions
import inspect
import math
import random
import warnings

import mlx.core as mx
import mlx.nn
import mlx.optimizers
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import _checks, compat, nn
from tests._support.bits import assert_same_bits, same_state, sample_input
from tests._support.names import FUNCTIONS, MODULE_OF
from tests._support.originals import (
    torch_drop_block,
    torch_drop_path,
    torch_locked_dropout,
    torch_stochastic_depth,
)
from tests._support.outcome import assert_same_outcome, outcome

SHAPE_OF = {"dropout1d": (2, 3, 4), "dropout3d": (2, 3, 2, 2, 2)}


def shape_for(name):
    return SHAPE_OF.get(name, (2, 3, 4, 5))


def same_p(value):
    """p for torch and for flashdrop: the same object, except a 0-d torch tensor, whose
    analogue is the 0-d mx.array of the same dtype and value."""
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.requires_grad:
        return value, compat.to_mlx(value)
    return value, value


# What a user may pass as p: accepted by torch (converted to a double) or refused.
P_VALUES = [
    0.3,
    0,
    1,
    True,
    False,
    np.float16(0.3),
    np.float32(0.3),
    np.float64(0.3),
    np.longdouble(0.3),
    np.int64(0),
    np.uint8(1),
    np.bool_(True),
    np.complex128(0.3 + 1j),
    torch.tensor(0.3),
    torch.tensor(0.3, dtype=torch.float16),
    torch.tensor(0.3, dtype=torch.bfloat16),
    torch.tensor(0.3, dtype=torch.float64),
    torch.tensor(0),
    torch.tensor(True),
    torch.tensor(0.3, requires_grad=True),  # refused: a tensor that requires grad
    torch.tensor([0.3]),
    torch.tensor([0.3, 0.2]),
    np.array(0.3),
    np.array([0.3]),
    fractions.Fraction(1, 2),
    decimal.Decimal("0.5"),
    np.float32(1.5),
    torch.tensor(-0.5),
]


def run_outcome(fn, x, p, training, mode=None):
    """outcome() of fn(x, p, training), with the result: torch's fn after torch.manual_seed(7)
    (mode None), or flashdrop's after flashdrop.manual_seed(7) in `mode`."""
    if mode is None:
        torch.manual_seed(7)
    else:
        flashdrop.manual_seed(7)
    with flashdrop.rng_mode(mode or "mlx"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = fn(x, p, training), None
        except Exception as exc:
            result, error = None, (type(exc), str(exc))
    return result, (error, [(w.category, str(w.message)) for w in caught])


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("p", P_VALUES, ids=repr)
@pytest.mark.parametrize("training", [True, False])
def test_p_of_every_type_as_torch(name, p, training):
    """Same error and warnings as torch, and in torch mode the same bits: torch range-checks p
    as given, then converts it to a double (np.float16(0.3) is 0.300048828125 from then on)."""
    torch_p, our_p = same_p(p)
    x = sample_input(shape_for(name), torch.float32)
    theirs, their_outcome = run_outcome(getattr(TF, name), x.clone(), torch_p, training)
    ours, our_outcome = run_outcome(getattr(F, name), compat.to_mlx(x), our_p, training, "torch")
    assert_same_outcome(their_outcome, our_outcome)
    if theirs is not None:
        assert_same_bits(ours, theirs)
        assert same_state()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_arrays_with_dimensions_are_refused_as_torch_refuses_tensors(name):
    """The analogue of torch's 'must be float, not Tensor' for a 1-element tensor."""
    x = torch.ones(shape_for(name))
    _, (their_error, _) = run_outcome(getattr(TF, name), x, torch.tensor([0.3]), True)
    _, (our_error, _) = run_outcome(
        getattr(F, name), compat.to_mlx(x), mx.array([0.3]), True, "torch"
    )
    assert our_error == (their_error[0], their_error[1].replace("Tensor", "array"))


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(
    "training", [1, 0, None, "yes", 1.0, np.bool_(True), torch.tensor(True)], ids=repr
)
def test_training_must_be_a_bool_as_in_torch(name, training):
    x = torch.ones(shape_for(name))
    theirs = outcome(getattr(TF, name), x, 0.5, training)
    assert theirs[0] is not None  # torch refuses it
    assert_same_outcome(theirs, outcome(getattr(F, name), compat.to_mlx(x), 0.5, training))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_p_is_checked_before_training_as_in_torch(name):
    x = torch.ones(shape_for(name))
    p = fractions.Fraction(1, 2)
    assert_same_outcome(
        outcome(getattr(TF, name), x, p, 1), outcome(getattr(F, name), compat.to_mlx(x), p, 1)
    )


def test_a_cache_that_remembered_the_wrong_p_would_fail():
    """The issue's case: after alpha dropout with np.float16(0.5), alpha dropout with 0.5."""
    x = sample_input((4, 64), torch.float32)
    for p in [np.float16(0.5), 0.5, np.float32(0.3), 0.3]:
        theirs, _ = run_outcome(TF.alpha_dropout, x.clone(), p, True)
        ours, _ = run_outcome(F.alpha_dropout, compat.to_mlx(x), p, True, "torch")
        assert_same_bits(ours, theirs)


# The long random program: every op, every float dtype, p of every accepted type, p values
# shared between types so that a cache keyed on p as given would hand one type's constants to
# another, checked bit for bit after every call.
PROGRAM_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
PROGRAM_P_KINDS = [
    float,
    np.float16,
    np.float32,
    np.float64,
    lambda v: torch.tensor(v),
    lambda v: torch.tensor(v, dtype=torch.float16),
    lambda v: torch.tensor(v, dtype=torch.float64),
]


def test_long_random_program_mixing_p_types_is_bit_exact():
    rng = random.Random(2024)
    torch.manual_seed(11)
    flashdrop.manual_seed(11)
    with flashdrop.rng_mode("torch"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropout2d's legacy-shape warning
        for step in range(400):
            name = rng.choice(FUNCTIONS)
            dtype = rng.choice(PROGRAM_DTYPES)
            value = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9, 1 / 3])
            torch_p, our_p = same_p(rng.choice(PROGRAM_P_KINDS)(value))
            x = sample_input(shape_for(name), dtype, seed=step)
            if rng.random() < 0.25:  # a module holding p as given
                module = MODULE_OF[name]
                theirs = getattr(torch.nn, module)(torch_p)(x.clone())
                ours = getattr(nn, module)(our_p)(compat.to_mlx(x))
            else:
                theirs = getattr(TF, name)(x.clone(), torch_p, True)
                ours = getattr(F, name)(compat.to_mlx(x), our_p, True)
            try:
                assert_same_bits(ours, theirs)
            except AssertionError as error:
                raise AssertionError(f"step {step}: {name} {dtype} p={our_p!r}") from error
    assert same_state()


# Modules.

MODULES = [MODULE_OF[name] for name in FUNCTIONS]
MODULE_P = [fractions.Fraction(1, 2), np.array(0.3), torch.tensor(0.3, requires_grad=True)]
MODULE_P += [np.float16(0.3), torch.tensor(0.3), torch.tensor([0.3, 0.2]), "a"]


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("p", MODULE_P, ids=repr)
def test_modules_keep_p_as_given_and_fail_in_forward_as_torch(module, p):
    torch_p, our_p = same_p(p)
    theirs = outcome(getattr(torch.nn, module), torch_p)
    assert_same_outcome(theirs, outcome(getattr(nn, module), our_p))
    if theirs[0] is not None:
        return
    torch_m, our_m = getattr(torch.nn, module)(torch_p), getattr(nn, module)(our_p)
    assert repr(our_m) == repr(torch_m)
    assert our_m.p is our_p
    x = torch.ones(shape_for(name_of(module)))
    torch.manual_seed(3)
    flashdrop.manual_seed(3)
    with flashdrop.rng_mode("torch"):
        assert_same_outcome(outcome(torch_m, x.clone()), outcome(our_m, compat.to_mlx(x)))


def name_of(module):
    return next(name for name in FUNCTIONS if MODULE_OF[name] == module)


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("mode", [1, 0, "yes", None, np.bool_(True), True, False], ids=repr)
def test_train_mode_must_be_a_bool_as_in_torch(module, mode):
    theirs, ours = getattr(torch.nn, module)(), getattr(nn, module)()
    assert_same_outcome(outcome(theirs.train, mode), outcome(ours.train, mode))
    assert ours.training == theirs.training


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((0.5, False, True), {}), ((), {"q": 0.5}), ((0.5,), {"p": 0.5}), ((), {"inplace": 1})],
)
def test_constructor_argument_errors_read_as_torch(module, args, kwargs):
    def build(cls):
        return lambda: cls(*args, **kwargs)

    assert_same_outcome(
        outcome(build(getattr(torch.nn, module))), outcome(build(getattr(nn, module)))
    )


@pytest.mark.parametrize("module", MODULES)
def test_a_0d_array_p_is_never_trained(module):
    """In a model with an optimizer: p stays out of the parameters and keeps its value."""

    shape = shape_for(name_of(module))

    class Model(mlx.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = mlx.nn.Linear(8, math.prod(shape) // 2)
            self.drop = getattr(nn, module)(mx.array(0.25))

        def __call__(self, x):
            return self.drop(self.linear(x).reshape(shape))

    model = Model()
    assert model.drop.trainable_parameters() == {} and model.drop.parameters() == {}
    keys = {key for key, _ in _flat(model.trainable_parameters())}
    assert keys == {"linear.weight", "linear.bias"}
    optimizer = mlx.optimizers.SGD(learning_rate=10.0)
    x = mx.random.normal((2, 8))
    loss_and_grad = mlx.nn.value_and_grad(model, lambda m, x: m(x).sum())
    for _ in range(3):
        _, grads = loss_and_grad(model, x)
        optimizer.update(model, grads)
    assert model.drop.p.item() == 0.25
    assert "p" not in model.drop


def _flat(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# Rank above 64, torch's own state, fork_rng.


@pytest.mark.parametrize("name", [name for name in FUNCTIONS if name != "dropout1d"])
def test_rank_above_64_in_torch_mode(name):
    x = torch.randn([1] * 64 + [3, 5])
    torch.manual_seed(5)
    flashdrop.manual_seed(5)
    with flashdrop.rng_mode("torch"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(TF, name)(x.clone(), 0.5, True)
        ours = getattr(F, name)(compat.to_mlx(x.reshape(-1)).reshape(x.shape), 0.5, True)
    assert ours.shape == tuple(theirs.shape) and ours.ndim == 66
    assert_same_bits(ours.reshape(-1), theirs.reshape(-1))
    assert same_state()


def test_set_rng_state_takes_torchs_own_state():
    torch.manual_seed(123)
    torch.rand(5)  # somewhere in the middle of the table
    key = np.array(mx.random.state[0])
    flashdrop.set_rng_state(compat.to_mlx(torch.get_rng_state()))
    assert np.array_equal(np.array(mx.random.state[0]), key)  # MLX's key untouched
    assert same_state()
    x = torch.ones(100)
    with flashdrop.rng_mode("torch"):
        assert_same_bits(F.dropout(compat.to_mlx(x), 0.3), TF.dropout(x, 0.3))


def test_set_rng_state_says_how_to_take_torchs_state():
    with pytest.raises(TypeError, match=r"compat\.to_mlx\(torch\.get_rng_state\(\)\)"):
        flashdrop.set_rng_state(torch.get_rng_state())


def test_fork_rng_has_torchs_signature():
    ours = inspect.signature(flashdrop.fork_rng)
    theirs = inspect.signature(torch.random.fork_rng)
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"enabled": False}, {"devices": []}, {"device_type": "meta"}],
    ids=repr,
)
def test_fork_rng_restores_the_cpu_stream_as_torch_does(kwargs):
    """torch's CPU generator stands for the torch-mode stream: restored unless enabled=False
    or device_type="meta", as torch's is."""
    torch.manual_seed(9)
    flashdrop.manual_seed(9)
    with torch.random.fork_rng(**kwargs):
        torch.rand(10)
    with flashdrop.fork_rng(**kwargs), flashdrop.rng_mode("torch"):
        F.dropout(mx.ones(5), 0.5)
    assert same_state()


# The layers beyond torch.nn on int and bool inputs, and on block sizes of other types.

BEYOND = {
    "stochastic_depth_row": (
        lambda x, p: torch_stochastic_depth(x, p, "row"),
        lambda x, p: F.stochastic_depth(x, p, "row"),
        (4, 3, 5),
    ),
    "stochastic_depth_batch": (
        lambda x, p: torch_stochastic_depth(x, p, "batch"),
        lambda x, p: F.stochastic_depth(x, p, "batch"),
        (4, 3, 5),
    ),
    "drop_path": (
        lambda x, p: torch_drop_path(x, p, True),
        lambda x, p: F.drop_path(x, p, True),
        (4, 3, 5),
    ),
    "drop_path_unscaled": (
        lambda x, p: torch_drop_path(x, p, True, False),
        lambda x, p: F.drop_path(x, p, True, False),
        (4, 3, 5),
    ),
    "drop_block2d": (
        lambda x, p: torch_drop_block(x, p, 3),
        lambda x, p: F.drop_block2d(x, p, 3),
        (2, 3, 6, 5),
    ),
    "drop_block2d_inplace": (
        lambda x, p: torch_drop_block(x, p, 3, inplace=True),
        lambda x, p: F.drop_block2d(x, p, 3, inplace=True),
        (2, 3, 6, 5),
    ),
    "drop_block3d": (
        lambda x, p: torch_drop_block(x, p, 3),
        lambda x, p: F.drop_block3d(x, p, 3),
        (2, 2, 4, 5, 3),
    ),
    "locked_dropout": (
        lambda x, p: torch_locked_dropout(x, p),
        lambda x, p: F.locked_dropout(x, p),
        (6, 3, 4),
    ),
}
INT_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.float32]


@pytest.mark.parametrize("case", list(BEYOND))
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
@pytest.mark.parametrize("p", [0.5, 1.0])
@pytest.mark.parametrize("mode", ["torch", "mlx"])
def test_layers_beyond_torch_on_int_and_bool_inputs(case, dtype, p, mode):
    """The original's error (after its draw: the streams stay in step), or its values (torch
    mode) and dtype (both modes); in place, the input as the original leaves it."""
    theirs_fn, ours_fn, shape = BEYOND[case]
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 4).to(dtype)
    xt, xm = x.clone(), compat.to_mlx(x)
    theirs, their_outcome = run_outcome(lambda x, p, _: theirs_fn(x, p), xt, p, None)
    ours, our_outcome = run_outcome(lambda x, p, _: ours_fn(x, p), xm, p, None, mode)
    assert_same_outcome(their_outcome, our_outcome)
    if mode == "mlx":
        if theirs is not None:
            assert compat.to_torch(ours).dtype == theirs.dtype
        return
    if theirs is not None:
        assert_same_bits(ours, theirs)
    assert_same_bits(xm, xt)  # in place or not, the input as the original leaves it
    assert same_state()


@pytest.mark.parametrize(
    "block_size",
    [np.int64(3), np.int32(1), True, False, 4],
    ids=repr,
)
@pytest.mark.parametrize("three_d", [False, True])
def test_block_size_of_other_types_as_torchvision(block_size, three_d):
    x = sample_input((2, 3, 5, 5, 6) if three_d else (2, 3, 6, 5), torch.float32)
    ours_fn = F.drop_block3d if three_d else F.drop_block2d
    theirs, their_outcome = run_outcome(torch_drop_block, x.clone(), 0.5, block_size)
    ours, our_outcome = run_outcome(ours_fn, compat.to_mlx(x), 0.5, block_size, "torch")
    assert_same_outcome(their_outcome, our_outcome)
    if theirs is not None:
        assert_same_bits(ours, theirs)
    assert same_state()


def test_a_float_block_size_fails_before_the_draw_as_in_torchvision():
    x = torch.ones(2, 3, 6, 5)
    _, (their_error, _) = run_outcome(torch_drop_block, x, 0.5, 3.0)
    _, (our_error, _) = run_outcome(F.drop_block2d, compat.to_mlx(x), 0.5, 3.0, "torch")
    assert their_error[0] is our_error[0] is TypeError
    assert same_state()


@pytest.mark.parametrize("p", [0.0, 0.5, 1 / 3])
def test_beyond_torch_p_converted_as_torchs_ops_convert_it(p):
    """np.float64 and 0-d arrays of p give the values a Python float gives."""
    x = sample_input((4, 3, 5), torch.float32)
    for value in [np.float64(p), torch.tensor(p, dtype=torch.float64)]:
        _, our_p = same_p(value)
        theirs, _ = run_outcome(lambda x, p, _: torch_drop_path(x, p, True), x.clone(), p, None)
        ours, _ = run_outcome(
            lambda x, p, _: F.drop_path(x, p, True), compat.to_mlx(x), our_p, None, "torch"
        )
        assert_same_bits(ours, theirs)


# In place, torch calls _VF.<op>_, whose name its messages give.


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(
    ("p", "training"),
    [(fractions.Fraction(1, 2), True), (0.5, 1), (np.array(0.3), None), (0.5, "yes")],
    ids=repr,
)
@pytest.mark.parametrize("inplace", [True, False, 1, "yes", np.bool_(True)], ids=repr)
def test_inplace_errors_name_torchs_inplace_op(name, p, training, inplace):
    x = torch.ones(shape_for(name))
    theirs = outcome(getattr(TF, name), x, p, training, inplace)
    assert theirs[0] is not None
    ours = outcome(getattr(F, name), compat.to_mlx(x), p, training, inplace)
    assert_same_outcome(theirs, ours)


# Arrays of more than one value (or none), where torch takes a tensor's truth value.


def ambiguous(values):
    """torch's tensor and flashdrop's array of the same values."""
    return torch.tensor(values), mx.array(values)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("values", [[0.3, 0.2], [True, False], []], ids=repr)
@pytest.mark.parametrize("where", ["p", "inplace"])
def test_arrays_of_many_values_are_ambiguous_as_in_torch(name, values, where):
    x = torch.ones(shape_for(name))
    theirs_value, our_value = ambiguous(values)
    args = {"p": 0.5, "training": True, "inplace": False}
    theirs = outcome(lambda: getattr(TF, name)(x.clone(), **{**args, where: theirs_value}))
    ours = outcome(lambda: getattr(F, name)(compat.to_mlx(x), **{**args, where: our_value}))
    assert theirs[0] is not None and theirs[0][0] is RuntimeError
    assert_same_outcome(theirs, ours)


@pytest.mark.parametrize("module", MODULES)
def test_a_module_with_a_many_valued_p_fails_as_torchs(module):
    theirs_p, our_p = ambiguous([0.3, 0.2])
    assert_same_outcome(
        outcome(getattr(torch.nn, module), theirs_p), outcome(getattr(nn, module), our_p)
    )


BEYOND_ARGUMENTS = {
    "stochastic_depth": (
        lambda x, p, training: torch_stochastic_depth(x, p, "row", training),
        lambda x, p, training: F.stochastic_depth(x, p, "row", training),
        (4, 3),
    ),
    "drop_path": (
        lambda x, p, training: torch_drop_path(x, p, training),
        lambda x, p, training: F.drop_path(x, p, training),
        (4, 3),
    ),
    "drop_block2d": (
        lambda x, p, training: torch_drop_block(x, p, 1, training=training),
        lambda x, p, training: F.drop_block2d(x, p, 1, training=training),
        (2, 2, 3, 3),
    ),
    "locked_dropout": (torch_locked_dropout, F.locked_dropout, (3, 2, 4)),
}


@pytest.mark.parametrize("case", list(BEYOND_ARGUMENTS))
@pytest.mark.parametrize("where", ["p", "training"])
def test_layers_beyond_torch_take_many_valued_arrays_as_the_originals(case, where):
    theirs_fn, ours_fn, shape = BEYOND_ARGUMENTS[case]
    x = torch.ones(shape)
    theirs_value, our_value = ambiguous([0.3, 0.2] if where == "p" else [True, False])
    args = {"p": 0.5, "training": True}
    theirs = outcome(lambda: theirs_fn(x.clone(), **{**args, where: theirs_value}))
    ours = outcome(lambda: ours_fn(compat.to_mlx(x), **{**args, where: our_value}))
    assert theirs[0] is not None and theirs[0][0] is RuntimeError
    assert_same_outcome(theirs, ours)


def test_drop_block_reads_inplace_after_its_draw_as_torchvision():
    x = torch.ones(2, 2, 5, 5)
    theirs_value, our_value = ambiguous([True, False])
    torch.manual_seed(4)
    flashdrop.manual_seed(4)
    theirs = outcome(torch_drop_block, x.clone(), 0.5, 3, theirs_value)
    with flashdrop.rng_mode("torch"):
        ours = outcome(F.drop_block2d, compat.to_mlx(x), 0.5, 3, our_value)
    assert theirs[0] is not None
    assert_same_outcome(theirs, ours)
    assert same_state()


# The types torch's messages name, and the tensors it takes.


class _Comparable:
    """Compares with floats (so that it passes the range check), and is no number."""

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return False


class _TensorSubclass(torch.Tensor):
    pass


@pytest.mark.parametrize(
    "value",
    [
        fractions.Fraction(1, 2),
        decimal.Decimal("0.5"),
        np.array(0.5),
        np.array([0.5]),
        torch.tensor([0.5]),
        _Comparable(),
        mx.array([0.5]),
        "0.5",
        None,
        [0.5],
        __import__("array").array("d", [0.5]),
        __import__("datetime").timedelta(0),
        mx.float32,
    ],
    ids=repr,
)
def test_refused_types_are_named_as_torchs_parser_names_them(value):
    """torch's parser itself (_VF, without the range check before it): its tp_name."""
    with pytest.raises(TypeError) as theirs:
        torch._VF.dropout(torch.ones(2), value, True)
    with pytest.raises(TypeError) as ours:
        _checks.to_float(value, "dropout", "p", 2)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "value",
    [
        torch.tensor(0.3).as_subclass(_TensorSubclass),
        torch.nn.Parameter(torch.tensor(0.3), requires_grad=False),
        torch.nn.Parameter(torch.tensor(0.3)),  # requires grad: refused
        torch.tensor([0.3]).as_subclass(_TensorSubclass),  # dimensions: refused
    ],
    ids=["0-d subclass", "0-d Parameter", "Parameter that requires grad", "1-d subclass"],
)
def test_tensor_subclasses_as_torch(value):
    x = sample_input((4, 6), torch.float32)
    theirs, their_outcome = run_outcome(TF.dropout, x.clone(), value, True)
    ours, our_outcome = run_outcome(F.dropout, compat.to_mlx(x), value, True, "torch")
    assert_same_outcome(their_outcome, our_outcome)
    if theirs is not None:
        assert_same_bits(ours, theirs)


def test_a_traced_p_is_refused_with_the_type_torch_refuses_a_p_that_requires_grad():
    x = torch.ones(4)
    their_error = outcome(TF.dropout, x, torch.tensor(0.3, requires_grad=True))[0]
    with pytest.raises(their_error[0], match="traced by a function transformation"):
        mx.grad(lambda p: F.dropout(compat.to_mlx(x), p).sum())(mx.array(0.3))


# torch.set_rng_state's rule: a uint8 tensor of 5056 elements, any shape.


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((5056,), torch.uint8),
        ((8, 632), torch.uint8),
        ((1, 5056), torch.uint8),
        ((5048,), torch.uint8),
        ((2, 2524), torch.uint8),
        ((), torch.uint8),
        ((5056,), torch.int8),
        ((5056,), torch.float32),
    ],
    ids=str,
)
def test_set_rng_state_checks_as_torch(shape, dtype):
    torch.manual_seed(21)
    state = torch.get_rng_state()
    theirs_state = state[: math.prod(shape)].reshape(shape).to(dtype)
    theirs = outcome(torch.set_rng_state, theirs_state)
    flashdrop.manual_seed(3)
    ours = outcome(flashdrop.set_rng_state, compat.to_mlx(theirs_state))
    assert_same_outcome(theirs, ours)
    if theirs[0] is None:
        assert same_state()


DEVICE_TYPES = ["foo", "gpu", "hpu", "meta", "cuda", "cuda:0", "mps:1", "cuda:", "cuda:01"]
DEVICE_TYPES += ["", None, 3, "cuda:3000000000", torch.device("cpu"), torch.device("meta")]
DEVICE_TYPES += ["CUDA", "cpu"]


@pytest.mark.parametrize("device_type", DEVICE_TYPES, ids=repr)
@pytest.mark.parametrize("enabled", [False, True])
def test_fork_rng_checks_device_type_as_torch_before_enabled(device_type, enabled):
    """devices=[]: the accelerators this machine lacks stay out of it."""

    def fork(fork_rng):
        def enter():
            with fork_rng(devices=[], enabled=enabled, device_type=device_type):
                pass

        return enter

    assert_same_outcome(outcome(fork(torch.random.fork_rng)), outcome(fork(flashdrop.fork_rng)))


@pytest.mark.parametrize(
    ("dtype", "same_masks"), [(torch.float64, True), (torch.float32, False)], ids=str
)
def test_the_known_difference_of_a_0d_tensor_p_beyond_torch(dtype, same_masks):
    """docs/argument-contract.md: timm, given a 0-d float64 tensor p, draws what flashdrop
    draws; given a float32 one, bernoulli_'s tensor overload draws other masks."""
    x = torch.ones(256, 3)
    p = torch.tensor(0.3, dtype=dtype)
    theirs, _ = run_outcome(lambda x, p, _: torch_drop_path(x, p, True), x.clone(), p, None)
    ours, _ = run_outcome(
        lambda x, p, _: F.drop_path(x, p, True), compat.to_mlx(x), compat.to_mlx(p), None, "torch"
    )
    assert np.array_equal(np.array(ours) != 0, theirs.numpy() != 0) is same_masks
