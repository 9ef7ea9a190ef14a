"""flashdrop.nn.RNN, LSTM and GRU against torch 2.13's (CPU).

Each case loads torch's state_dict with no renaming, then checks in torch random mode the dropout
between layers (shape, p, mask, in order: (L, N, H * directions) also with batch_first), outputs
and final states within float32 rounding (see _support.layers), the generator left where torch
leaves it, evaluation, gradients, and in mlx mode flashdrop.compile and flashdrop.checkpoint; over
num_layers 1 to 3, bidirectional, batch_first, proj_size, given initial states and unbatched
inputs. Errors, warnings and reprs are torch's.
"""

import warnings

import mlx.core as mx
import pytest
import torch

from flashdrop import nn
from tests._support.layers import (
    assert_compiles_and_checkpoints,
    assert_same,
    assert_same_gradients,
    mlx_,
    twin,
)
from tests._support.outcome import assert_same_outcome, outcome

IN, HIDDEN, N, L = 5, 7, 3, 6
KINDS = {
    "RNN": {},
    "RNN relu": {"nonlinearity": "relu"},
    "GRU": {},
    "LSTM": {},
    "LSTM proj_size": {"proj_size": 4},
}


def build(kind: str, **options):
    cls = kind.split()[0]
    kwargs = {**KINDS[kind], **options}
    with warnings.catch_warnings():
        # torch's oneDNN warns that it does not run projections (neither do we)
        warnings.filterwarnings("ignore", "LSTM with projections")
        torch_rnn = getattr(torch.nn, cls)(IN, HIDDEN, **kwargs)
    return torch_rnn, twin(torch_rnn, getattr(nn, cls), IN, HIDDEN, **kwargs)


def quiet(fn):
    def call(*args):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "LSTM with projections")
            return fn(*args)

    return call


def initial_state(kind, torch_rnn, batch, gen):
    directions = 2 if torch_rnn.bidirectional else 1
    out = torch_rnn.proj_size or HIDDEN
    shape = (torch_rnn.num_layers * directions, *batch)
    h = torch.randn(*shape, out, generator=gen)
    if kind.startswith("LSTM"):
        return (h, torch.randn(*shape, HIDDEN, generator=gen))
    return (h,)


def from_state(rnn):
    """``rnn`` called on (x, h) or (x, h, c): the comparison passes arrays, not tuples."""
    lstm = type(rnn).__name__ == "LSTM"
    return quiet(lambda x, *state: rnn(x, state if lstm else state[0]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_matches_torch(kind, num_layers, bidirectional, batch_first):
    gen = torch.Generator().manual_seed(num_layers)
    options = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}
    options["dropout"] = 0.3 if num_layers > 1 else 0.0
    torch_rnn, port = build(kind, **options)
    x = torch.randn((N, L, IN) if batch_first else (L, N, IN), generator=gen)
    assert_same(quiet(torch_rnn), port, x)
    hx = initial_state(kind, torch_rnn, (N,), gen)
    assert_same(from_state(torch_rnn), from_state(port), x, *hx)
    torch_rnn.eval(), port.eval()
    assert_same(quiet(torch_rnn), port, x)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_inputs_match_torch(kind, batch_first):
    gen = torch.Generator().manual_seed(9)
    options = {"num_layers": 2, "dropout": 0.5, "bidirectional": True, "batch_first": batch_first}
    torch_rnn, port = build(kind, **options)
    x = torch.randn(L, IN, generator=gen)
    assert_same(quiet(torch_rnn), port, x)
    hx = initial_state(kind, torch_rnn, (), gen)
    assert_same(from_state(torch_rnn), from_state(port), x, *hx)


@pytest.mark.parametrize("kind", ["GRU", "LSTM proj_size"])
def test_gradients_compile_and_checkpoint(kind):
    gen = torch.Generator().manual_seed(4)
    options = {"num_layers": 2, "dropout": 0.3, "bidirectional": True, "batch_first": True}
    torch_rnn, port = build(kind, **options)
    x = torch.randn(N, L, IN, generator=gen)
    weights = torch.randn(N, L, 2 * (torch_rnn.proj_size or HIDDEN), generator=gen)

    def torch_loss(x):
        return (quiet(torch_rnn)(x)[0] * weights).sum()

    def port_loss(x):
        return (port(x)[0] * mlx_(weights)).sum()

    assert_same_gradients(torch_rnn, port, torch_loss, port_loss, x)
    assert_compiles_and_checkpoints(port, port_loss, x)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"dropout": 0.5},
        {"dropout": 0.5, "num_layers": 2},
        {"dropout": 1.5},
        {"dropout": -0.1},
        {"dropout": True},
        {"dropout": "0.1"},
        {"bias": 1},
        {"batch_first": None},
        {"input_size": 2.0},
        {"input_size": 0},
        {"hidden_size": 3.0},
        {"hidden_size": 0},
        {"num_layers": 0},
        {"nonlinearity": "sigmoid"},
        {"proj_size": -1},
        {"proj_size": 7},
        {"proj_size": 3},
        {"proj_size": 0},
    ],
    ids=str,
)
def test_constructor_errors_and_warnings_match_torch(cls, kwargs):
    if "nonlinearity" in kwargs and cls != "RNN":
        pytest.skip("an RNN argument")
    args = {"input_size": IN, "hidden_size": HIDDEN, **kwargs}
    theirs = outcome(lambda: getattr(torch.nn, cls)(**args))
    ours = outcome(lambda: getattr(nn, cls)(**args))
    assert_same_outcome(theirs, ours)
    if theirs[0] is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # compared above
            their_repr = repr(getattr(torch.nn, cls)(**args))
            assert repr(getattr(nn, cls)(**args)).startswith(their_repr.partition(")")[0])


@pytest.mark.parametrize("cls", ["RNN", "GRU"])
@pytest.mark.parametrize("kwargs", [{"proj_size": 2, "projection": 2}, {"projection": 2}], ids=str)
def test_rnn_and_gru_refuse_other_keywords_as_torch(cls, kwargs):
    # torch's RNN and GRU take **kwargs: proj_size first (a ValueError), then RNNBase's TypeError
    args = {"input_size": IN, "hidden_size": HIDDEN, **kwargs}
    theirs = outcome(lambda: getattr(torch.nn, cls)(**args))
    assert_same_outcome(theirs, outcome(lambda: getattr(nn, cls)(**args)))


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize(
    "case",
    [
        "4-D input",
        "input size",
        "dtype",
        "hx dims",
        "unbatched hx dims",
        "hidden size",
        "cell size",
    ],
)
def test_call_errors_match_torch(cls, case):
    torch_rnn = getattr(torch.nn, cls)(IN, HIDDEN, num_layers=2)
    port = twin(torch_rnn, getattr(nn, cls), IN, HIDDEN, num_layers=2)
    x = torch.randn(L, N, IN)
    h = torch.zeros(2, N, HIDDEN)
    hx = {
        "hx dims": h[0],
        "unbatched hx dims": h,
        "hidden size": h[:1],
        "cell size": h,
    }.get(case)
    if case == "4-D input":
        x = x[None]
    elif case == "input size":
        x = torch.randn(L, N, IN + 1)
    elif case == "dtype":
        x = x.double()
    elif case == "unbatched hx dims":
        x = x[:, 0]
    if cls == "LSTM" and hx is not None:
        hx = (hx, h[:, :, :3] if case == "cell size" else h)
    elif case == "cell size":
        pytest.skip("LSTM only")
    theirs = outcome(lambda: torch_rnn(x, hx))
    convert = (lambda v: tuple(mlx_(t) for t in v)) if isinstance(hx, tuple) else mlx_
    ours = outcome(lambda: port(mlx_(x), None if hx is None else convert(hx)))
    assert_same_outcome(theirs, ours)


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_names_and_shapes_are_torchs(kind):
    from mlx.utils import tree_flatten

    for options in ({"num_layers": 3, "bidirectional": True}, {"bias": False, "num_layers": 2}):
        torch_rnn, port = build(kind, **options)
        ours = dict(tree_flatten(port.parameters()))
        assert {k: tuple(v.shape) for k, v in torch_rnn.state_dict().items()} == {
            k: tuple(v.shape) for k, v in ours.items()
        }


def test_packed_sequences_are_refused_with_a_clear_error():
    packed = torch.nn.utils.rnn.pack_sequence([torch.ones(3, IN), torch.ones(2, IN)])
    with pytest.raises(TypeError, match=r"must be an mlx.core.array, but got PackedSequence: "):
        nn.LSTM(IN, HIDDEN)(packed)
    with pytest.raises(TypeError, match=r"pad the sequences"):
        nn.GRU(IN, HIDDEN)(packed)
    assert nn.RNN(IN, HIDDEN)(mx.ones((L, IN)))[0].shape == (L, HIDDEN)
