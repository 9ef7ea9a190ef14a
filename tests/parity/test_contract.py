"""flashdrop's public contract against real torch: signatures, errors, warnings, shapes, reprs.

Every expectation here is what torch itself does, observed at test time, never a string typed
into the test.
"""

import inspect
import math
import warnings

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop.nn.functional as F
from flashdrop import compat, nn
from tests._support.names import LAYERS
from tests._support.outcome import assert_same_outcome, outcome

# flashdrop's twins of torch.nn's layers; the other layers (torchvision's, timm's, AWD-LSTM's)
# are checked against torch implementations of their definitions in test_more_layers_parity.
# The dropout functions; scaled_dot_product_attention has its own file (test_attention_parity.py).
ATTENTION = "scaled_dot_product_attention"
FUNCTIONS = [name for name in F.__all__ if hasattr(TF, name) and name != ATTENTION]
MODULES = [
    name
    for name in nn.__all__
    if name != "functional" and hasattr(torch.nn, name) and name not in LAYERS
]
# The channel dropouts add a keyword-only `channel_dim` (default 1, torch's layout).
CHANNEL_DIM = inspect.Parameter("channel_dim", inspect.Parameter.KEYWORD_ONLY, default=1)


def torch_parameters(signature: inspect.Signature) -> list[inspect.Parameter]:
    """The parameters of one of our signatures that torch's has: all but `channel_dim`."""
    params = list(signature.parameters.values())
    if "channel_dim" in signature.parameters:
        assert params[-1].replace(annotation=inspect.Parameter.empty) == CHANNEL_DIM
        params = params[:-1]
    return params


def both(name):
    return getattr(TF, name), getattr(F, name)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signatures_match_torch(name):
    theirs, ours = (inspect.signature(f) for f in both(name))
    ours_torchs = torch_parameters(ours)
    assert [param.name for param in ours_torchs] == list(theirs.parameters)
    for param, twin in zip(ours_torchs, theirs.parameters.values(), strict=True):
        assert (param.kind, param.default) == (twin.kind, twin.default)
        if param.name != "input":  # torch.Tensor there, mx.array here
            assert param.annotation is twin.annotation


@pytest.mark.parametrize("name", MODULES)
def test_constructor_signatures_match_torch(name):
    ours = inspect.signature(getattr(nn, name))
    theirs = inspect.signature(getattr(torch.nn, name))
    assert ours.replace(parameters=torch_parameters(ours)) == theirs


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize(("p", "inplace"), [(0.5, False), (0.1, True), (1, False), (True, 0)])
def test_reprs_match_torch(name, p, inplace):
    assert repr(getattr(nn, name)(p, inplace)) == repr(getattr(torch.nn, name)(p, inplace))


DTYPES = [torch.float32, torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64]
PS = [0.0, 0.3, 1.0, -0.1, 1.5, math.nan, "0.5", None]
SHAPES = [(), (5,), (0,), (3, 4), (2, 3, 4), (2, 3, 4, 5), (1, 2, 3, 4, 5), (1, 2, 1, 1, 1, 1)]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("training", [True, False])
def test_errors_and_warnings_match_torch(name, shape, p, training):
    torch_fn, our_fn = both(name)
    x = torch.ones(shape)
    assert_same_outcome(
        outcome(torch_fn, x, p, training), outcome(our_fn, compat.to_mlx(x), p, training)
    )


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("inplace", [False, True])
def test_dtype_errors_match_torch(name, dtype, p, inplace):
    torch_fn, our_fn = both(name)
    shape = (2, 3, 4, 5) if name == "dropout3d" else (2, 3, 4)
    x = torch.ones(shape, dtype=dtype)
    theirs = outcome(torch_fn, x.clone(), p, True, inplace)
    ours = outcome(our_fn, compat.to_mlx(x), p, True, inplace)
    assert_same_outcome(theirs, ours)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan, "a", None])
def test_constructor_errors_match_torch(name, p):
    assert_same_outcome(outcome(getattr(torch.nn, name), p), outcome(getattr(nn, name), p))


def noise_axes(y: np.ndarray) -> tuple[bool, ...]:
    """For each axis, whether the mask of `y` (zero or not) varies along it."""
    mask = y != 0
    return tuple(bool((np.diff(mask, axis=axis) != 0).any()) for axis in range(mask.ndim))


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", [(8, 6), (8, 6, 10), (8, 6, 5, 4), (8, 6, 3, 4, 5)])
def test_output_shape_dtype_and_mask_granularity_match_torch(name, shape):
    """Same shape and dtype; the mask varies along the same axes (per element or per channel)."""
    torch_fn, our_fn = both(name)
    x = torch.ones(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = torch_fn(x, 0.5, True)
        except RuntimeError:
            pytest.skip("torch rejects this rank (checked in test_errors_and_warnings_match_torch)")
        ours = our_fn(compat.to_mlx(x), 0.5, True)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == mx.float32
    if "alpha" in name:  # dropped positions hold the alpha constant, not zero
        theirs, ours = theirs - theirs.min(), ours - ours.min()
    assert noise_axes(np.array(ours)) == noise_axes(theirs.numpy())
