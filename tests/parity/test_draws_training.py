"""A ported training loop whose randomness is all flashdrop's: each epoch shuffles the data with
``randperm``, each step picks its batch with ``randint``, and the model draws a custom
``rand_like(h) < p`` dropout, ``randn_like`` noise, a ``bernoulli(probs)`` gate, a LayerDrop
``rand([])``, ``F.dropout`` and the attention weights' dropout of
``scaled_dot_product_attention``, then takes an SGD step. In torch mode, from one seed, it draws
torch's very values and reaches torch's losses and weights; in mlx mode, compiled with
``flashdrop.compile``, it matches its own eager run from the same seed."""

import functools

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from tests._support.bits import same_state

VOCAB, DIM, HEADS, LENGTH, BATCH = 11, 8, 2, 6, 4
GATE = np.linspace(0.5, 1.0, LENGTH, dtype=np.float32)[:, None]  # per-position keep chance


def initial_weights():
    rng = np.random.default_rng(0)
    return {
        "embed": rng.normal(0, 0.5, (VOCAB, DIM)).astype(np.float32),
        "qkv": rng.normal(0, 0.3, (DIM, 3 * DIM)).astype(np.float32),
        "out": rng.normal(0, 0.3, (DIM, VOCAB)).astype(np.float32),
    }


DATA = np.random.default_rng(1).integers(0, VOCAB, (10, LENGTH + 1))


def forward(lib, F_, w, tokens, targets, branch=True):
    """One model, written once for torch (lib=torch) and for flashdrop on MLX (lib=flashdrop).

    LayerDrop skips the attention block with chance 0.25: by a Python ``if`` (``branch``), as
    torch ports write it, or by a 0/1 factor, which ``mx.compile`` can trace (an ``if`` on an
    array cannot be).
    """
    on_mlx = lib is flashdrop
    h = w["embed"][tokens]  # (B, L, D)
    keep = lib.rand([]) >= 0.25
    if not branch or keep:
        q, k, v = (h @ w["qkv"]).split(DIM, -1) if not on_mlx else mx.split(h @ w["qkv"], 3, -1)

        def heads(x):
            x = x.reshape(BATCH, LENGTH, HEADS, DIM // HEADS)
            return x.transpose(1, 2) if not on_mlx else x.transpose(0, 2, 1, 3)

        a = F_.scaled_dot_product_attention(
            heads(q), heads(k), heads(v), dropout_p=0.2, is_causal=True
        )
        a = a.transpose(1, 2) if not on_mlx else a.transpose(0, 2, 1, 3)
        h = h + a.reshape(BATCH, LENGTH, DIM) * (1 if branch else keep)
    h = h * (lib.rand_like(h) >= 0.1) / 0.9  # a custom dropout
    h = h + 0.05 * lib.randn_like(h)  # noise
    gate = torch.from_numpy(GATE) if not on_mlx else mx.array(GATE)
    h = h * lib.bernoulli(
        gate.expand(LENGTH, DIM) if not on_mlx else mx.broadcast_to(gate, h.shape[1:])
    )
    h = F_.dropout(h, 0.3)
    logits = h @ w["out"]
    if on_mlx:
        log_p = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return -mx.take_along_axis(log_p, targets[..., None], -1).mean()
    return TF.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def train(lib, F_, steps_per_epoch=3, epochs=2, lr=0.5):
    """The loop: shuffle, sample batches, step. Returns the losses and the final weights."""
    on_mlx = lib is flashdrop
    wrap = mx.array if on_mlx else torch.from_numpy
    w = {name: wrap(value) for name, value in initial_weights().items()}
    data = wrap(DATA)
    losses = []
    for _ in range(epochs):
        epoch = data[lib.randperm(len(DATA))]
        for _ in range(steps_per_epoch):
            rows = lib.randint(0, len(DATA), (BATCH,))
            batch = epoch[rows]
            tokens, targets = batch[:, :-1], batch[:, 1:]
            if on_mlx:
                loss_of = functools.partial(forward, lib, F_, tokens=tokens, targets=targets)
                loss, grads = mx.value_and_grad(loss_of)(w)
                w = {name: w[name] - lr * grads[name] for name in w}
                mx.eval(w)
            else:
                w = {name: value.detach().requires_grad_() for name, value in w.items()}
                loss = forward(lib, F_, w, tokens, targets)
                loss.backward()
                with torch.no_grad():
                    w = {name: w[name] - lr * w[name].grad for name in w}
            losses.append(loss.item())
    return losses, {name: np.asarray(value) for name, value in w.items()}


def test_torch_mode_training_loop_matches_torch():
    torch.manual_seed(3)
    expected_losses, expected = train(torch, TF)
    flashdrop.manual_seed(3)
    with flashdrop.rng_mode("torch"):
        losses, got = train(flashdrop, F)
    assert same_state()  # every draw drew what torch drew, in torch's order
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5)


def test_mlx_mode_compiled_step_matches_eager():
    """In mlx mode the model compiled with flashdrop.compile draws what it draws eagerly."""
    w = {name: mx.array(value) for name, value in initial_weights().items()}
    batch = mx.array(DATA[:BATCH])
    tokens, targets = batch[:, :-1], batch[:, 1:]

    def step(w):
        return forward(flashdrop, F, w, tokens, targets, branch=False)

    compiled = flashdrop.compile(step)
    flashdrop.manual_seed(7)
    eager_losses = [step(w).item() for _ in range(4)]
    flashdrop.manual_seed(7)
    compiled_losses = [compiled(w).item() for _ in range(4)]
    assert len(set(eager_losses)) == 4  # fresh draws on every call
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-6)


def test_torch_mode_refuses_compile_with_a_clear_error():
    compiled = flashdrop.compile(lambda x: flashdrop.rand_like(x))
    with flashdrop.rng_mode("torch"), pytest.raises(RuntimeError, match="compile"):
        compiled(mx.ones(3))
