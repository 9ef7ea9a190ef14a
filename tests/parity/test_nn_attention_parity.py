"""flashdrop.nn.MultiheadAttention against torch 2.13's nn.MultiheadAttention (CPU).

Each case loads torch's state_dict with no renaming, then checks in torch random mode: the same
draws in the same order (shape, p, mask), outputs within float32 rounding (see _support.layers),
the generator left where torch leaves it; evaluation (no draw, torch's output); gradients; and in
mlx mode flashdrop.compile (fresh masks) and flashdrop.checkpoint (replayed masks). Errors and
warnings are torch's, observed at test time.
"""

import inspect

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

E, HEADS, N, L, S = 16, 4, 3, 5, 6
MASKS = [
    "none",
    "bool attn_mask",
    "float attn_mask",
    "3-D attn_mask",
    "bool key_padding_mask",
    "float key_padding_mask",
    "both bool",
    "both float",
    "is_causal",
    "is_causal and key_padding_mask",
]


def masks(kind: str, length: int, source: int, gen: torch.Generator) -> dict:
    """The mask arguments of a call (True: masked out, as torch); some rows fully masked."""
    attn = torch.rand(length, source, generator=gen) < 0.3
    padding = torch.rand(N, source, generator=gen) < 0.3
    padding[0] = True  # a sample whose every key is padding

    def as_float(m):
        return torch.zeros(m.shape).masked_fill(m, -1e9) + torch.randn(m.shape, generator=gen)

    causal = torch.triu(torch.full((length, source), float("-inf")), diagonal=1)
    return {
        "none": {},
        "bool attn_mask": {"attn_mask": attn},
        "float attn_mask": {"attn_mask": as_float(attn)},
        "3-D attn_mask": {"attn_mask": torch.rand(N * HEADS, length, source, generator=gen) < 0.3},
        "bool key_padding_mask": {"key_padding_mask": padding},
        "float key_padding_mask": {"key_padding_mask": as_float(padding)},
        "both bool": {"attn_mask": attn, "key_padding_mask": padding},
        "both float": {"attn_mask": as_float(attn), "key_padding_mask": as_float(padding)},
        "is_causal": {"attn_mask": causal, "is_causal": True},
        "is_causal and key_padding_mask": {
            "attn_mask": causal == float("-inf"),
            "is_causal": True,
            "key_padding_mask": padding,
        },
    }[kind]


def calls(torch_attn, port, kwargs: dict, self_attention: bool = True):
    """The two sides' calls, on (query, key, value) or (x,) for self-attention."""
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    flags = {k: v for k, v in kwargs.items() if k not in tensors}
    ported = {k: mlx_(v) for k, v in tensors.items()}
    if self_attention:
        return (
            lambda x: torch_attn(x, x, x, **tensors, **flags),
            lambda x: port(x, x, x, **ported, **flags),
        )
    return (
        lambda q, k, v: torch_attn(q, k, v, **tensors, **flags),
        lambda q, k, v: port(q, k, v, **ported, **flags),
    )


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask", MASKS)
def test_self_attention_matches_torch(batch_first, need_weights, mask):
    gen = torch.Generator().manual_seed(len(mask))
    torch_attn = torch.nn.MultiheadAttention(E, HEADS, dropout=0.3, batch_first=batch_first)
    port = twin(torch_attn, nn.MultiheadAttention, E, HEADS, dropout=0.3, batch_first=batch_first)
    x = torch.randn(N, L, E, generator=gen) if batch_first else torch.randn(L, N, E, generator=gen)
    kwargs = {**masks(mask, L, L, gen), "need_weights": need_weights}
    assert_same(*calls(torch_attn, port, kwargs), x)
    torch_attn.eval(), port.eval()
    assert_same(*calls(torch_attn, port, kwargs), x)


@pytest.mark.parametrize(
    "options",
    [
        {"kdim": 8, "vdim": 12},
        {"add_bias_kv": True},
        {"add_zero_attn": True},
        {"add_bias_kv": True, "add_zero_attn": True, "bias": False},
        {"kdim": 8, "vdim": 12, "add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
    ],
    ids=str,
)
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask", ["none", "both bool", "both float"])
@pytest.mark.parametrize("average_attn_weights", [True, False])
def test_cross_attention_options_match_torch(options, need_weights, mask, average_attn_weights):
    gen = torch.Generator().manual_seed(7)
    torch_attn = torch.nn.MultiheadAttention(E, HEADS, dropout=0.2, **options)
    port = twin(torch_attn, nn.MultiheadAttention, E, HEADS, dropout=0.2, **options)
    batch = (lambda *s: (s[1], s[0], s[2])) if options.get("batch_first") else (lambda *s: s)
    q = torch.randn(*batch(L, N, E), generator=gen)
    k = torch.randn(*batch(S, N, options.get("kdim", E)), generator=gen)
    v = torch.randn(*batch(S, N, options.get("vdim", E)), generator=gen)
    kwargs = {
        **masks(mask, L, S, gen),
        "need_weights": need_weights,
        "average_attn_weights": average_attn_weights,
    }
    assert_same(*calls(torch_attn, port, kwargs, self_attention=False), q, k, v)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("shared", ["q is k is v", "k is v", "separate"])
def test_unbatched_and_shared_inputs_match_torch(need_weights, shared):
    gen = torch.Generator().manual_seed(3)
    torch_attn = torch.nn.MultiheadAttention(E, HEADS, dropout=0.4, batch_first=True)
    port = twin(torch_attn, nn.MultiheadAttention, E, HEADS, dropout=0.4, batch_first=True)
    x, y = torch.randn(L, E, generator=gen), torch.randn(L, E, generator=gen)
    padding = torch.rand(L, generator=gen) < 0.3
    mask = torch.rand(HEADS, L, L, generator=gen) < 0.3

    def pick(attn):
        def call(a, b, kpm, am):
            k = a if shared == "q is k is v" else b
            v = k if shared != "separate" else b * 2
            return attn(a, k, v, key_padding_mask=kpm, attn_mask=am, need_weights=need_weights)

        return call

    assert_same(pick(torch_attn), pick(port), x, y, padding, mask)


def test_gradients_compile_and_checkpoint():
    gen = torch.Generator().manual_seed(4)
    options = {"dropout": 0.3, "batch_first": True, "add_bias_kv": True}
    torch_attn = torch.nn.MultiheadAttention(E, HEADS, **options)
    port = twin(torch_attn, nn.MultiheadAttention, E, HEADS, **options)
    x = torch.randn(N, L, E, generator=gen)
    padding = torch.rand(N, L, generator=gen) < 0.3
    padding[:, 0] = False
    for need_weights in (True, False):

        def torch_loss(x, need_weights=need_weights):
            out, w = torch_attn(x, x, x, key_padding_mask=padding, need_weights=need_weights)
            return (out * out).sum() + (0 if w is None else (w * w).sum())

        def port_loss(x, need_weights=need_weights):
            out, w = port(x, x, x, key_padding_mask=mlx_(padding), need_weights=need_weights)
            return (out * out).sum() + (0 if w is None else (w * w).sum())

        assert_same_gradients(torch_attn, port, torch_loss, port_loss, x)
        assert_compiles_and_checkpoints(port, port_loss, x)


def test_signature_matches_torch():
    theirs = inspect.signature(torch.nn.MultiheadAttention.__init__).parameters
    ours = inspect.signature(nn.MultiheadAttention.__init__).parameters
    assert [(p.name, p.default) for p in ours.values()] == [
        (p.name, p.default) for p in theirs.values() if p.name not in ("device", "dtype")
    ]
    theirs = inspect.signature(torch.nn.MultiheadAttention.forward).parameters
    ours = inspect.signature(nn.MultiheadAttention.forward).parameters
    assert [(p.name, p.default) for p in ours.values()] == [
        (p.name, p.default) for p in theirs.values()
    ]


@pytest.mark.parametrize("args", [(0, 2), (8, 0), (-4, 2), (10, 3)], ids=str)
def test_constructor_errors_match_torch(args):
    assert_same_outcome(
        outcome(torch.nn.MultiheadAttention, *args), outcome(nn.MultiheadAttention, *args)
    )


BAD_CALLS = {
    "4-D query": ((2, 3, 4, 8), (3, 2, 8), (3, 2, 8), {}),
    "3-D query, 2-D key": ((3, 2, 8), (3, 8), (3, 2, 8), {}),
    "2-D query, 3-D key": ((3, 8), (3, 2, 8), (3, 8), {}),
    "3-D key_padding_mask": ((3, 2, 8), (3, 2, 8), (3, 2, 8), {"key_padding_mask": (2, 3, 1)}),
    "2-D key_padding_mask, unbatched": ((3, 8), (3, 8), (3, 8), {"key_padding_mask": (2, 3)}),
    "1-D attn_mask": ((3, 2, 8), (3, 2, 8), (3, 2, 8), {"attn_mask": (3,)}),
    "unbatched 3-D attn_mask": ((3, 8), (4, 8), (4, 8), {"attn_mask": (2, 3, 3)}),
    "2-D attn_mask shape": ((3, 2, 8), (4, 2, 8), (4, 2, 8), {"attn_mask": (3, 3)}),
    "3-D attn_mask shape": ((3, 2, 8), (4, 2, 8), (4, 2, 8), {"attn_mask": (2, 3, 4)}),
    "key_padding_mask batch": ((3, 2, 8), (4, 2, 8), (4, 2, 8), {"key_padding_mask": (3, 4)}),
    "key_padding_mask length": ((3, 2, 8), (4, 2, 8), (4, 2, 8), {"key_padding_mask": (2, 3)}),
    "embed dim": ((3, 2, 6), (3, 2, 6), (3, 2, 6), {}),
    "key and value": ((3, 2, 8), (4, 2, 8), (5, 2, 8), {}),
    "is_causal without mask": ((3, 2, 8), (3, 2, 8), (3, 2, 8), {"is_causal": True}),
    "int mask": ((3, 2, 8), (3, 2, 8), (3, 2, 8), {"attn_mask": (3, 3), "dtype": torch.int32}),
    "mixed masks": (
        (3, 2, 8),
        (3, 2, 8),
        (3, 2, 8),
        {"attn_mask": (3, 3), "key_padding_mask": (2, 3), "dtype": torch.float32},
    ),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_call_errors_and_warnings_match_torch(case):
    q, k, v, kwargs = BAD_CALLS[case]
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", torch.bool)
    torch_attn = torch.nn.MultiheadAttention(8, 2)
    port = twin(torch_attn, nn.MultiheadAttention, 8, 2)
    tensors = [torch.randn(s) for s in (q, k, v)]
    torch_kwargs = {
        name: shape if isinstance(shape, bool) else torch.zeros(shape, dtype=dtype)
        for name, shape in kwargs.items()
    }
    if case == "mixed masks":
        torch_kwargs["key_padding_mask"] = torch_kwargs["key_padding_mask"].bool()
    port_kwargs = {name: mlx_(t) for name, t in torch_kwargs.items()}
    assert_same_outcome(
        outcome(lambda: torch_attn(*tensors, **torch_kwargs)),
        outcome(lambda: port(*(mlx_(t) for t in tensors), **port_kwargs)),
    )


def test_state_dict_names_and_shapes_are_torchs():
    from mlx.utils import tree_flatten

    for options in ({}, {"kdim": 4, "vdim": 6, "add_bias_kv": True}, {"bias": False}):
        theirs = torch.nn.MultiheadAttention(8, 2, **options).state_dict()
        ours = dict(tree_flatten(nn.MultiheadAttention(8, 2, **options).parameters()))
        assert {k: tuple(v.shape) for k, v in theirs.items()} == {
            k: tuple(v.shape) for k, v in ours.items()
        }


def test_refuses_what_is_not_an_array():
    packed = torch.nn.utils.rnn.pack_sequence([torch.ones(3, 8)])
    with pytest.raises(
        TypeError, match=r"must be an mlx.core.array, but got PackedSequence: flashdrop has no"
    ):
        nn.MultiheadAttention(8, 2)(packed, mx.ones((3, 8)), mx.ones((3, 8)))
