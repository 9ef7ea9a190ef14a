"""The Hugging Face ports of docs/hugging-face.md against transformers' models, built from tiny
configs (no downloads): GPT-2 (causal, GPT2LMHeadModel) and BERT (a padding mask, BertModel),
each with eager and SDPA attention (``attn_implementation``).

In torch mode, from the same seed: in training each port makes the model's draws (the
embeddings', the attention weights' through ``F.dropout`` or SDPA's ``dropout_p``, the residual
ones) with torch's masks, gives its outputs within float32 tolerances and leaves the generator
where torch leaves it; ``mx.grad`` gives torch autograd's gradients (also through
``flashdrop.checkpoint``); in eval mode it draws nothing and gives the model's outputs.
Tolerances: tests/_support/layers.py's.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import mlx.nn
import pytest
import torch

from flashdrop import compat
from tests._support.bert import bert
from tests._support.gpt2 import gpt2
from tests._support.layers import assert_same, assert_same_gradients


class Ported(NamedTuple):
    model: torch.nn.Module
    port: mlx.nn.Module
    theirs: Callable[..., Any]  # the model's call on ``inputs``: its outputs as a tuple
    ours: Callable[..., Any]  # the port's, likewise
    inputs: tuple[torch.Tensor, ...]


def ported(name: str, attention: str) -> Ported:
    if name == "gpt2":
        model, port, ids = gpt2(attention)
        return Ported(
            model,
            port,
            lambda ids: (model(input_ids=ids).logits,),
            lambda ids: (port(ids)["logits"],),
            (ids,),
        )
    model, port, ids, attention_mask = bert(attention)
    return Ported(
        model,
        port,
        lambda ids, mask: tuple(model(input_ids=ids, attention_mask=mask)[:2]),
        lambda ids, mask: tuple(port(ids, mask).values()),  # last_hidden_state, pooler_output
        (ids, attention_mask),
    )


CASES = pytest.mark.parametrize(
    ("name", "attention"), [(n, a) for n in ("gpt2", "bert") for a in ("eager", "sdpa")]
)


@CASES
def test_training_makes_torch_s_draws_and_outputs(name, attention):
    case = ported(name, attention)
    assert_same(case.theirs, case.ours, *case.inputs)


@CASES
def test_eval_draws_nothing_and_gives_torch_s_outputs(name, attention):
    case = ported(name, attention)
    case.model.eval()
    case.port.eval()
    assert_same(case.theirs, case.ours, *case.inputs)


@CASES
def test_gradients_are_torch_autograd_s(name, attention):
    case = ported(name, attention)
    # Weighted sums: a plain sum of LayerNorm's outputs has (nearly) no gradient.
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        weights = [torch.randn(o.shape, generator=generator) for o in case.theirs(*case.inputs)]

    def torch_loss(*inputs):
        return sum((o * w).sum() for o, w in zip(case.theirs(*inputs), weights, strict=True))

    def port_loss(*inputs):
        outputs = case.ours(*inputs)
        return sum((o * compat.to_mlx(w)).sum() for o, w in zip(outputs, weights, strict=True))

    assert_same_gradients(case.model, case.port, torch_loss, port_loss, *case.inputs)
