"""flashdrop.nn's Transformer family against torch 2.13's (CPU).

Each case loads torch's state_dict with no renaming, then checks in torch random mode the draws
(shape, p, mask, in order), outputs within float32 rounding (see _support.layers), the generator
left where torch leaves it, evaluation, gradients, and in mlx mode flashdrop.compile and
flashdrop.checkpoint; over batch_first, norm_first, masks of every kind, num_layers 1 to 3 and
unbatched inputs. Constructor warnings and errors are torch's, observed at test time.
"""

import inspect
import warnings

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

D, HEADS, FF, N, S, T = 16, 4, 24, 3, 6, 5


def quietly(fn, *args, **kwargs):
    """Build a module, without torch's (and our) nested-tensor warning, tested on its own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def sequence(length: int, batch_first: bool, gen: torch.Generator, batched: bool = True):
    if not batched:
        return torch.randn(length, D, generator=gen)
    shape = (N, length, D) if batch_first else (length, N, D)
    return torch.randn(shape, generator=gen)


def mask_kwargs(kind: str, prefix: str, length: int, gen: torch.Generator) -> dict:
    padding = torch.rand(N, length, generator=gen) < 0.3
    padding[:, 0] = False  # every sample keeps a key (torch's math and fused paths agree)
    causal = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
    mask_name = "mask" if prefix == "" else f"{prefix}_mask"
    pad_name = f"{prefix or 'src'}_key_padding_mask"
    return {
        "none": {},
        "bool": {mask_name: torch.rand(length, length, generator=gen) < 0.3, pad_name: padding},
        "float": {mask_name: torch.randn(length, length, generator=gen), pad_name: padding.float()},
        "causal": {mask_name: causal},
        "causal bool": {mask_name: causal == float("-inf")},
    }[kind]


def with_masks(fn, kwargs: dict, mlx_side: bool):
    values = {k: mlx_(v) if mlx_side else v for k, v in kwargs.items()}
    return lambda *xs: fn(*xs, **values)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float", "causal"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_encoder_matches_torch(batch_first, norm_first, masks, num_layers):
    gen = torch.Generator().manual_seed(num_layers)
    args = (D, HEADS, FF, 0.2)
    kw = {"batch_first": batch_first, "norm_first": norm_first, "activation": "gelu"}
    torch_encoder = quietly(
        torch.nn.TransformerEncoder,
        torch.nn.TransformerEncoderLayer(*args, **kw),
        num_layers,
        torch.nn.LayerNorm(D),
    )
    layer = nn.TransformerEncoderLayer(*args, **kw)
    port = twin(torch_encoder, quietly, nn.TransformerEncoder, layer, num_layers, nn_layer_norm())
    x = sequence(S, batch_first, gen)
    kwargs = mask_kwargs(masks, "", S, gen)
    key = "mask" if "mask" in kwargs else None
    kwargs = {("mask" if k == key else k): v for k, v in kwargs.items()}
    assert_same(with_masks(torch_encoder, kwargs, False), with_masks(port, kwargs, True), x)
    torch_encoder.eval(), port.eval()
    assert_same(with_masks(torch_encoder, kwargs, False), with_masks(port, kwargs, True), x)


def nn_layer_norm():
    import mlx.nn

    return mlx.nn.LayerNorm(D)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float", "causal bool"])
def test_layers_match_torch(batch_first, norm_first, masks):
    gen = torch.Generator().manual_seed(2)
    args = (D, HEADS, FF, 0.3)
    kw = {"batch_first": batch_first, "norm_first": norm_first}
    torch_encoder_layer = torch.nn.TransformerEncoderLayer(*args, **kw)
    encoder_layer = twin(torch_encoder_layer, nn.TransformerEncoderLayer, *args, **kw)
    x = sequence(S, batch_first, gen)
    src = mask_kwargs(masks, "src", S, gen)
    assert_same(
        with_masks(torch_encoder_layer, src, False), with_masks(encoder_layer, src, True), x
    )

    torch_decoder_layer = torch.nn.TransformerDecoderLayer(*args, **kw)
    decoder_layer = twin(torch_decoder_layer, nn.TransformerDecoderLayer, *args, **kw)
    tgt, memory = sequence(T, batch_first, gen), sequence(S, batch_first, gen)
    kwargs = {**mask_kwargs(masks, "tgt", T, gen)}
    memory_padding = torch.rand(N, S, generator=gen) < 0.3
    memory_padding[:, 0] = False
    kwargs["memory_key_padding_mask"] = memory_padding
    assert_same(
        with_masks(torch_decoder_layer, kwargs, False),
        with_masks(decoder_layer, kwargs, True),
        tgt,
        memory,
    )


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_transformer_matches_torch(batch_first, num_layers):
    gen = torch.Generator().manual_seed(5)
    kw = {
        "d_model": D,
        "nhead": HEADS,
        "num_encoder_layers": num_layers,
        "num_decoder_layers": num_layers + 1,
        "dim_feedforward": FF,
        "dropout": 0.25,
        "batch_first": batch_first,
    }
    torch_model = quietly(torch.nn.Transformer, **kw)
    port = twin(torch_model, quietly, nn.Transformer, **kw)
    src, tgt = sequence(S, batch_first, gen), sequence(T, batch_first, gen)
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(T)
    kwargs = {"tgt_mask": tgt_mask, "src_key_padding_mask": torch.rand(N, S, generator=gen) < 0.2}
    kwargs["src_key_padding_mask"][:, 0] = False
    assert_same(with_masks(torch_model, kwargs, False), with_masks(port, kwargs, True), src, tgt)


def test_unbatched_inputs_match_torch():
    gen = torch.Generator().manual_seed(6)
    kw = {"d_model": D, "nhead": HEADS, "num_encoder_layers": 2, "num_decoder_layers": 2}
    kw |= {"dim_feedforward": FF, "dropout": 0.3, "batch_first": True, "norm_first": True}
    torch_model = quietly(torch.nn.Transformer, **kw)
    port = twin(torch_model, quietly, nn.Transformer, **kw)
    src, tgt = sequence(S, True, gen, batched=False), sequence(T, True, gen, batched=False)
    kwargs = {"tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(T)}
    assert_same(with_masks(torch_model, kwargs, False), with_masks(port, kwargs, True), src, tgt)


def test_gradients_compile_and_checkpoint():
    gen = torch.Generator().manual_seed(7)
    args, kw = (D, HEADS, FF, 0.2), {"batch_first": True}
    torch_layer = torch.nn.TransformerDecoderLayer(*args, **kw)
    port = twin(torch_layer, nn.TransformerDecoderLayer, *args, **kw)
    tgt, memory = sequence(T, True, gen), sequence(S, True, gen)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T)

    weights = torch.randn(N, T, D, generator=gen)  # (a sum of squares after a LayerNorm is fixed)

    def torch_loss(tgt, memory):
        return (torch_layer(tgt, memory, tgt_mask=causal, tgt_is_causal=True) * weights).sum()

    def port_loss(tgt, memory):
        out = port(tgt, memory, tgt_mask=mlx_(causal), tgt_is_causal=True)
        return (out * mlx_(weights)).sum()

    assert_same_gradients(torch_layer, port, torch_loss, port_loss, tgt, memory)
    assert_compiles_and_checkpoints(port, port_loss, tgt, memory)


NAMES = [
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
]


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_torch(name):
    def params(fn, skip=("device", "dtype")):
        return [
            (p.name, p.default)
            for p in inspect.signature(fn).parameters.values()
            if p.name not in skip
        ]

    theirs, ours = getattr(torch.nn, name), getattr(nn, name)
    expected = params(theirs.__init__)
    # torch's default activation is the function F.relu, which it names "relu"
    expected = [(k, "relu" if k == "activation" else v) for k, v in expected]
    assert params(ours.__init__) == expected
    assert params(ours.forward) == params(theirs.forward)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_first": False},
        {"batch_first": True, "norm_first": True},
        {"batch_first": True, "bias": False},
        {"batch_first": True, "nhead": 3, "d_model": 12},
        {"batch_first": True, "activation": "gelu"},
        {"batch_first": True, "activation": "tanh"},
        {"batch_first": True, "layer_norm_eps": 1e-6},
        {"batch_first": True},
    ],
    ids=str,
)
def test_construction_warnings_and_errors_match_torch(kwargs):
    kwargs = {"d_model": D, "nhead": HEADS, **kwargs}
    their_layer = outcome(lambda: torch.nn.TransformerEncoderLayer(**kwargs))
    assert_same_outcome(their_layer, outcome(lambda: nn.TransformerEncoderLayer(**kwargs)))
    if their_layer[0] is None:
        theirs = outcome(
            lambda: torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kwargs), 2)
        )
        ours = outcome(lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(**kwargs), 2))
        assert_same_outcome(theirs, ours)


def test_call_errors_and_masks_helpers_match_torch():
    torch_model = quietly(torch.nn.Transformer, D, HEADS, 1, 1, FF)
    port = quietly(nn.Transformer, D, HEADS, 1, 1, FF)
    for src, tgt in [((S, N, D), (T, N + 1, D)), ((S, N, D), (T, N, D + 1))]:
        x, y = torch.randn(src), torch.randn(tgt)
        assert_same_outcome(outcome(torch_model, x, y), outcome(port, mlx_(x), mlx_(y)))
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(4)
    assert (nn.Transformer.generate_square_subsequent_mask(4).tolist()) == theirs.tolist()
    padding, mask = torch.zeros(N, S, dtype=torch.bool), torch.zeros(S, S)
    layer = torch.nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True)
    ours = twin(layer, nn.TransformerEncoderLayer, D, HEADS, FF, batch_first=True)
    x = torch.randn(N, S, D)
    assert_same_outcome(
        outcome(lambda: layer(x, src_mask=mask, src_key_padding_mask=padding)),
        outcome(lambda: ours(mlx_(x), src_mask=mlx_(mask), src_key_padding_mask=mlx_(padding))),
    )


def test_state_dict_names_and_shapes_are_torchs():
    from mlx.utils import tree_flatten

    for kw in ({}, {"bias": False}):
        theirs = quietly(torch.nn.Transformer, D, HEADS, 2, 1, FF, **kw).state_dict()
        ours = dict(tree_flatten(quietly(nn.Transformer, D, HEADS, 2, 1, FF, **kw).parameters()))
        assert {k: tuple(v.shape) for k, v in theirs.items()} == {
            k: tuple(v.shape) for k, v in ours.items()
        }
