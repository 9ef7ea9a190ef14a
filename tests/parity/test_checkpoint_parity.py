"""flashdrop.checkpoint in torch mode against torch.utils.checkpoint (preserve_rng_state=True).

After the same seed, a checkpointed training step draws the masks torch draws, computes the
gradients torch computes, and leaves the generator where torch's is: the forward's draws only,
for both ``use_reentrant`` settings.
"""

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import torch.utils.checkpoint
from mlx.utils import tree_flatten, tree_unflatten

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn

SEED = 123
TORCH_STATE_BYTES = 5056


def torch_layer(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    h = TF.dropout(h * w, 0.5)
    return TF.dropout1d(h.reshape(8, 8, 8), 0.3).reshape(8, 64) * 2


def mlx_layer(w: mx.array, h: mx.array) -> mx.array:
    h = F.dropout(h * w, 0.5)
    return F.dropout1d(h.reshape(8, 8, 8), 0.3).reshape(8, 64) * 2


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((2, 64), dtype=np.float32),
        rng.standard_normal((8, 64), dtype=np.float32),
    )


def torch_step(use_reentrant: bool | None):
    w_np, x_np = inputs()
    w = torch.from_numpy(w_np).requires_grad_()
    x = torch.from_numpy(x_np)
    torch.manual_seed(SEED)
    h = x
    for i in range(2):
        if use_reentrant is None:
            h = torch_layer(w[i], h)
        else:
            h = torch.utils.checkpoint.checkpoint(torch_layer, w[i], h, use_reentrant=use_reentrant)
    (h**2).sum().backward()
    return h.detach().numpy(), w.grad.numpy(), torch.get_rng_state().numpy().tobytes()


def flashdrop_step(checkpoint: bool):
    w_np, x_np = inputs()
    layer = flashdrop.checkpoint(mlx_layer) if checkpoint else mlx_layer
    outputs = []

    def loss(w, x):
        h = x
        for i in range(2):
            h = layer(w[i], h)
        outputs.append(h)
        return (h**2).sum()

    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(SEED)
        grad = mx.grad(loss)(mx.array(w_np), mx.array(x_np))
        state = bytes(np.array(flashdrop.get_rng_state()))[:TORCH_STATE_BYTES]
    return np.array(outputs[0]), np.array(grad), state


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpointed_step_matches_torch_checkpoint(use_reentrant):
    out, grad, state = torch_step(use_reentrant)
    _, _, plain_state = torch_step(None)
    assert state == plain_state, "torch: checkpointing takes no extra draws"
    ours_out, ours_grad, ours_state = flashdrop_step(checkpoint=True)
    assert np.array_equal(ours_out, out), "the same masks"
    assert ours_state == state, "the generator advanced exactly as torch's"
    np.testing.assert_allclose(ours_grad, grad, rtol=1e-6, atol=1e-6)
    _, uncheckpointed_grad, _ = flashdrop_step(checkpoint=False)
    assert np.array_equal(ours_grad, uncheckpointed_grad), "bit for bit the uncheckpointed grad"


# --- a transformer: attention with dropout of its weights, residual and MLP dropout -----------

DIMS, HEADS, LENGTH, VOCAB = 16, 2, 6, 11


class TorchBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(DIMS)
        self.qkv, self.proj = torch.nn.Linear(DIMS, 3 * DIMS), torch.nn.Linear(DIMS, DIMS)
        self.up, self.down = torch.nn.Linear(DIMS, 4 * DIMS), torch.nn.Linear(4 * DIMS, DIMS)
        self.residual_dropout, self.mlp_dropout = torch.nn.Dropout(0.1), torch.nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        heads = self.qkv(self.norm(x)).reshape(n, length, 3, HEADS, -1).permute(2, 0, 3, 1, 4)
        a = TF.scaled_dot_product_attention(*heads, dropout_p=0.3, is_causal=True)
        x = x + self.residual_dropout(self.proj(a.transpose(1, 2).reshape(n, length, DIMS)))
        return x + self.down(self.mlp_dropout(TF.gelu(self.up(x))))


class MlxBlock(mlx.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = mlx.nn.LayerNorm(DIMS)
        self.qkv, self.proj = mlx.nn.Linear(DIMS, 3 * DIMS), mlx.nn.Linear(DIMS, DIMS)
        self.up, self.down = mlx.nn.Linear(DIMS, 4 * DIMS), mlx.nn.Linear(4 * DIMS, DIMS)
        self.residual_dropout, self.mlp_dropout = nn.Dropout(0.1), nn.Dropout(0.2)

    def __call__(self, x: mx.array) -> mx.array:
        n, length, _ = x.shape
        heads = self.qkv(self.norm(x)).reshape(n, length, 3, HEADS, -1).transpose(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(*heads, dropout_p=0.3, is_causal=True)
        x = x + self.residual_dropout(self.proj(a.swapaxes(1, 2).reshape(n, length, DIMS)))
        return x + self.down(self.mlp_dropout(mlx.nn.gelu(self.up(x))))


def transformer_step_torch(use_reentrant: bool) -> tuple[float, dict, dict, bytes]:
    torch.manual_seed(0)
    embedding, blocks = torch.nn.Embedding(VOCAB, DIMS), [TorchBlock() for _ in range(2)]
    tokens = torch.arange(2 * LENGTH).reshape(2, LENGTH) % VOCAB
    torch.manual_seed(SEED)
    x = embedding(tokens)
    for block in blocks:
        x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=use_reentrant)
    loss = (x**2).mean()
    loss.backward()
    named = {"embedding.weight": embedding.weight}
    for i, block in enumerate(blocks):
        named.update({f"blocks.{i}.{k}": v for k, v in block.named_parameters()})
    weights = {k: v.detach().numpy().copy() for k, v in named.items()}
    grads = {k: v.grad.numpy() for k, v in named.items()}
    return loss.item(), weights, grads, torch.get_rng_state().numpy().tobytes()


class MlxModel(mlx.nn.Module):
    def __init__(self, checkpoint: bool) -> None:
        super().__init__()
        self.embedding, self.blocks = mlx.nn.Embedding(VOCAB, DIMS), [MlxBlock() for _ in range(2)]
        self.checkpoint = checkpoint

    def __call__(self, tokens: mx.array) -> mx.array:
        x = self.embedding(tokens)
        for block in self.blocks:
            x = flashdrop.checkpoint(block)(x) if self.checkpoint else block(x)
        return (x**2).mean()


def transformer_step_flashdrop(weights: dict, checkpoint: bool) -> tuple[float, dict, bytes]:
    model = MlxModel(checkpoint)
    model.update(tree_unflatten([(k, mx.array(v)) for k, v in weights.items()]))
    tokens = mx.arange(2 * LENGTH).reshape(2, LENGTH) % VOCAB
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(SEED)
        loss, grads = mlx.nn.value_and_grad(model, lambda m, t: m(t))(model, tokens)
        state = bytes(np.array(flashdrop.get_rng_state()))[:TORCH_STATE_BYTES]
    return loss.item(), {k: np.array(v) for k, v in tree_flatten(grads)}, state


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpointed_transformer_matches_torch_checkpoint(use_reentrant):
    """Two checkpointed transformer blocks (attention dropout, residual and MLP dropout):
    torch's loss and gradients (float32 sums in other orders: close, not equal), torch's
    generator state exactly; and bit for bit the uncheckpointed model's."""
    loss, weights, grads, state = transformer_step_torch(use_reentrant)
    ours = transformer_step_flashdrop(weights, checkpoint=True)
    assert ours[2] == state, "torch's generator, after the forward's draws only"
    assert np.isclose(ours[0], loss, rtol=1e-5)
    for name, grad in grads.items():
        assert np.allclose(ours[1][name], grad, rtol=1e-4, atol=1e-6), name
    plain = transformer_step_flashdrop(weights, checkpoint=False)
    assert ours[0] == plain[0] and ours[2] == plain[2]
    assert all(np.array_equal(ours[1][k], plain[1][k]) for k in plain[1])


# --- every draw and state call inside the checkpointed function (issue 18, item 1) -----------

NOISE_SHAPE = (3, 4)


def state_calls(library, noise: str):
    """fork_rng / get_rng_state + set_rng_state / manual_seed inside the function, written once
    for ``library`` torch or flashdrop (the same names)."""
    fork_rng = torch.random.fork_rng if library is torch else flashdrop.fork_rng

    def draw():
        if noise == "fork_rng":
            with fork_rng():
                forked = library.randn(NOISE_SHAPE)
            return forked + 2 * library.randn(NOISE_SHAPE)  # the same draw, twice
        if noise == "rng_state":
            state = library.get_rng_state()
            first = library.rand(NOISE_SHAPE)
            library.set_rng_state(state)
            return first + 2 * library.rand(NOISE_SHAPE)
        library.manual_seed(7)
        return library.randn(NOISE_SHAPE)

    return draw


# Each of torch's draws (as flashdrop spells it), as a noise multiplying x: (torch, flashdrop).
NOISES = {
    "rand": (lambda x: torch.rand(NOISE_SHAPE), lambda x: flashdrop.rand(*NOISE_SHAPE)),
    "rand_like": (torch.rand_like, flashdrop.rand_like),
    "randn": (lambda x: torch.randn(NOISE_SHAPE), lambda x: flashdrop.randn(NOISE_SHAPE)),
    "randn_like": (torch.randn_like, flashdrop.randn_like),
    "randint": (
        lambda x: torch.randint(-3, 9, NOISE_SHAPE).float(),
        lambda x: flashdrop.randint(-3, 9, NOISE_SHAPE).astype(mx.float32),
    ),
    "randint_like": (
        lambda x: torch.randint_like(x, 9),
        lambda x: flashdrop.randint_like(x, 9),
    ),
    "randperm": (
        lambda x: torch.randperm(12).reshape(NOISE_SHAPE).float(),
        lambda x: flashdrop.randperm(12).reshape(NOISE_SHAPE).astype(mx.float32),
    ),
    "bernoulli": (
        lambda x: torch.bernoulli(torch.full(NOISE_SHAPE, 0.4)),
        lambda x: flashdrop.bernoulli(mx.full(NOISE_SHAPE, 0.4)),
    ),
    "normal": (
        lambda x: torch.normal(torch.ones(NOISE_SHAPE), 0.5),
        lambda x: flashdrop.normal(mx.ones(NOISE_SHAPE), 0.5),
    ),
    "normal_size": (
        lambda x: torch.normal(2.0, 3.0, NOISE_SHAPE),
        lambda x: flashdrop.normal(2.0, 3.0, NOISE_SHAPE),
    ),
    "dropout": (
        lambda x: TF.dropout(torch.ones(NOISE_SHAPE), 0.5),
        lambda x: F.dropout(mx.ones(NOISE_SHAPE), 0.5),
    ),
    **{
        name: (
            lambda x, name=name: state_calls(torch, name)(),
            lambda x, name=name: state_calls(flashdrop, name)(),
        )
        for name in ("fork_rng", "rng_state", "manual_seed")
    },
}


def noisy_step_torch(noise: str, use_reentrant: bool | None) -> tuple:
    draw = NOISES[noise][0]
    x = torch.from_numpy(np.linspace(0.5, 2.0, 12, dtype=np.float32).reshape(NOISE_SHAPE))
    x.requires_grad_()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * draw(x)

    torch.manual_seed(SEED)
    before = torch.rand(2)  # the stream does not start at the seed
    if use_reentrant is None:
        y = fn(x)
    else:
        y = torch.utils.checkpoint.checkpoint(fn, x, use_reentrant=use_reentrant)
    (y**2).sum().backward()
    after = torch.rand(2)  # where the stream is, after the backward pass
    outputs = [t.detach().numpy() for t in (before, y, x.grad, after)]
    return outputs, torch.get_rng_state().numpy().tobytes()


def noisy_step_flashdrop(noise: str, checkpoint: bool) -> tuple:
    draw = NOISES[noise][1]
    x = mx.array(np.linspace(0.5, 2.0, 12, dtype=np.float32).reshape(NOISE_SHAPE))

    def fn(x: mx.array) -> mx.array:
        return x * draw(x)

    wrapped = flashdrop.checkpoint(fn) if checkpoint else fn
    seen = []

    def loss(x: mx.array) -> mx.array:
        y = wrapped(x)
        seen.append(y)
        return (y**2).sum()

    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(SEED)
        before = flashdrop.rand(2)
        grad = mx.grad(loss)(x)
        after = flashdrop.rand(2)
        state = bytes(np.array(flashdrop.get_rng_state()))[:TORCH_STATE_BYTES]
    return [np.array(a) for a in (before, seen[0], grad, after)], state


@pytest.mark.parametrize("use_reentrant", [True, False])
@pytest.mark.parametrize("noise", NOISES)
def test_every_draw_inside_checkpoint_replays_as_torch_checkpoint(noise, use_reentrant):
    """``x * noise`` checkpointed: the backward pass sees the forward's noise (the gradient is
    2 x noise**2), state calls inside see the forward's state, and the stream ends where
    torch's does. Every value here is exact: draws are torch's bits, the rest products."""
    theirs, their_state = noisy_step_torch(noise, use_reentrant)
    _, plain_state = noisy_step_torch(noise, None)
    assert their_state == plain_state, "torch: checkpointing takes no extra draws"
    ours, our_state = noisy_step_flashdrop(noise, checkpoint=True)
    for name, a, b in zip(("before", "forward", "gradient", "after"), ours, theirs, strict=True):
        assert np.array_equal(a, b), name
    assert our_state == their_state
    plain, _ = noisy_step_flashdrop(noise, checkpoint=False)
    assert all(np.array_equal(a, b) for a, b in zip(ours, plain, strict=True))
