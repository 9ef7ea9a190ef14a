"""scaled_dot_product_attention inside models: a compiled training step, mx.checkpoint, the
fast path's choices. (Parity with torch: tests/parity/test_attention_parity.py.)"""

import math

import mlx.core as mx
import mlx.nn
import mlx.optimizers as optim
import mlx.utils
import numpy as np
import pytest

import flashdrop
from flashdrop import _attention
from flashdrop.nn import functional as F


class TinyAttention(mlx.nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, p: float = 0.3) -> None:
        super().__init__()
        self.qkv = mlx.nn.Linear(dim, 3 * dim)
        self.out = mlx.nn.Linear(dim, dim)
        self.heads, self.p = heads, p

    def __call__(self, x: mx.array) -> mx.array:
        n, length, dim = x.shape
        q, k, v = (
            a.reshape(n, length, self.heads, -1).swapaxes(1, 2)
            for a in mx.split(self.qkv(x), 3, axis=-1)
        )
        p = self.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.out(y.swapaxes(1, 2).reshape(n, length, dim))


def test_compiled_training_step_draws_a_new_mask_each_step_and_learns():
    mx.random.seed(0)
    model = TinyAttention()
    optimizer = optim.Adam(learning_rate=1e-2)
    x = mx.random.normal((4, 8, 16))
    target = mx.random.normal((4, 8, 16))

    def loss_fn(model, x, target):
        return mlx.nn.losses.mse_loss(model(x), target)

    loss_and_grad = mlx.nn.value_and_grad(model, loss_fn)
    state = [model.state, optimizer.state]

    def step(x, target):
        loss, grads = loss_and_grad(model, x, target)
        optimizer.update(model, grads)
        return loss

    compiled = flashdrop.compile(step, inputs=state, outputs=state)
    model.eval()
    before = loss_fn(model, x, target).item()
    model.train()
    losses = []
    for _ in range(30):
        losses.append(compiled(x, target).item())
        mx.eval(state)
    model.eval()
    after = loss_fn(model, x, target).item()
    assert all(math.isfinite(v) for v in losses)
    assert len(set(losses[:5])) == 5  # each step drew its own mask (and the weights moved)
    assert after < before
    # the same parameters, two training-mode calls: two masks
    model.train()
    assert not mx.array_equal(model(x), model(x)).item()


def test_gradient_under_checkpoint_is_finite():
    """mx.checkpoint recomputes the forward pass; with a fresh key its mask differs (a known MLX
    behaviour, see the reference notes), but the gradient is a gradient of the right shape.
    flashdrop.checkpoint replays the forward's mask: tests/unit/test_transforms.py."""
    q = mx.random.normal((2, 2, 5, 4))

    def f(q):
        return F.scaled_dot_product_attention(q, q, q, dropout_p=0.2).sum()

    grad = mx.grad(mx.checkpoint(f))(q)
    assert grad.shape == q.shape
    assert bool(mx.all(mx.isfinite(grad)).item())


@pytest.mark.parametrize(
    "shapes, causal, mask, expected",
    [
        (((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, None, True),
        (((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), True, None, True),
        (((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 8)), True, None, False),  # causal, L != S
        (((3, 4, 8), (3, 4, 8), (3, 4, 8)), False, None, False),  # rank 3
        (((2, 3, 4, 8), (1, 3, 4, 8), (1, 3, 4, 8)), False, None, False),  # broadcast batch
        (((2, 6, 4, 8), (2, 3, 4, 8), (2, 2, 4, 8)), False, None, False),  # k, v heads differ
        (((2, 6, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, None, True),  # GQA, MLX's own
        (((2, 6, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, mx.bool_, True),
        (((2, 1, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, None, False),  # query heads of 1
        (((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, mx.bool_, True),
        (((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, mx.float32, False),  # float mask
        (((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)), False, mx.float64, False),
    ],
)
def test_fast_path_only_where_mlx_kernel_is_torchs(shapes, causal, mask, expected):
    q, k, v = (mx.ones(s) for s in shapes)
    attn_mask = None if mask is None else mx.zeros((4, 4), mask)
    assert (_attention.fast(q, k, v, attn_mask, causal, None) is not None) is expected


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16, mx.float32, mx.float64])
def test_fast_path_computes_in_float32_and_returns_the_dtype(dtype):
    """float16 and bfloat16 go to MLX's kernel as float32 (torch computes them in float32);
    float64 never does (MLX's float64 softmax is float32-accurate)."""
    q = mx.random.normal((1, 2, 4, 8), key=mx.random.key(1)).astype(dtype)
    out = _attention.fast(q, q, q, None, False, 1.0)
    if dtype == mx.float64:
        assert out is None
        return
    assert out.dtype == dtype
    expected = mx.fast.scaled_dot_product_attention(*(q.astype(mx.float32),) * 3, scale=1.0)
    assert mx.array_equal(out, expected.astype(dtype)).item()


def test_padded_batch_gradients_are_finite_without_dropout():
    """A batch with padding, the padded keys masked with -inf (a whole sample of padding, and
    left padding under a causal mask): the training step's gradients are finite, the padding
    rows contributing 0, as in torch."""
    mx.random.seed(3)
    model = TinyAttention(p=0.0)
    x = mx.random.normal((2, 6, 16))
    lengths = mx.array([4, 0])  # sample 1: all padding
    real = mx.arange(6)[None] >= 6 - lengths[:, None]  # left padding
    allowed = mx.tril(mx.ones((6, 6), mx.bool_)) & real[:, None, None, :]
    mask = mx.where(allowed, 0.0, -math.inf)

    def loss_fn(model, x):
        n, length, dim = x.shape
        q, k, v = (
            a.reshape(n, length, model.heads, -1).swapaxes(1, 2)
            for a in mx.split(model.qkv(x), 3, axis=-1)
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return model.out(y.swapaxes(1, 2).reshape(n, length, dim)).sum()

    loss, grads = mlx.nn.value_and_grad(model, loss_fn)(model, x)
    flat = mlx.utils.tree_flatten(grads)
    assert math.isfinite(loss.item())
    assert all(bool(mx.all(mx.isfinite(g)).item()) for _, g in flat)


def test_fast_path_zeroes_fully_masked_rows():
    q = mx.random.normal((1, 1, 3, 4))
    mask = mx.array([[True, False, True], [False, False, False], [True, True, True]])
    out = np.array(F.scaled_dot_product_attention(q, q, q, attn_mask=mask))
    assert (out[0, 0, 1] == 0).all()
    assert (out[0, 0, [0, 2]] != 0).all()
