"""Recording every draw on both sides, and the helpers naming the first draw that differs.

Each broken port below is a mistake a port makes (the planted bug is named in the test); each
must fail :func:`assert_same_as_torch` (torch mode) and the plan check of
:func:`assert_statistically_equivalent` (mlx mode) with a message naming the right draw, and the
correct port must pass both.
"""

import functools
import threading

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import _dropout, _random, compat, nn
from flashdrop.testing import (
    Draw,
    assert_same_as_torch,
    assert_statistically_equivalent,
    dropout_sites,
    record_draws,
    record_torch_draws,
    seeded,
)
from tests._support.checks import both_fail, failure, randn

ATOL = 1e-5  # MLX's and torch's matrix products round differently
HERE = "test_draws.py"
# The comments marking the lines whose call sites the messages give.
F_TORCH, F_PORT = "torch's F.dropout", "the port's F.dropout"
PORT_SDPA = "the port's SDPA"


def line_of(fn, text: str) -> int:
    """The line number of the first line of ``fn``'s source containing ``text``."""
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


# --- a nanoGPT-style model and its port ----------------------------------------------------------

E, H, L, N = 16, 2, 6, 3  # embedding, heads, sequence length, batch


class TorchAttention(torch.nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.c_attn = torch.nn.Linear(E, 3 * E)
        self.c_proj = torch.nn.Linear(E, E)
        self.resid_dropout = torch.nn.Dropout(p)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.view(N, L, H, E // H).transpose(1, 2) for t in self.c_attn(x).split(E, dim=2))
        p = self.p if self.training else 0.0
        y = TF.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # the SDPA
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(N, L, E)))


class TorchBlock(torch.nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.attn = TorchAttention(p)
        self.fc = torch.nn.Linear(E, E)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + TF.dropout(TF.gelu(self.fc(x)), self.p, self.training)  # an F.dropout


class TorchGPT(torch.nn.Module):
    def __init__(self, p: float = 0.1, layers: int = 2) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(p)
        self.h = torch.nn.ModuleList(TorchBlock(p) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x)
        for block in self.h:
            x = block(x)
        return x


class PortAttention(mlx.nn.Module):
    def __init__(self, p: float, attention_dropout: bool = True) -> None:
        super().__init__()
        self.c_attn = mlx.nn.Linear(E, 3 * E)
        self.c_proj = mlx.nn.Linear(E, E)
        self.resid_dropout = nn.Dropout(p)
        self.p = p
        self.attention_dropout = attention_dropout

    def __call__(self, x: mx.array) -> mx.array:
        q, k, v = (
            t.reshape(N, L, H, E // H).transpose(0, 2, 1, 3)
            for t in mx.split(self.c_attn(x), 3, axis=2)
        )
        # torch's SDPA drops its weights; the planted bug passes dropout_p=0 in training too.
        p = self.p if self.training and self.attention_dropout else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # the port's SDPA
        return self.resid_dropout(self.c_proj(y.transpose(0, 2, 1, 3).reshape(N, L, E)))


class PortBlock(mlx.nn.Module):
    def __init__(self, p: float, **kwargs) -> None:
        super().__init__()
        self.attn = PortAttention(p, **kwargs)
        self.fc = mlx.nn.Linear(E, E)
        self.p = p

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.attn(x)
        return x + F.dropout(mlx.nn.gelu(self.fc(x)), self.p, self.training)


class PortGPT(mlx.nn.Module):
    def __init__(self, p: float = 0.1, layers: int = 2, **kwargs) -> None:
        super().__init__()
        self.drop = nn.Dropout(p)
        self.h = [PortBlock(p, **kwargs) for _ in range(layers)]

    def __call__(self, x: mx.array) -> mx.array:
        x = self.drop(x)
        for block in self.h:
            x = block(x)
        return x


def gpt(**port_kwargs) -> tuple[TorchGPT, PortGPT]:
    with seeded(0):
        model = TorchGPT()
    port = PortGPT(**port_kwargs)
    port.load_weights([(k, compat.to_mlx(v)) for k, v in model.state_dict().items()])
    return model, port


def tokens() -> torch.Tensor:
    return randn(N, L, E)


def test_a_correct_gpt_port_passes_in_both_modes():
    model, port = gpt()
    assert_same_as_torch(model, port, tokens(), atol=ATOL)
    assert_statistically_equivalent(model, port, tokens(), trials=100)


def test_a_forgotten_attention_dropout_is_named():
    # Planted bug: the port forgot the dropout torch's scaled_dot_product_attention makes.
    model, port = gpt(attention_dropout=False)
    site = f"{HERE}:{line_of(TorchAttention.forward, 'the SDPA')} in forward"
    message = failure(assert_same_as_torch, model, port, tokens(), atol=ATOL)
    assert message.splitlines()[:2] == [
        "the port differs from torch at call 1 of 3 (seed 0): torch drew 7 times, the port 5 "
        "times; torch's draw #2 has no counterpart in the port (nor have torch's #5):",
        f"  torch #2: scaled_dot_product_attention, shape ({N}, {H}, {L}, {L}), p=0.1, in "
        f"'h.0.attn' (TorchAttention), at {site}",
    ]
    message = failure(assert_statistically_equivalent, model, port, tokens(), trials=10)
    assert message.splitlines()[0] == (
        "the port differs from torch at call 1 (seed 0, flashdrop in mlx mode): torch drew 7 "
        "times, the port 5 times; torch's draw #2 has no counterpart in the port (nor have "
        "torch's #5):"
    )


def test_the_port_side_names_its_modules_and_call_sites():
    _, port = gpt()
    x = compat.to_mlx(tokens())
    with record_draws() as draws:
        port(x)
    site = f"{HERE}:{line_of(PortAttention.__call__, PORT_SDPA)} in __call__"
    assert [(d.op, d.module, d.module_type) for d in draws[:3]] == [
        ("dropout", "drop", "Dropout"),
        ("scaled_dot_product_attention", "h.0.attn", "PortAttention"),
        ("dropout", "h.0.attn.resid_dropout", "Dropout"),
    ]
    assert str(draws[1].site) == site
    assert draws[3].module == "h.0" and draws[3].site.function == "__call__"


# --- recording ----------------------------------------------------------------------------------


def call(port, x: mx.array) -> list[mx.array]:
    return [port(x)]


def call_in_grad(port, x: mx.array) -> list[mx.array]:
    loss, grads = mlx.nn.value_and_grad(port, lambda model, v: (model(v) ** 2).mean())(port, x)
    return [loss, grads["h"][0]["fc"]["weight"]]


@pytest.mark.parametrize("run", [call, call_in_grad], ids=["call", "mx.grad"])
@pytest.mark.parametrize("mode", ["mlx", "torch"])
def test_recording_changes_no_draw(mode, run):
    _, port = gpt()
    x = compat.to_mlx(tokens())
    results = []
    for recording in (False, True):
        flashdrop.manual_seed(3)
        with flashdrop.rng_mode(mode):
            if recording:
                with record_draws() as draws:
                    out = run(port, x)
            else:
                out = run(port, x)
        results.append(([np.array(a) for a in out], np.array(flashdrop.get_rng_state())))
    assert all(np.array_equal(a, b) for a, b in zip(*(r[0] for r in results), strict=True))
    assert np.array_equal(results[0][1], results[1][1])
    assert len(draws) == 7 and {d.mode for d in draws} == {mode}
    assert [(d.op, d.module) for d in draws[:2]] == [
        ("dropout", "drop"),
        ("scaled_dot_product_attention", "h.0.attn"),
    ]
    kept = sum(int(d.keep().sum()) for d in draws)
    total = sum(d.keep().size for d in draws)
    assert 0.8 < kept / total < 1.0


def test_compiled_functions_are_recorded_with_the_same_results():
    step = flashdrop.compile(lambda x: F.dropout(x, 0.25) * 2)
    x = mx.ones((64, 32))
    flashdrop.manual_seed(5)
    expected = np.array(step(x)), np.array(flashdrop.get_rng_state())
    flashdrop.manual_seed(5)
    with record_draws() as draws:
        got = np.array(step(x)), np.array(flashdrop.get_rng_state())
    assert np.array_equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert [(d.op, d.shape) for d in draws] == [("dropout", (64, 32))]
    assert np.array_equal(draws[0].keep().reshape(64, 32), expected[0] != 0)


def test_flashdrop_ops_are_named_as_the_public_function():
    x = mx.ones((2, 3, 4, 4))
    with record_draws() as draws:
        nn.Dropout2d(0.2)(x)
        F.feature_alpha_dropout(x, 0.2, True, channel_dim=-1)
        F.drop_path(x, 0.3, True)
        F.stochastic_depth(x, 0.3, "batch")
        F.locked_dropout(mx.ones((5, 2, 3)), 0.4)
        _dropout.drop_block(x, 0.1, 3, False, 1e-6)  # below the public functions
        _random.bernoulli((2, 2), 0.5)
    assert [(d.op, d.shape) for d in draws[5:]] == [
        ("drop_block", (2, 3, 2, 2)),
        ("bernoulli", (2, 2)),
    ]
    draws = draws[:5]
    assert [(d.op, d.shape) for d in draws] == [
        ("dropout2d", (2, 3, 1, 1)),
        ("feature_alpha_dropout", (2, 1, 1, 4)),
        ("drop_path", (2, 1, 1, 1)),
        ("stochastic_depth", (1, 1, 1, 1)),
        ("locked_dropout", (1, 2, 3)),
    ]
    assert [round(d.p, 6) for d in draws] == [0.2, 0.2, 0.3, 0.3, 0.4]
    assert repr(draws[0]) == (
        f"Draw(op='dropout2d', shape=(2, 3, 1, 1), p=0.2, mode='mlx', module=(Dropout2d), "
        f"site={HERE}:{line_of(test_flashdrop_ops_are_named_as_the_public_function, 'nn.Drop')}"
        " in test_flashdrop_ops_are_named_as_the_public_function)"
    )


def test_torch_side_sees_every_kind_of_dropout():
    x = randn(2, 3, 4, 5)
    seq = randn(5, 2, 8)
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, dropout=0.1)
    lstm = torch.nn.LSTM(8, 8, num_layers=3, dropout=0.2, batch_first=True)
    before = torch.get_rng_state()
    with record_torch_draws() as draws:
        TF.dropout(x)  # p = 0.5: bernoulli_ gets no p
        TF.dropout2d(x, 0.3)
        TF.alpha_dropout(x, 0.3, True)
        TF.feature_alpha_dropout(x, 0.3, True)
        TF.scaled_dot_product_attention(x, x, x, dropout_p=0.2)
        mha(seq, seq, seq)
        mha(seq, seq, seq, need_weights=False)
        lstm(seq)
        torch.randint(0, 5, (3,))
        torch.randn(4, generator=torch.Generator())  # not torch's generator: not recorded
    ops = [(d.op, d.shape, None if d.p is None else round(d.p, 6)) for d in draws]
    assert ops == [
        ("dropout", (2, 3, 4, 5), 0.5),
        ("dropout2d", (2, 3, 1, 1), 0.3),
        ("alpha_dropout", (2, 3, 4, 5), 0.3),
        ("feature_alpha_dropout", (2, 3, 1, 1), 0.3),
        ("scaled_dot_product_attention", (2, 3, 4, 4), 0.2),
        ("multi_head_attention_forward", (4, 5, 5), 0.1),  # the weights, need_weights=True
        ("multi_head_attention_forward", (2, 2, 5, 5), 0.1),  # through SDPA
        ("lstm", (2, 5, 8), 0.2),  # (L, N, H) although batch_first=True
        ("lstm", (2, 5, 8), 0.2),
        ("randint", (3,), None),
    ]
    assert [d.module_type for d in draws[5:9]] == ["MultiheadAttention"] * 2 + ["LSTM"] * 2
    assert draws[-1].mask is None and draws[0].keep().dtype == bool
    # Recording drew nothing: the same draws again give the same masks.
    torch.set_rng_state(before)
    again = TF.dropout(x)
    assert np.array_equal(draws[0].keep(), (again != 0).numpy().ravel())


def test_dropout_sites_lists_the_call_order_with_what_no_module_list_shows():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
    assert [n for n, _ in compat.dropout_layers(layer)] == [
        "self_attn",
        "dropout",
        "dropout1",
        "dropout2",
    ]
    state = torch.get_rng_state()
    sites = dropout_sites(layer, randn(5, 2, 8))
    assert torch.equal(torch.get_rng_state(), state)
    assert [(d.op, d.module) for d in sites] == [
        ("multi_head_attention_forward", "self_attn"),
        ("dropout", "dropout1"),
        ("dropout", "dropout"),
        ("dropout", "dropout2"),
    ]
    assert all(isinstance(d, Draw) for d in sites)
    model, _ = gpt()
    sites = dropout_sites(model, compat.to_mlx(tokens()))
    assert [(d.op, d.module, d.site.function) for d in sites[:4]] == [
        ("dropout", "drop", "forward"),
        ("scaled_dot_product_attention", "h.0.attn", "forward"),
        ("dropout", "h.0.attn.resid_dropout", "forward"),
        ("dropout", "h.0", "forward"),
    ]


# --- planted bugs, each named ---------------------------------------------------------------------


class Seq(torch.nn.Module):
    """torch: Linear, then dropout through F.dropout (no module), then a Dropout module."""

    def __init__(self, p1: float = 0.2, p2: float = 0.4) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 16)
        self.drop = torch.nn.Dropout(p2)
        self.p1 = p1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(TF.dropout(self.fc(x), self.p1, self.training))  # torch's F.dropout


class PortSeq(mlx.nn.Module):
    def __init__(self, model: Seq, p1: float = 0.2, drop=None, extra: bool = False) -> None:
        super().__init__()
        self.fc = mlx.nn.Linear(16, 16)
        self.fc.weight, self.fc.bias = compat.to_mlx(model.fc.weight), compat.to_mlx(model.fc.bias)
        self.drop = nn.Dropout(0.4) if drop is None else drop
        self.p1 = p1
        self.extra = extra

    def __call__(self, x: mx.array) -> mx.array:
        x = F.dropout(self.fc(x), self.p1, self.training)  # the port's F.dropout
        if self.extra:
            x = F.dropout(x, 0.1)  # planted: a mask torch does not draw
        return self.drop(x)


def seq(**kwargs) -> tuple[Seq, PortSeq]:
    with seeded(0):
        model = Seq()
    return model, PortSeq(model, **kwargs)


def test_f_dropout_only_models_pass_and_name_their_draws():
    model, port = seq()
    x = randn(8, 16)
    assert_same_as_torch(model, port, x, atol=ATOL)
    assert_statistically_equivalent(model, port, x, trials=200)
    _, port = seq(p1=0.3)  # planted: a wrong p in the F.dropout call
    message, _ = both_fail(model, port, x)
    torch_site = f"{HERE}:{line_of(Seq.forward, F_TORCH)} in forward"
    port_site = f"{HERE}:{line_of(PortSeq.__call__, F_PORT)} in __call__"
    assert message.splitlines()[1:3] == [
        f"  torch #1: dropout, shape (8, 16), p=0.2, in (Seq), at {torch_site}",
        f"  port  #1: dropout, shape (8, 16), p=0.3, in (PortSeq), at {port_site}",
    ]
    assert "draw #1 differs in p (torch 0.2, port 0.3):" in message


def test_a_missing_layer():
    model, port = seq(drop=mlx.nn.Identity())
    message, _ = both_fail(model, port, randn(8, 16))
    assert message.splitlines()[1] == (
        "  torch #2: dropout, shape (8, 16), p=0.4, in 'drop' (Dropout), at "
        f"{HERE}:{line_of(Seq.forward, F_TORCH)} in forward"
    )
    assert "torch drew twice, the port once; torch's draw #2 has no counterpart in the port:" in (
        message
    )


def test_an_extra_mask():
    model, port = seq(extra=True)
    message, _ = both_fail(model, port, randn(8, 16))
    site = f"{HERE}:{line_of(PortSeq.__call__, 'planted: a mask')} in __call__"
    assert message.splitlines()[0].endswith(
        "torch drew twice, the port 3 times; the port's draw #2 has no counterpart in torch:"
    )
    assert message.splitlines()[1] == (
        f"  port  #2: dropout, shape (8, 16), p=0.1, in (PortSeq), at {site}"
    )


def test_mlx_own_dropout():
    model, port = seq(drop=mlx.nn.Dropout(0.4))
    message, _ = both_fail(model, port, randn(8, 16))
    assert "torch's draw #2 has no counterpart in the port:" in message
    assert message.splitlines()[-1] == (
        "the port's Dropout at 'drop' is mlx.nn's: it draws from MLX's stream, which flashdrop "
        "neither records nor keeps in step with torch's; use flashdrop.nn's "
        "(flashdrop.compat.port_dropout)"
    )


def test_a_port_left_in_eval_mode():
    model, port = seq()
    port.eval()
    message, _ = both_fail(model, port, randn(8, 16))
    assert message.splitlines()[0].endswith(
        "torch drew twice, the port 0 times; torch's draw #1 has no counterpart in the port "
        "(nor have torch's #2):"
    )
    # Draw #1 is the port's F.dropout(..., self.training) of the model itself.
    assert message.splitlines()[2:] == ["the port's PortSeq (the model) is in eval mode"]
    model.eval()
    port.train()
    message = failure(assert_same_as_torch, model, port, randn(8, 16))
    assert message.splitlines()[2:] == ["torch's Seq (the model) is in eval mode"]


def test_swapped_layers():
    model = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.ReLU(), torch.nn.Dropout(0.5))
    port = mlx.nn.Sequential(nn.Dropout(0.5), mlx.nn.ReLU(), nn.Dropout(0.1))
    message, _ = both_fail(model, port, randn(8, 16))
    assert message.splitlines() == [
        "the port differs from torch at call 1 of 3 (seed 0): torch and the port drew twice "
        "each; draw #1 differs in p (torch 0.1, port 0.5):",
        "  torch #1: dropout, shape (8, 16), p=0.1, in '0' (Dropout), called by the helper",
        "  port  #1: dropout, shape (8, 16), p=0.5, in 'layers.0' (Dropout), called by the helper",
        "the port makes torch's draws in another order",
    ]


def test_wrong_p_of_a_lone_layer():
    message, _ = both_fail(torch.nn.AlphaDropout(0.3), nn.AlphaDropout(0.5), randn(8, 16))
    assert message.splitlines()[1:] == [
        "  torch #1: alpha_dropout, shape (8, 16), p=0.3, in (AlphaDropout), called by the helper",
        "  port  #1: alpha_dropout, shape (8, 16), p=0.5, in (AlphaDropout), called by the helper",
    ]


class ChannelsLast(mlx.nn.Module):
    """A port running its layer on the channels-last layout, taking and giving torch's."""

    def __init__(self, layer: mlx.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def __call__(self, x: mx.array) -> mx.array:
        return mx.moveaxis(self.layer(mx.moveaxis(x, 1, -1)), -1, 1)


def test_channel_dim_forgotten_with_h_unlike_c():
    x = randn(8, 6, 4, 5)  # N, C, H, W: H != C
    assert_same_as_torch(
        torch.nn.Dropout2d(0.3), ChannelsLast(nn.Dropout2d(0.3, channel_dim=-1)), x
    )
    message, _ = both_fail(torch.nn.Dropout2d(0.3), ChannelsLast(nn.Dropout2d(0.3)), x)
    assert message.splitlines()[0].endswith(
        "torch and the port drew once each; draw #1 differs in shape ((8, 6, 1, 1), that is "
        "(8, 6) drawn by torch, (8, 4, 1, 1), that is (8, 4) by the port):"
    )
    assert message.splitlines()[-1] == (
        "a channels-last port's channel dropout (dropout1d/2d/3d, feature_alpha_dropout) needs "
        "channel_dim=-1"
    )


def test_channel_dim_forgotten_with_h_like_c():
    # The same shapes are drawn: only torch mode sees it, by position.
    x = randn(8, 6, 6, 5)  # N, C, H, W: H == C
    message = failure(
        assert_same_as_torch, torch.nn.Dropout2d(0.3), ChannelsLast(nn.Dropout2d(0.3)), x
    )
    lines = message.splitlines()
    assert lines[0].startswith("the port differs from torch at call 1 of 3 (seed 0): ")
    assert lines[0].endswith(
        " of 1440 elements of output differ (compared within rtol=1.3e-06, atol=1e-05, "
        "torch.testing.assert_close's for float32); first at"
    )
    assert lines[-1] == (
        "same masks, the math differs: the port made torch's 1 draw (shape, p and mask of each), "
        "and computes something else with them; a channels-last port whose channel dropout lacks "
        "channel_dim=-1 draws torch's masks when H == C, and applies them along the wrong axis"
    )


def test_a_stream_out_of_step_is_a_mask_difference():
    def reseeding(x):  # the first call is right, the next ones repeat its mask
        flashdrop.manual_seed(0)
        return F.dropout(x, 0.3)

    message = failure(assert_same_as_torch, torch.nn.Dropout(0.3), reseeding, randn(8, 16))
    assert message.startswith(
        "the port differs from torch at call 2 of 3 (seed 0): torch and the port drew once "
        "each; draw #1 differs in its mask, with the same shape and p: "
    )
    assert message.splitlines()[-1] == (
        "the same draw from another place in the stream: something before it drew from torch's "
        "generator on one side only, or reseeded"
    )


def test_the_math_differs_after_the_same_draws():
    message = failure(
        assert_same_as_torch, torch.nn.Dropout(0.3), lambda x: F.dropout(x, 0.3) * 1.5, randn(8, 16)
    )
    assert message.splitlines()[-1] == (
        "same masks, the math differs: the port made torch's 1 draw (shape, p and mask of each), "
        "and computes something else with them"
    )
    message = failure(assert_same_as_torch, torch.nn.ReLU(), lambda x: x, randn(8, 16))
    assert message.splitlines()[-1] == "no dropout draws on either side, so the math differs"


def test_the_error_carries_both_draw_tables():
    model, port = seq(drop=mlx.nn.Identity())
    with pytest.raises(AssertionError) as error:
        assert_same_as_torch(model, port, randn(8, 16), atol=ATOL)
    site = f"{HERE}:{line_of(Seq.forward, F_TORCH)} in forward"
    port_site = f"{HERE}:{line_of(PortSeq.__call__, F_PORT)} in __call__"
    rows = [
        [cell.strip() for cell in row.split(" | ")]
        for row in error.value.flashdrop_draws.splitlines()
    ]
    assert rows == [
        ["torch", "port"],
        [f"#1  dropout (8, 16) p=0.2 (Seq) {site}", f"dropout (8, 16) p=0.2 (PortSeq) {port_site}"],
        [f"!#2/-  dropout (8, 16) p=0.4 'drop' (Dropout) {site}", "-"],
    ]


# --- inside an RNN and a compiled training step ---------------------------------------------------


class PortLSTM(mlx.nn.Module):
    """torch's LSTM(num_layers=2, dropout=p) on (L, N, D), as two MLX LSTMs (batch first)."""

    def __init__(self, model: torch.nn.LSTM, time_major_dropout: bool = True) -> None:
        super().__init__()
        self.layers = [mlx.nn.LSTM(model.input_size if k == 0 else 6, 6) for k in range(2)]
        for k, layer in enumerate(self.layers):
            layer.Wx = compat.to_mlx(getattr(model, f"weight_ih_l{k}"))
            layer.Wh = compat.to_mlx(getattr(model, f"weight_hh_l{k}"))
            bias = getattr(model, f"bias_ih_l{k}") + getattr(model, f"bias_hh_l{k}")
            layer.bias = compat.to_mlx(bias.detach())
        self.p = model.dropout
        self.time_major_dropout = time_major_dropout

    def __call__(self, x: mx.array) -> mx.array:
        h, _ = self.layers[0](x.transpose(1, 0, 2))  # (N, L, H)
        if self.time_major_dropout:  # torch draws on (L, N, H)
            h = F.dropout(h.transpose(1, 0, 2), self.p, self.training).transpose(1, 0, 2)
        else:  # planted: drawn on (N, L, H)
            h = F.dropout(h, self.p, self.training)
        h, _ = self.layers[1](h)
        return h.transpose(1, 0, 2)


def test_an_lstm_port_draws_between_its_layers_in_torch_s_order():
    with seeded(0):
        model = torch.nn.LSTM(4, 6, num_layers=2, dropout=0.3)
    x = randn(5, 3, 4)

    def lstm(v):
        return model(v)[0]

    assert_same_as_torch(lstm, PortLSTM(model), x, atol=ATOL)
    assert_statistically_equivalent(lstm, PortLSTM(model), x, trials=50)
    message, _ = both_fail(lstm, PortLSTM(model, time_major_dropout=False), x)
    assert message.splitlines()[0].endswith(
        "torch and the port drew once each; draw #1 differs in shape ((5, 3, 6) drawn by torch, "
        "(3, 5, 6) by the port):"
    )
    assert message.splitlines()[1].startswith("  torch #1: lstm, shape (5, 3, 6), p=0.3, in ")


def test_a_compiled_training_step_is_recorded_and_unchanged():
    _, port = gpt()
    x, target = compat.to_mlx(tokens()), mx.zeros((N, L, E))

    def loss(model, v):
        return ((model(v) - target) ** 2).mean()

    grad = mlx.nn.value_and_grad(port, loss)
    step = flashdrop.compile(lambda v: grad(port, v), inputs=port.state, outputs=port.state)
    flashdrop.manual_seed(1)
    expected = step(x)[0].item(), np.array(flashdrop.get_rng_state())
    flashdrop.manual_seed(1)
    with record_draws() as draws:
        got = step(x)[0].item(), np.array(flashdrop.get_rng_state())
    assert got[0] == expected[0] and np.array_equal(got[1], expected[1])
    assert [d.op for d in draws] == [
        "dropout",
        *["scaled_dot_product_attention", "dropout", "dropout"] * 2,
    ]
    assert draws[1].module == "h.0.attn"


def test_another_draw_of_torch_s_generator_is_named():
    def theirs(x):
        torch.randint(0, 10, (3,))  # moves torch's stream: the port would need the same draw
        return TF.dropout(x, 0.2)

    message = failure(assert_same_as_torch, theirs, functools.partial(F.dropout, p=0.2), randn(4))
    site = f"{HERE}:{line_of(test_another_draw_of_torch_s_generator_is_named, 'torch.randint')}"
    assert message.splitlines()[:2] == [
        "the port differs from torch at call 1 of 3 (seed 0): torch drew twice, the port once; "
        "torch's draw #1 has no counterpart in the port:",
        f"  torch #1: randint, shape (3,), at {site} in theirs",
    ]


# --- recording composes: threads, mx.grad, eval, torch's stream ---------------------------------


def test_recording_follows_its_own_thread_on_both_sides():
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    worker_draws = {}

    def worker():  # draws on both sides while the main thread records, recording its own
        with record_draws() as ours, record_torch_draws() as theirs:
            ready.set()
            go.wait()
            for _ in range(5):
                F.dropout(mx.ones((3,)), 0.5)
                TF.dropout(torch.ones(3), 0.5)
        worker_draws["port"], worker_draws["torch"] = ours, theirs
        done.set()

    def draw():
        F.dropout(mx.ones((2, 2)), 0.25)
        TF.dropout(torch.ones(2, 2), 0.25)

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait()
    with record_draws() as ours, record_torch_draws() as theirs:
        draw()
        go.set()
        done.wait()  # the worker drew meanwhile
        draw()
    thread.join()
    assert [(d.shape, round(d.p, 6)) for d in ours] == [((2, 2), 0.25)] * 2
    assert [(d.shape, round(d.p, 6)) for d in theirs] == [((2, 2), 0.25)] * 2
    assert [d.shape for d in worker_draws["port"]] == [(3,)] * 5
    assert [d.shape for d in worker_draws["torch"]] == [(3,)] * 5


def test_models_in_eval_draw_nothing_on_either_side():
    model, port = gpt()
    model.eval()
    port.eval()
    assert dropout_sites(model, tokens()) == []
    with record_draws() as draws:
        port(compat.to_mlx(tokens()))
    assert draws == []
    assert_same_as_torch(model, port, tokens(), atol=ATOL)  # no draws; the outputs agree


def test_recording_torch_changes_no_draw():
    model, _ = gpt()
    x = tokens()
    results = []
    for recording in (False, True):
        torch.manual_seed(3)
        with torch.no_grad():
            if recording:
                with record_torch_draws() as draws:
                    y = model(x)
            else:
                y = model(x)
        results.append((y, torch.get_rng_state()))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert [d.op for d in draws[:2]] == ["dropout", "scaled_dot_product_attention"]


def test_a_transposed_view_is_recorded_in_the_order_torch_draws():
    x = randn(5, 3, 8).transpose(0, 1)  # (3, 5, 8) over (5, 3, 8) memory
    torch.manual_seed(0)
    with record_torch_draws() as draws:
        y = TF.dropout(x, 0.3)
    (draw,) = draws
    assert (draw.shape, draw.view) == ((5, 3, 8), (3, 5, 8))
    assert np.array_equal(draw.mask, (y != 0).transpose(0, 1).numpy())
    assert "shape (5, 3, 8) (memory order of a (3, 5, 8) view), p=0.3" in draw.describe()
    # the same draws as a contiguous (5, 3, 8) tensor's
    torch.manual_seed(0)
    assert np.array_equal(draw.mask, (TF.dropout(torch.ones(5, 3, 8), 0.3) != 0).numpy())
