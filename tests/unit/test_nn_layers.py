"""flashdrop.nn's attention, Transformer and RNN layers on their own (no torch): shapes, the
draws each makes in training and none in evaluation, train/eval followed inside
flashdrop.compile, mlx.nn composition."""

import mlx.core as mx
import mlx.nn
import mlx.optimizers
import numpy as np
import pytest

import flashdrop
from flashdrop import nn
from flashdrop.testing import record_draws

E, HEADS, N, L = 8, 2, 3, 5


def layers():
    """Each layer with a call on (N, L, E) batch-first inputs, and the draws one training call
    makes (shape, p) in order."""
    x = mx.random.normal((N, L, E))
    memory = mx.random.normal((N, L + 1, E))
    return {
        "MultiheadAttention": (
            nn.MultiheadAttention(E, HEADS, dropout=0.1, batch_first=True),
            lambda m: m(x, x, x)[0],
            [((N * HEADS, L, L), 0.1)],
        ),
        "MultiheadAttention need_weights=False": (
            nn.MultiheadAttention(E, HEADS, dropout=0.1, batch_first=True),
            lambda m: m(x, x, x, need_weights=False)[0],
            [((N, HEADS, L, L), 0.1)],
        ),
        "TransformerEncoderLayer": (
            nn.TransformerEncoderLayer(E, HEADS, 16, 0.2, batch_first=True),
            lambda m: m(x),
            [((N, HEADS, L, L), 0.2), ((L, N, E), 0.2), ((N, L, 16), 0.2), ((N, L, E), 0.2)],
        ),
        "TransformerDecoderLayer": (
            nn.TransformerDecoderLayer(E, HEADS, 16, 0.2, batch_first=True),
            lambda m: m(x, memory),
            [
                ((N, HEADS, L, L), 0.2),
                ((L, N, E), 0.2),
                ((N, HEADS, L, L + 1), 0.2),
                ((L, N, E), 0.2),
                ((N, L, 16), 0.2),
                ((N, L, E), 0.2),
            ],
        ),
        "LSTM": (
            nn.LSTM(E, 6, num_layers=3, dropout=0.3, batch_first=True, bidirectional=True),
            lambda m: m(x)[0],
            [((L, N, 12), 0.3)] * 2,
        ),
        "GRU": (nn.GRU(E, 6, num_layers=2, dropout=0.3), lambda m: m(x)[0], [((N, L, 6), 0.3)]),
    }


@pytest.mark.parametrize("name", list(layers()))
def test_draws_in_training_and_none_in_evaluation(name):
    layer, call, expected = layers()[name]
    with record_draws() as draws:
        mx.eval(call(layer))
    assert [(d.shape, round(d.p, 6)) for d in draws] == expected
    layer.eval()
    with record_draws() as draws:
        first, second = call(layer), call(layer)
    assert draws == []
    np.testing.assert_array_equal(np.array(first), np.array(second))


@pytest.mark.parametrize("name", list(layers()))
def test_compiled_through_a_closure_follows_train_and_eval(name):
    layer, call, _ = layers()[name]
    step = flashdrop.compile(lambda: call(layer))
    trained = [np.array(step()) for _ in range(2)]
    assert not np.array_equal(trained[0], trained[1])  # fresh masks each call
    layer.eval()
    np.testing.assert_allclose(np.array(step()), np.array(call(layer)), atol=1e-5)
    if name.startswith(("MultiheadAttention", "LSTM", "GRU")):
        layer.training = True  # as torch code assigns it (to the layer alone, not its children)
    else:
        layer.train()
    assert not np.array_equal(np.array(step()), np.array(step()))


def test_a_training_step_with_an_optimizer():
    model = mlx.nn.Sequential(
        nn.TransformerEncoderLayer(E, HEADS, 16, 0.1, batch_first=True), mlx.nn.Linear(E, 1)
    )
    optimizer = mlx.optimizers.Adam(1e-2)
    x, y = mx.random.normal((N, L, E)), mx.zeros((N, L, 1))

    def loss(model, x, y):
        return mlx.nn.losses.mse_loss(model(x), y)

    grad = mlx.nn.value_and_grad(model, loss)
    losses = []
    for _ in range(20):
        value, grads = grad(model, x, y)
        optimizer.update(model, grads)
        losses.append(value.item())
    assert losses[-1] < losses[0] / 2


def test_shapes_of_unbatched_and_sequence_first_inputs():
    attn = nn.MultiheadAttention(E, HEADS, kdim=4, vdim=6)
    out, weights = attn(mx.ones((L, E)), mx.ones((L + 1, 4)), mx.ones((L + 1, 6)))
    assert (out.shape, weights.shape) == ((L, E), (L, L + 1))
    out, weights = attn(
        mx.ones((L, N, E)), mx.ones((7, N, 4)), mx.ones((7, N, 6)), average_attn_weights=False
    )
    assert (out.shape, weights.shape) == ((L, N, E), (N, HEADS, L, 7))
    lstm = nn.LSTM(E, 6, num_layers=2, proj_size=3, bidirectional=True)
    out, (h, c) = lstm(mx.ones((L, E)))
    assert (out.shape, h.shape, c.shape) == ((L, 6), (4, 3), (4, 6))
    model = nn.Transformer(E, HEADS, 1, 1, 16, batch_first=True)
    assert model(mx.ones((N, L, E)), mx.ones((N, 4, E))).shape == (N, 4, E)
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.tolist() == [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]]


def test_reprs_and_settings():
    assert repr(nn.LSTM(4, 8, 2, dropout=0.5, batch_first=True)).startswith(
        "LSTM(4, 8, num_layers=2, batch_first=True, dropout=0.5"
    )
    attn = nn.MultiheadAttention(8, 2, bias=False)
    assert (attn.head_dim, attn.in_proj_bias, attn.bias_k) == (4, None, None)
    assert "bias" not in attn.out_proj
