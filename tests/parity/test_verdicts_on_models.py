"""Issue 19's verdicts on whole models: correct ports pass assert_same_as_torch at its default
arguments (torch.testing's tolerances), and each planted mistake fails with its first lines
naming the right draw, module and call site, and no hint its evidence does not support.

The models: nanoGPT (examples/nanogpt_attention.py), a 2-layer ``torch.nn.TransformerEncoder``
(its layer ported by hand in tests/_support/handwritten_ports.py) and Hugging Face's GPT-2
built from a tiny config, with eager and SDPA attention (tests/_support/gpt2.py). All tiny: a
few ms a call.
"""

import functools
import inspect
from pathlib import Path

import mlx.core as mx
import mlx.nn
import pytest
import torch

import flashdrop.nn.functional as F
from flashdrop import compat, nn
from flashdrop.testing import assert_same_as_torch, assert_statistically_equivalent
from tests._support import handwritten_ports as ports
from tests._support.checks import failure, randn
from tests._support.gpt2 import gpt2
from tests.parity.test_draws_examples import copy_weights, gpt


def site(fn, text: str) -> str:
    """``file:line in function`` of the first line of ``fn`` containing ``text``."""
    fn = inspect.unwrap(fn)  # transformers decorates its forwards
    lines, start = inspect.getsourcelines(fn)
    line = start + next(i for i, source in enumerate(lines) if text in source)
    return f"{Path(inspect.getsourcefile(fn)).name}:{line} in {fn.__name__}"


def lines_of(*args, **kwargs) -> list[str]:
    """The lines of assert_same_as_torch's message, its header cut off the first."""
    message = failure(assert_same_as_torch, *args, **kwargs)
    assert message.startswith("the port differs from torch at call 1 of 3 (seed 0): ")
    return message.split(": ", 1)[1].splitlines()


# --- correct ports pass at the defaults ---------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nanogpt_port_passes_at_the_defaults(seed):
    model, port, idx = gpt()
    assert_same_as_torch(model, port, idx, seed=seed, calls=3)


N, L, E, HEADS, FFN = 4, 4, 8, 2, 16  # N == L: a transposed draw has torch's shape


class Encoder(mlx.nn.Module):
    """``torch.nn.TransformerEncoder(layer, 2)`` of batch_first, post-norm layers."""

    def __init__(self, layer: type = ports.TransformerEncoderLayer) -> None:
        super().__init__()
        self.layers = [layer(E, HEADS, FFN, 0.1, False) for _ in range(2)]

    def __call__(self, x: mx.array) -> mx.array:
        for layer in self.layers:
            x = layer(x)
        return x


def encoder(layer: type = ports.TransformerEncoderLayer):
    torch.manual_seed(0)
    block = torch.nn.TransformerEncoderLayer(E, HEADS, FFN, dropout=0.1, batch_first=True)
    model = torch.nn.TransformerEncoder(block, 2, enable_nested_tensor=False)
    port = Encoder(layer)
    copy_weights(model, port)
    return model, port, randn(N, L, E)


@pytest.mark.parametrize("seed", [0, 3])
def test_two_layer_transformer_encoder_port_passes_at_the_defaults(seed):
    model, port, x = encoder()
    assert_same_as_torch(model, port, x, seed=seed)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_hugging_face_gpt2_port_passes_at_the_defaults(attention):
    model, port, ids = gpt2(attention)
    for seed in (0, 1):
        # A ModelOutput against the port's dict, field by field; keyword inputs to both.
        assert_same_as_torch(model, port, input_ids=ids, seed=seed)


# --- planted mistakes ----------------------------------------------------------------------------


class NotTransposed(ports.TransformerEncoderLayer):
    """Planted: dropout1 drawn on the (N, L, E) attention output, not torch's (L, N, E)."""

    def _sa_block(self, x: mx.array) -> mx.array:
        return self.dropout1(self.self_attn(x, need_weights=False)[0])


def test_a_forgotten_transpose_before_dropout1_is_pointed_at_dropout1():
    model, port, x = encoder(NotTransposed)
    lines = lines_of(model, port, x)
    assert lines[0].endswith(
        "elements of output differ (compared within rtol=1.3e-06, "
        "atol=1e-05, torch.testing.assert_close's for float32); first at"
    )
    # Every draw agrees (N == L); torch with dropout1's mask transposed gives the port's output.
    assert lines[-1] == (
        "same masks, the math differs: the port made torch's 8 draws (shape, p and mask of "
        "each), and computes something else with them; it applies the mask of draw #2 "
        f"(dropout, shape ({L}, {N}, {E}), in 'layers.0.dropout1' (Dropout)), and of #6 made at "
        "the same line, in another order of its axes: torch's outputs with those masks' axes 0 "
        "and 1 swapped are the port's (a mask drawn on (N, L, E) where torch draws it on "
        "(L, N, E) draws "
        "torch's numbers when N == L, and puts them elsewhere)"
    )


def test_a_transposed_draw_in_one_layer_is_pointed_at_alone():
    model, port, x = encoder()
    port.layers[1].__class__ = NotTransposed  # planted in the second layer only
    assert lines_of(model, port, x)[-1].endswith(
        "computes something else with them; it applies the mask of draw #6 (dropout, shape "
        f"({L}, {N}, {E}), in 'layers.1.dropout1' (Dropout)) in another order of its axes: "
        "torch's outputs with that mask's axes 0 and 1 swapped are the port's (a mask drawn on "
        "(N, L, E) where torch draws it on (L, N, E) draws torch's numbers when N == L, and puts "
        "them elsewhere)"
    )


def test_a_math_mistake_gets_no_axis_order_hint():
    model, port, x = encoder()
    port.layers[1].norm_first = True  # planted: not a dropout mistake
    assert lines_of(model, port, x)[-1] == (
        "same masks, the math differs: the port made torch's 8 draws (shape, p and mask of "
        "each), and computes something else with them"
    )


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_mlx_dropout_at_one_site_is_named_not_its_neighbour(attention):
    model, port, ids = gpt2(attention)
    port.transformer.h[0].attn.resid_dropout = mlx.nn.Dropout(0.1)  # planted
    # h.0's resid_dropout and mlp.dropout draw the same shape and p: the module path decides.
    assert lines_of(model, port, input_ids=ids) == [
        "torch drew 7 times, the port 6 times; torch's draw #3 has no counterpart in the port:",
        "  torch #3: dropout, shape (2, 8, 16), p=0.1, in 'transformer.h.0.attn.resid_dropout' "
        f"(Dropout), at {site(type(model.transformer.h[0].attn).forward, 'resid_dropout(')}",
        "the port's Dropout at 'transformer.h.0.attn.resid_dropout' is mlx.nn's: it draws from "
        "MLX's stream, which flashdrop neither records nor keeps in step with torch's; use "
        "flashdrop.nn's (flashdrop.compat.port_dropout)",
    ]


def test_wrappers_are_seen_through_for_the_eval_hints():
    model, port, ids = gpt2("eager")
    port.eval()  # planted
    lines = lines_of(lambda i: model(input_ids=i), lambda i: port(i), ids)
    assert lines[0].startswith("torch drew 7 times, the port 0 times; torch's draw #1 has no ")
    assert lines[2:] == ["the port's Dropout at 'transformer.drop' is in eval mode"]
    port.train()
    model.eval()  # planted
    lines = lines_of(functools.partial(model, use_cache=False), port.__call__, input_ids=ids)
    assert lines[0].startswith("torch drew 0 times, the port 7 times; the port's draw #1 has ")
    assert lines[2:] == ["torch's Dropout at 'transformer.drop' is in eval mode"]


def test_a_forgotten_functional_dropout_is_named_with_its_p():
    model, port, ids = gpt2("eager")
    port.transformer.h[1].attn.attn_dropout.p = 0.0  # planted: the eager F.dropout's p
    eager = inspect.getmodule(type(model.transformer.h[1].attn)).eager_attention_forward
    at = site(eager, "nn.functional.dropout(")
    assert lines_of(model, port, input_ids=ids) == [
        "torch drew 7 times, the port 6 times; torch's draw #5 has no counterpart in the port:",
        f"  torch #5: dropout, shape (2, 2, 8, 8), p=0.1, in 'transformer.h.1.attn' "
        f"(GPT2Attention), at {at}",
        f"torch's draw #5 is a call of torch.nn.functional.dropout (p=0.1) at {at} inside "
        "'transformer.h.1.attn' (GPT2Attention), not a dropout module's: the port needs "
        "flashdrop.nn.functional.dropout(..., p=0.1) at that point",
    ]
    model, port, ids = gpt2("sdpa")
    port.transformer.h[0].attn.attn_dropout.p = 0.0  # planted: SDPA's dropout_p
    assert lines_of(model, port, input_ids=ids)[2:] == [
        "torch's scaled_dot_product_attention drops the attention weights (its dropout_p=0.1): "
        "pass dropout_p=0.1 to flashdrop.nn.functional.scaled_dot_product_attention"
    ]


class Careless(mlx.nn.Module):
    """Planted: drops whether it trains or not."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def __call__(self, x: mx.array) -> mx.array:
        return F.dropout(x, self.p)


def test_a_port_dropping_in_eval_mode_is_blamed_not_torch_s_eval_mode():
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Dropout(0.2)).eval()
    port = mlx.nn.Sequential(mlx.nn.Linear(16, 16), Careless(0.2))
    port.layers[0].update({k: compat.to_mlx(v) for k, v in model[0].state_dict().items()})
    port.eval()
    lines = lines_of(model, port, randn(8, 16))
    assert lines[0] == (
        "torch drew 0 times, the port once; the port's draw #1 has no counterpart in torch:"
    )
    assert lines[2:] == [
        "the port's Careless at 'layers.1' is in eval mode and drew: it drops without checking "
        "self.training (flashdrop.nn's layers do; its functions take training=)"
    ]


def test_the_mlx_mode_table_marks_only_the_draws_that_differ():
    model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Dropout(0.4))
    port = mlx.nn.Sequential(nn.Dropout(0.2), nn.Dropout(0.3))
    with pytest.raises(AssertionError) as error:
        assert_statistically_equivalent(model, port, randn(4, 8), trials=5)
    rows = error.value.flashdrop_draws.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["#1", "!#2"]
