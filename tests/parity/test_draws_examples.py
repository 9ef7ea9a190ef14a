"""The draw records on the examples' models: nanoGPT (examples/), MultiheadAttention,
TransformerEncoderLayer and a 2-layer LSTM, each with a hand-written port (nanoGPT's from its
example, the others' from handwritten_ports: the examples use flashdrop.nn's layers now).

The correct ports pass :func:`assert_same_as_torch` (torch mode) and
:func:`assert_statistically_equivalent` (mlx mode); :func:`dropout_sites` lists torch's draws in
call order; each planted bug (set on the example's port, not a copy of it) fails with a message
naming the right draw, on both sides.
"""

import inspect
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn
import pytest
import torch

from flashdrop import nn
from flashdrop.testing import (
    assert_same_as_torch,
    assert_statistically_equivalent,
    dropout_sites,
)
from tests._support import handwritten_ports as ports
from tests._support.checks import both_fail, failure, randn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _import(name: str):
    """An example script, imported as a module (it imports its neighbour _common)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(EXAMPLES))


gpt_example = _import("nanogpt_attention")
copy_weights = sys.modules["_common"].copy_weights


def site(fn, text: str) -> str:
    """``file:line in function`` of the first line of ``fn`` containing ``text``."""
    lines, start = inspect.getsourcelines(fn)
    line = start + next(i for i, source in enumerate(lines) if text in source)
    return f"{Path(inspect.getsourcefile(fn)).name}:{line} in {fn.__name__}"


def failing(model, port, x) -> list[str]:
    """The lines of both helpers' message (the same), after its header."""
    same, _ = both_fail(model, port, x)
    return same.split(": ", 1)[1].splitlines()


def passes_both(model, port, x, trials: int = 100) -> None:
    assert_same_as_torch(model, port, x)  # at the defaults: torch.testing's tolerances
    assert_statistically_equivalent(model, port, x, trials=trials)


# --- nanoGPT ----------------------------------------------------------------------------------

VOCAB, BLOCK, DIM, HEADS, LAYERS, BATCH = 32, 8, 16, 2, 2, 2
GPT_SDPA = site(gpt_example.TorchCausalSelfAttention.forward, "scaled_dot_product_attention(")
PORT_SDPA = site(gpt_example.MlxCausalSelfAttention.__call__, "scaled_dot_product_attention(")


def gpt():
    torch.manual_seed(0)
    model = gpt_example.TorchGPT(VOCAB, BLOCK, DIM, HEADS, LAYERS)
    port = gpt_example.MlxGPT(VOCAB, BLOCK, DIM, HEADS, LAYERS)
    copy_weights(model, port)
    idx = torch.randint(0, VOCAB, (BATCH, BLOCK), generator=torch.Generator().manual_seed(1))
    return model, port, idx


def test_nanogpt_port_passes_and_its_sites_are_in_call_order():
    model, port, idx = gpt()
    passes_both(model, port, idx, trials=50)
    weights = (BATCH, HEADS, BLOCK, BLOCK)
    sites = [(d.op, d.shape, d.module, str(d.site)) for d in dropout_sites(model, idx)]
    assert sites[:4] == [
        ("dropout", (BATCH, BLOCK, DIM), "drop", site(model.forward, "self.drop(")),
        ("scaled_dot_product_attention", weights, "h.0.attn", GPT_SDPA),
        (
            "dropout",
            (BATCH, BLOCK, DIM),
            "h.0.attn.resid_dropout",
            site(gpt_example.TorchCausalSelfAttention.forward, "self.resid_dropout("),
        ),
        (
            "dropout",
            (BATCH, BLOCK, DIM),
            "h.0.dropout",
            site(gpt_example.TorchBlock.forward, "self.dropout("),
        ),
    ]
    assert len(sites) == 7 and sites[4][2] == "h.1.attn"


def test_nanogpt_port_without_the_attention_dropout():
    model, port, idx = gpt()
    for block in port.h:
        block.attn.p = 0.0  # planted: the port passes dropout_p=0 to SDPA in training
    assert failing(model, port, idx) == [
        "torch drew 7 times, the port 5 times; torch's draw #2 has no counterpart in the port "
        "(nor have torch's #5):",
        f"  torch #2: scaled_dot_product_attention, shape ({BATCH}, {HEADS}, {BLOCK}, {BLOCK}), "
        f"p=0.1, in 'h.0.attn' (TorchCausalSelfAttention), at {GPT_SDPA}",
        "torch's scaled_dot_product_attention drops the attention weights (its dropout_p=0.1): "
        "pass dropout_p=0.1 to flashdrop.nn.functional.scaled_dot_product_attention",
    ]


def test_nanogpt_port_with_a_wrong_attention_p():
    model, port, idx = gpt()
    port.h[1].attn.p = 0.2  # planted: the second block's SDPA gets another dropout_p
    weights = f"({BATCH}, {HEADS}, {BLOCK}, {BLOCK})"
    assert failing(model, port, idx) == [
        "torch and the port drew 7 times each; draw #5 differs in p (torch 0.1, port 0.2):",
        f"  torch #5: scaled_dot_product_attention, shape {weights}, p=0.1, in 'h.1.attn' "
        f"(TorchCausalSelfAttention), at {GPT_SDPA}",
        f"  port  #5: scaled_dot_product_attention, shape {weights}, p=0.2, in 'h.1.attn' "
        f"(MlxCausalSelfAttention), at {PORT_SDPA}",
    ]


# --- MultiheadAttention, both need_weights paths ------------------------------------------------

N, L, E, H, FFN = 3, 5, 8, 2, 16
MHA_CALL = site(ports.TorchAttentionModel.forward, "self.attn(")


def attention(need_weights: bool):
    torch.manual_seed(0)
    model = ports.TorchAttentionModel(E, H, need_weights)
    port = ports.MlxAttentionModel(E, H, need_weights)
    copy_weights(model, port)
    return model, port, randn(N, L, E)


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_port_passes_and_its_draw_is_listed(need_weights):
    model, port, x = attention(need_weights)
    passes_both(model, port, x)
    # need_weights: F.dropout on the (N * H, L, S) weights; else SDPA's (N, H, L, S).
    shape = (N * H, L, L) if need_weights else (N, H, L, L)
    assert [(d.op, d.shape, d.module, str(d.site)) for d in dropout_sites(model, x)] == [
        ("multi_head_attention_forward", shape, "attn", MHA_CALL)
    ]


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_port_with_a_wrong_p_or_no_dropout(need_weights):
    model, port, x = attention(need_weights)
    shape = f"({N * H}, {L}, {L})" if need_weights else f"({N}, {H}, {L}, {L})"
    torch_draw = (
        f"  torch #1: multi_head_attention_forward, shape {shape}, p=0.2, in 'attn' "
        f"(MultiheadAttention), at {MHA_CALL}"
    )
    call = "F.dropout(weights" if need_weights else "F.scaled_dot_product_attention("
    op = "dropout" if need_weights else "scaled_dot_product_attention"
    port.attn.p = 0.3  # planted: a wrong p
    assert failing(model, port, x) == [
        "torch and the port drew once each; draw #1 differs in p (torch 0.2, port 0.3):",
        torch_draw,
        f"  port  #1: {op}, shape {shape}, p=0.3, in 'attn' (MultiheadAttention), at "
        f"{site(ports.MultiheadAttention.__call__, call)}",
    ]
    port.attn.p = 0.0  # planted: the attention dropout forgotten
    assert failing(model, port, x) == [
        "torch drew once, the port 0 times; torch's draw #1 has no counterpart in the port:",
        torch_draw,
        "torch's MultiheadAttention drops the attention weights (its dropout=0.2): pass it as "
        "dropout_p to flashdrop.nn.functional.scaled_dot_product_attention, or drop the weights "
        "with flashdrop.nn.functional.dropout",
    ]


# --- TransformerEncoderLayer, norm_first both ways ----------------------------------------------


def encoder_layer(norm_first: bool, cls=ports.TransformerEncoderLayer):
    torch.manual_seed(0)
    model = torch.nn.TransformerEncoderLayer(
        E, H, FFN, dropout=0.1, batch_first=True, norm_first=norm_first
    )
    model.dropout1.p = 0.2  # so that a port's swapped dropout1 and dropout show
    port = cls(E, H, FFN, 0.1, norm_first)
    copy_weights(model, port)
    port.dropout1 = nn.Dropout(0.2)
    return model, port, randn(N, L, E)


# dropout1 drops the attention output, a transposed view: torch draws it in memory order.
DROPOUT1 = f"dropout, shape ({L}, {N}, {E}) (memory order of a ({N}, {L}, {E}) view), p=0.2"


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_port_passes_with_torch_s_four_draws(norm_first):
    model, port, x = encoder_layer(norm_first)
    passes_both(model, port, x)
    sites = dropout_sites(model, x)
    assert [(d.op, d.shape, d.view, d.module) for d in sites] == [
        ("multi_head_attention_forward", (N, H, L, L), None, "self_attn"),
        ("dropout", (L, N, E), (N, L, E), "dropout1"),
        ("dropout", (N, L, FFN), None, "dropout"),
        ("dropout", (N, L, E), None, "dropout2"),
    ]


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_port_with_dropout1_and_dropout_swapped(norm_first):
    model, port, x = encoder_layer(norm_first)
    port.dropout1, port.dropout = port.dropout, port.dropout1  # planted
    assert failing(model, port, x) == [
        "torch and the port drew 4 times each; draw #2 differs in p (torch 0.2, port 0.1):",
        f"  torch #2: {DROPOUT1}, in 'dropout1' (Dropout), called by the helper",
        f"  port  #2: dropout, shape ({L}, {N}, {E}), p=0.1, in 'dropout1' (Dropout), at "
        f"{site(ports.TransformerEncoderLayer._sa_block, 'self.dropout1(')}",
    ]


class NotTransposed(ports.TransformerEncoderLayer):
    """Planted: dropout1 drawn on the (N, L, E) attention output as it is."""

    def _sa_block(self, x: mx.array) -> mx.array:
        return self.dropout1(self.self_attn(x, need_weights=False)[0])


def test_transformer_encoder_layer_port_drawing_dropout1_in_logical_order():
    model, port, x = encoder_layer(False, NotTransposed)
    assert failing(model, port, x) == [
        f"torch and the port drew 4 times each; draw #2 differs in shape (({L}, {N}, {E}) "
        f"(memory order of a ({N}, {L}, {E}) view) drawn by torch, ({N}, {L}, {E}) by the "
        "port):",
        f"  torch #2: {DROPOUT1}, in 'dropout1' (Dropout), called by the helper",
        f"  port  #2: dropout, shape ({N}, {L}, {E}), p=0.2, in 'dropout1' (Dropout), at "
        f"{site(NotTransposed._sa_block, 'self.dropout1(')}",
    ]


# --- LSTM(num_layers=2, dropout=p) --------------------------------------------------------------

FEATURES, HIDDEN, CLASSES = 6, 8, 3
LSTM_CALL = site(ports.TorchLSTMClassifier.forward, "self.lstm(")


def lstm(batch_first: bool, batch: int = 4, length: int = 5):
    torch.manual_seed(0)
    model = ports.TorchLSTMClassifier(FEATURES, HIDDEN, CLASSES, batch_first)
    port = ports.MlxLSTMClassifier(FEATURES, HIDDEN, CLASSES, batch_first)
    ports.copy_lstm_weights(model, port)
    x = randn(*((batch, length) if batch_first else (length, batch)), FEATURES)
    return model, port, x


class BatchMajor(mlx.nn.Module):
    """Planted: undoes the example's move to (L, N, H), so the mask is drawn on (N, L, H)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p)

    def __call__(self, h: mx.array) -> mx.array:
        return self.dropout(h.swapaxes(0, 1)).swapaxes(0, 1)


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_port_passes_and_draws_in_torch_s_order(batch_first):
    model, port, x = lstm(batch_first)
    passes_both(model, port, x)
    assert [(d.op, d.shape, d.module, str(d.site)) for d in dropout_sites(model, x)] == [
        ("lstm", (5, 4, HIDDEN), "lstm", LSTM_CALL)  # (L, N, H) in both layouts
    ]


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_port_without_its_inter_layer_dropout(batch_first):
    model, port, x = lstm(batch_first)
    port.dropout = mlx.nn.Identity()  # planted
    assert failing(model, port, x) == [
        "torch drew once, the port 0 times; torch's draw #1 has no counterpart in the port:",
        f"  torch #1: lstm, shape (5, 4, {HIDDEN}), p=0.3, in 'lstm' (LSTM), at {LSTM_CALL}",
        "torch's lstm drops the output of each layer but the last (its dropout=0.3): drop it "
        "with flashdrop's dropout, in torch's (L, N, H) order",
    ]


def test_lstm_port_drawing_in_batch_major_order():
    model, port, x = lstm(True)
    port.dropout = BatchMajor(0.3)
    lines = failing(model, port, x)
    assert lines[:2] == [
        f"torch and the port drew once each; draw #1 differs in shape ((5, 4, {HIDDEN}) drawn "
        f"by torch, (4, 5, {HIDDEN}) by the port):",
        f"  torch #1: lstm, shape (5, 4, {HIDDEN}), p=0.3, in 'lstm' (LSTM), at {LSTM_CALL}",
    ]
    # With N == L the same shape is drawn: only torch mode sees it, by position.
    model, port, x = lstm(True, batch=5)
    port.dropout = BatchMajor(0.3)
    message = failure(assert_same_as_torch, model, port, x)
    assert message.splitlines()[-1] == (
        "same masks, the math differs: the port made torch's 1 draw (shape, p and mask of "
        "each), and computes something else with them; it applies the mask of draw #1 (dropout, "
        f"shape (5, 5, {HIDDEN}), in 'dropout.dropout' (Dropout)) in another order of its axes: "
        "torch's outputs with that mask's axes 0 and 1 swapped are the port's (a mask drawn on "
        "(N, L, E) where torch draws it on (L, N, E) draws torch's numbers when N == L, and puts "
        "them elsewhere)"
    )
