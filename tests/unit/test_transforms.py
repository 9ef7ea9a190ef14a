"""Randomness under MLX's transformations: checkpoint, compile, vmap, grad, many shapes."""

import mlx.core as mx
import mlx.nn
import mlx.optimizers
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import _attention, _dropout, _random, nn

MODES = ["mlx", "torch"]


@pytest.fixture(params=MODES)
def mode(request):
    with flashdrop.rng_mode(request.param):
        yield request.param


def state() -> np.ndarray:
    return np.array(flashdrop.get_rng_state())


def inputs():
    w = mx.random.normal((2, 64), key=mx.random.key(0))
    x = mx.random.normal((8, 64), key=mx.random.key(1))
    return w, x


def layer(w: mx.array, h: mx.array) -> mx.array:
    """Two draws, one of them channel dropout, and a nonlinearity between them."""
    h = F.dropout(mx.tanh(h * w), 0.5)
    return F.dropout1d(h.reshape(8, 8, 8), 0.3).reshape(8, 64)


def loss(w: mx.array, x: mx.array, wrap=lambda f: f) -> mx.array:
    # Two checkpointed calls, each with its own weight (mx.checkpoint itself sums the gradient
    # of a weight shared between checkpointed calls in another order).
    h = wrap(layer)(w[0], x)
    h = wrap(layer)(w[1], h)
    return (h**2).sum()


def grad_and_state(seed: int, wrap=lambda f: f):
    flashdrop.manual_seed(seed)
    g = mx.grad(loss)(*inputs(), wrap)
    return np.array(g), state()


# --- flashdrop.checkpoint -----------------------------------------------------------------------


def test_checkpoint_gives_the_uncheckpointed_gradients_and_state(mode):
    expected_grad, expected_state = grad_and_state(3)
    grad, after = grad_and_state(3, flashdrop.checkpoint)
    assert np.array_equal(grad, expected_grad), "the recomputation drew the forward's masks"
    assert np.array_equal(after, expected_state), "the streams advanced by the forward alone"
    other, _ = grad_and_state(4, flashdrop.checkpoint)
    assert not np.array_equal(other, grad), "a new seed, new masks"


def test_plain_mx_checkpoint_recomputes_with_other_masks():
    """The problem flashdrop.checkpoint solves (stated in the docs), in mlx mode."""
    expected, _ = grad_and_state(3)
    grad, _ = grad_and_state(3, mx.checkpoint)
    assert not np.array_equal(grad, expected)


def module_checkpoint(fn):
    """``mlx.nn.utils.checkpoint`` of ``fn``, with a module holding no parameters."""
    return mlx.nn.utils.checkpoint(mlx.nn.Module(), fn)


@pytest.mark.parametrize(
    "plain", [mx.checkpoint, module_checkpoint], ids=["mx.checkpoint", "nn.utils.checkpoint"]
)
def test_torch_mode_draw_recomputed_by_plain_checkpoint_raises(plain):
    """A plain checkpoint's recomputation would draw new masks from torch's stream (a wrong
    gradient, a stream out of step with torch's): refused, naming flashdrop.checkpoint. The
    forward alone (no gradient) is allowed: nothing is recomputed."""
    w, x = inputs()
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(3)
        assert plain(layer)(w[0], x).shape == (8, 64)
        with pytest.raises(RuntimeError, match="cannot be recomputed by mx"):
            mx.grad(loss)(w, x, plain)


def test_torch_mode_checkpoint_inside_plain_checkpoint_raises():
    """flashdrop.checkpoint recomputed by an enclosing plain mx.checkpoint: its forward is
    drawn afresh there, so it is refused too."""
    w, x = inputs()
    inner = flashdrop.checkpoint(layer)
    with (
        flashdrop.rng_mode("torch"),
        pytest.raises(RuntimeError, match="cannot be recomputed by mx"),
    ):
        mx.grad(lambda w: (mx.checkpoint(inner)(w, x) ** 2).sum())(w[0])


def test_checkpoint_forward_and_vjp_are_the_uncheckpointed_ones(mode):
    w, x = inputs()
    flashdrop.manual_seed(5)
    expected, expected_vjp = mx.vjp(lambda w: layer(w, x), [w[0]], [mx.ones((8, 64))])
    flashdrop.manual_seed(5)
    f = flashdrop.checkpoint(layer)
    value, vjp = mx.vjp(lambda w: f(w, x), [w[0]], [mx.ones((8, 64))])
    assert np.array_equal(np.array(value[0]), np.array(expected[0]))
    assert np.array_equal(np.array(vjp[0]), np.array(expected_vjp[0]))


class Block(mlx.nn.Module):
    """A pre-norm transformer block with flashdrop's dropout in its three usual places."""

    def __init__(self, dims: int = 32, heads: int = 4, p: float = 0.25) -> None:
        super().__init__()
        self.norm1 = mlx.nn.LayerNorm(dims)
        self.attention = mlx.nn.MultiHeadAttention(dims, heads)
        self.norm2 = mlx.nn.LayerNorm(dims)
        self.up = mlx.nn.Linear(dims, 4 * dims)
        self.down = mlx.nn.Linear(4 * dims, dims)
        self.dropout_attention = nn.Dropout(p)
        self.dropout_mlp = nn.Dropout(p)
        self.dropout_out = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        h = self.norm1(x)
        x = x + self.dropout_attention(self.attention(h, h, h))
        h = self.dropout_mlp(mlx.nn.gelu(self.up(self.norm2(x))))
        return x + self.dropout_out(self.down(h))


class Model(mlx.nn.Module):
    def __init__(self, checkpoint=None) -> None:
        super().__init__()
        mx.random.seed(0)  # the same weights for every model
        self.blocks = [Block() for _ in range(2)]
        self.head = mlx.nn.Linear(32, 1)
        self.checkpoint = checkpoint

    def __call__(self, x: mx.array) -> mx.array:
        for block in self.blocks:
            x = (self.checkpoint(block) if self.checkpoint else block)(x)
        return self.head(x).mean()


def model_grads(checkpoint, seed: int = 11, training: bool = True) -> list[tuple[str, np.ndarray]]:
    model = Model(checkpoint)
    model.train(training)
    x = mx.random.normal((2, 6, 32), key=mx.random.key(2))
    flashdrop.manual_seed(seed)
    _, grads = mlx.nn.value_and_grad(model, lambda m, x: m(x))(model, x)
    return [(k, np.array(v)) for k, v in mlx.utils.tree_flatten(grads)]


def same_grads(a, b) -> bool:
    return [k for k, _ in a] == [k for k, _ in b] and all(
        np.array_equal(u, v) for (_, u), (_, v) in zip(a, b, strict=True)
    )


def test_checkpointed_transformer_blocks_have_the_uncheckpointed_gradients(mode):
    expected = model_grads(None)
    assert same_grads(model_grads(flashdrop.checkpoint), expected)
    assert not same_grads(model_grads(flashdrop.checkpoint, seed=12), expected)


def test_checkpointed_module_gradients_are_mlx_nn_utils_checkpoints_without_dropout():
    """Without dropout (eval mode) there is nothing random: the parameter gradients are exactly
    those of mlx.nn.utils.checkpoint, the same tree."""
    ours = model_grads(flashdrop.checkpoint, training=False)
    theirs = model_grads(mlx.nn.utils.checkpoint, training=False)
    assert same_grads(ours, theirs)


def test_checkpointed_attention_has_the_uncheckpointed_gradient(mode):
    """scaled_dot_product_attention's dropout of the weights, replayed by flashdrop.checkpoint."""
    q = mx.random.normal((2, 2, 5, 4), key=mx.random.key(3))

    def f(q):
        return (F.scaled_dot_product_attention(q, q, q, dropout_p=0.2) ** 2).sum()

    flashdrop.manual_seed(2)
    expected = np.array(mx.grad(f)(q))
    flashdrop.manual_seed(2)
    assert np.array_equal(np.array(mx.grad(flashdrop.checkpoint(f))(q)), expected)


def test_checkpoint_inside_flashdrop_compile():
    """A compiled training step with checkpointed blocks draws what the eager uncheckpointed step
    draws, step after step (fresh masks each step)."""
    w, x = inputs()
    flashdrop.manual_seed(9)
    eager = [np.array(mx.grad(loss)(w, x)) for _ in range(3)]
    step = flashdrop.compile(lambda w, x: mx.grad(loss)(w, x, flashdrop.checkpoint))
    flashdrop.manual_seed(9)
    compiled = [np.array(step(w, x)) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(eager, compiled, strict=True))
    assert not np.array_equal(compiled[0], compiled[1])


def mlx_own_draws(v: mx.array) -> mx.array:
    """MLX's own draws, from mx.random.state, beside flashdrop's."""
    h = mlx.nn.Dropout(0.5)(v) * mx.random.normal(v.shape)
    return (F.dropout(h, 0.3) * mx.random.uniform(shape=v.shape)).sum()


def mlx_mode_grad(fn, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    mx.random.seed(seed)
    grad = mx.grad(fn)(mx.arange(1, 33, dtype=mx.float32))
    return np.array(grad), np.array(mx.random.state[0])


def test_checkpoint_replays_mlx_own_draws_in_mlx_mode():
    """Issue 18, item 4: mlx.nn.Dropout and mx.random.* inside flashdrop.checkpoint recompute
    from the forward's key: the uncheckpointed gradient bit for bit, and MLX's stream advanced
    once (where the uncheckpointed step leaves it)."""
    expected = mlx_mode_grad(mlx_own_draws)
    got = mlx_mode_grad(flashdrop.checkpoint(mlx_own_draws))
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    plain = mlx_mode_grad(mx.checkpoint(mlx_own_draws))
    assert not np.array_equal(plain[0], expected[0]), "what a plain mx.checkpoint does"


def test_checkpoint_inside_compile_refuses_mlx_own_draws():
    """Inside a trace MLX's key cannot be set back for the recomputation: an MLX draw there
    would silently redraw, so it is refused; flashdrop's draws replay (test above)."""
    step = flashdrop.compile(lambda v: mx.grad(flashdrop.checkpoint(mlx_own_draws))(v))
    with pytest.raises(RuntimeError, match="MLX draw that takes no key"):
        step(mx.ones((8,)))


def training_losses(compiled: bool, steps: int = 3) -> list[float]:
    model = Model(flashdrop.checkpoint)
    optimizer = mlx.optimizers.SGD(learning_rate=0.05)
    x = mx.random.normal((2, 6, 32), key=mx.random.key(2))

    def step(x):
        loss, grads = mlx.nn.value_and_grad(model, lambda m, x: m(x))(model, x)
        optimizer.update(model, grads)
        return loss

    if compiled:
        state = [model.state, optimizer.state]
        step = flashdrop.compile(step, inputs=state, outputs=state)
    flashdrop.manual_seed(1)
    return [step(x).item() for _ in range(steps)]


def test_compiled_training_step_with_checkpointed_blocks_matches_eager():
    compiled, eager = training_losses(True), training_losses(False)
    # Compiled graphs may fuse and reorder float ops: the masks are the same, the sums close.
    assert np.allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    assert len(set(compiled)) == 3


# --- torch mode refuses to be frozen or shared ---------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [mx.compile, mx.vmap, lambda f: mx.compile(mx.vmap(f)), lambda f: mx.vmap(mx.compile(f))],
    ids=["compile", "vmap", "compile-vmap", "vmap-compile"],
)
@pytest.mark.parametrize("op", [F.dropout, F.dropout1d, F.alpha_dropout, F.drop_block2d])
def test_torch_mode_draw_inside_compile_or_vmap_raises(transform, op):
    x = mx.ones((2, 3, 5, 5))

    def fn(x):
        if op is F.drop_block2d:
            return op(x.reshape(-1, 3, 5, 5), 0.5, 3)
        if op is F.dropout1d:
            return op(x.reshape(-1, 3, 25)[0], 0.5)
        return op(x, 0.5, training=True)

    with (
        flashdrop.rng_mode("torch"),
        pytest.raises(RuntimeError, match="cannot be compiled or vmapped"),
    ):
        transform(fn)(x)


# Each of issue 13's draws that is given an array: the array tells the trace.
ARRAY_DRAWS = {
    "rand_like": lambda x: flashdrop.rand_like(x),
    "randn_like": lambda x: flashdrop.randn_like(x),
    "randint_like": lambda x: flashdrop.randint_like(x, 10).astype(x.dtype),
    "bernoulli": lambda x: flashdrop.bernoulli(x * 0.5),
    "bernoulli_p": lambda x: flashdrop.bernoulli(x, 0.5),
    "normal_mean": lambda x: flashdrop.normal(x),
    "normal_std": lambda x: flashdrop.normal(0.0, x),
    "normal_both": lambda x: flashdrop.normal(x, x),
}


@pytest.mark.parametrize("transform", [mx.compile, mx.vmap], ids=["compile", "vmap"])
@pytest.mark.parametrize("draw", ARRAY_DRAWS.values(), ids=ARRAY_DRAWS.keys())
def test_torch_mode_draws_given_an_array_refuse_plain_compile_and_vmap(transform, draw):
    x = mx.ones((2, 3))
    with flashdrop.rng_mode("torch"):
        eager = draw(x)  # uncompiled, the draw is fine
        assert eager.shape == (2, 3)
        with pytest.raises(RuntimeError, match="cannot be compiled or vmapped"):
            transform(lambda x: x + draw(x))(x)


def test_torch_mode_draw_of_a_size_is_not_caught_by_plain_compile():
    """Documented (docs/differences.md): a draw given only a size has no array that a plain
    ``mx.compile`` traces, and MLX tells no trace otherwise; the mask is frozen at trace time.
    flashdrop.compile refuses it (test_draws_parity)."""
    step = mx.compile(lambda x: x + flashdrop.rand(3))
    with flashdrop.rng_mode("torch"):
        first, second = step(mx.zeros(3)), step(mx.zeros(3))
    assert np.array_equal(np.array(first), np.array(second))


def test_torch_mode_under_grad_draws_the_eager_masks():
    x = mx.random.normal((16, 16), key=mx.random.key(0))
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(0)
        expected = np.array(F.dropout(x, 0.5) != 0, dtype=np.float32) * 2
        flashdrop.manual_seed(0)
        grad = mx.grad(lambda x: F.dropout(x, 0.5).sum())(x)
    assert np.array_equal(np.array(grad), expected)


def test_mlx_mode_under_vmap_shares_one_mask_like_mlx_nn_dropout():
    """MLX's behaviour, documented: one draw of the row's shape, the same mask in every row."""
    x = mx.ones((6, 32))
    mx.random.seed(4)
    ours = np.array(mx.vmap(lambda r: F.dropout(r, 0.5))(x))
    mx.random.seed(4)
    theirs = np.array(mx.vmap(mlx.nn.Dropout(0.5))(x))
    assert np.array_equal(ours, theirs)
    assert (ours == ours[0]).all() and 0 < (ours[0] == 0).sum() < 32
    mx.random.seed(4)
    batched = np.array(F.dropout(x, 0.5))  # the way to a mask per row
    assert not (batched == batched[0]).all()


# --- flashdrop.compile ---------------------------------------------------------------------------


def test_compile_shapeless_raises_before_tracing():
    calls = []
    with pytest.raises(ValueError, match="shapeless=True cannot compile a random draw"):
        flashdrop.compile(lambda x: calls.append(x) or F.dropout(x), shapeless=True)
    assert calls == []


def test_a_failed_trace_leaves_the_random_state_working(mode):
    broken = flashdrop.compile(lambda x: F.dropout(x, 0.5) + mx.ones((3,)))
    flashdrop.manual_seed(6)
    expected = np.array(F.dropout(mx.ones((64,)), 0.5))
    flashdrop.manual_seed(6)
    with pytest.raises((ValueError, RuntimeError)):
        broken(mx.ones((4,)))
    assert np.array_equal(np.array(F.dropout(mx.ones((64,)), 0.5)), expected)


def test_a_failed_trace_inside_a_trace_raises_its_own_error():
    """A compiled function failing inside another's trace (a torch-mode draw there) raises its
    RuntimeError, and the random state works afterwards (found by scripts/soak_fuzz.py)."""

    def inner(x):
        with flashdrop.rng_mode("torch"):
            return F.dropout(x, 0.5)

    outer = flashdrop.compile(lambda x: flashdrop.compile(inner)(F.dropout(x, 0.5)))
    flashdrop.manual_seed(6)
    expected = np.array(F.dropout(mx.ones((64,)), 0.5))
    flashdrop.manual_seed(6)
    with pytest.raises(RuntimeError, match="cannot be compiled"):
        outer(mx.ones((4,)))
    assert np.array_equal(np.array(F.dropout(mx.ones((64,)), 0.5)), expected)


def test_no_false_error_after_disable_compile():
    x = mx.ones((64,))
    step = flashdrop.compile(lambda x: F.dropout(x, 0.5))
    mx.disable_compile()
    try:
        with flashdrop.rng_mode("torch"):
            flashdrop.manual_seed(2)
            eager = [np.array(F.dropout(x, 0.5)) for _ in range(2)]
            flashdrop.manual_seed(2)
            assert all(np.array_equal(np.array(step(x)), e) for e in eager)
    finally:
        mx.enable_compile()
    with flashdrop.rng_mode("torch"), pytest.raises(RuntimeError, match="cannot be compiled"):
        step(x)


def small_model(dropout: mlx.nn.Module) -> mlx.nn.Module:
    mx.random.seed(0)
    return mlx.nn.Sequential(mlx.nn.Linear(8, 8), dropout)


@pytest.mark.parametrize(
    ("dropout", "in_inputs"),
    [(nn.Dropout(0.5), True), (nn.Dropout(0.5), False), (mlx.nn.Dropout(0.5), True)],
    ids=["flashdrop-layer-in-inputs", "flashdrop-layer-in-closure", "mlx-layer-in-inputs"],
)
def test_compiled_function_follows_train_and_eval(dropout, in_inputs):
    # As torch.compile, a compiled step retraces when a layer's training flag changes: a trace
    # made in training never drops in eval, nor the other way round.
    model = small_model(dropout)
    traces = []

    def forward(x):
        traces.append(model.training)
        return model(x)

    state = [model.state] if in_inputs else None
    step = flashdrop.compile(forward, inputs=state, outputs=state)
    x = mx.ones((2, 8))
    first = step(x)
    model.eval()
    assert mx.array_equal(step(x), model(x)) and mx.array_equal(step(x), step(x))
    model.train()
    second = step(x)
    assert not mx.array_equal(first, second)  # training again: fresh masks
    assert (mx.abs(second) > 0).sum() < second.size  # it drops
    assert traces == [True, False]  # one trace per mode, each reused


def test_compiled_function_inside_a_compiled_function_follows_eval():
    # The outer trace inlines the inner one: it depends on the inner function's layers too,
    # also when the inner function was traced before the outer one.
    model = small_model(nn.Dropout(0.5))
    inner = flashdrop.compile(lambda x: model(x))
    outer = flashdrop.compile(lambda x: inner(x) + 0)
    x = mx.ones((2, 8))
    inner(x)
    outer(x)
    model.eval()
    assert mx.array_equal(outer(x), model(x))


def test_compiled_function_traced_in_mlx_mode_follows_torch_mode():
    """Issue 18, item 2: a trace is kept per random mode. A function traced in mlx mode and
    called in torch mode does not run the mlx-mode trace (MLX's masks, torch's stream
    untouched): it is traced anew, where the torch-mode draw is refused; then mlx mode reuses
    its trace. After mx.disable_compile() the same function draws torch's masks."""
    traces = []

    def fn(x):
        traces.append(flashdrop.get_rng_mode())
        return F.dropout(x, 0.5)

    step, x = flashdrop.compile(fn), mx.ones((64,))
    step(x)
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(3)
        before = state()
        with pytest.raises(RuntimeError, match="cannot be compiled"):
            step(x)
        assert np.array_equal(state(), before), "nothing drawn from either stream"
        mx.disable_compile()
        try:
            eager = np.array(F.dropout(x, 0.5))
            flashdrop.manual_seed(3)
            assert np.array_equal(np.array(step(x)), eager)
        finally:
            mx.enable_compile()
    step(x)
    assert traces == ["mlx", "torch", "torch"]


# --- many shapes ---------------------------------------------------------------------------------


def per_shape_cache(monkeypatch, **kwargs) -> _random.CompiledPerShape:
    cache = _random.CompiledPerShape(
        _dropout._draw_and_apply, _dropout._draw_and_scale, flashdrop.compile, **kwargs
    )
    monkeypatch.setattr(_dropout, "_draw_and_apply_compiled", cache)
    return cache


def test_the_per_shape_trace_cache_is_bounded(monkeypatch):
    """Element dropout in mlx mode compiles the draw per shape, from a shape's second call:
    the traces kept are bounded, the least recently used dropped."""
    cache = per_shape_cache(monkeypatch, traces=4, pays_off=1)
    shapes = [(n + 1, 7) for n in range(10)]
    for shape in shapes * 2:
        mx.eval(F.dropout(mx.ones(shape), 0.5))
    assert [signature[0] for signature in cache.compiled] == shapes[-4:]
    assert len(cache.seen) == 0
    for n in range(cache.seen_limit + 5):  # shapes seen once are remembered, a bounded number
        mx.eval(F.dropout(mx.ones((1, n + 1)), 0.5))
    assert len(cache.seen) == cache.seen_limit


def test_shapes_cycling_faster_than_traces_pay_off_stop_compiling(monkeypatch):
    cache = per_shape_cache(monkeypatch, traces=4, pays_off=8)
    shapes = [(n + 1, 7) for n in range(6)]
    for shape in shapes * 3:  # the fifth compiled shape drops one that served 1 call
        mx.eval(F.dropout(mx.ones(shape), 0.5))
    assert not cache.compiling
    kept = list(cache.compiled)
    for shape in [(9, 9)] * 3:  # a new shape is no longer compiled
        mx.eval(F.dropout(mx.ones(shape), 0.5))
    assert list(cache.compiled) == kept


@pytest.mark.parametrize(
    ("mode_name", "op"),
    [("mlx", F.alpha_dropout), ("torch", F.dropout), ("torch", F.alpha_dropout)],
)
def test_shapes_seen_once_share_one_trace(monkeypatch, mode_name, op):
    """A formula compiled shapeless serves every shape of a number of dimensions: torch mode's
    (the mask drawn on the host), and alpha dropout's for an mlx-mode shape seen once (plain
    dropout's is mlx.nn.Dropout's two products, uncompiled)."""
    traces = []
    name, fn = {
        "mlx": ("_select_compiled", _dropout._select),
        "torch": ("_apply_compiled", _dropout._apply),
    }[mode_name]

    def counted(*args):
        traces.append(args[0].shape)
        return fn(*args)

    monkeypatch.setattr(_dropout, name, mx.compile(counted, shapeless=True))
    with flashdrop.rng_mode(mode_name):
        for n in range(1, 300):
            mx.eval(op(mx.ones((n % 17 + 1, n)), 0.5, training=True))
    assert len(traces) == 1


def test_attention_softmax_traces_are_bounded():
    """scaled_dot_product_attention's softmax is compiled per shape: over many sequence
    lengths the traces kept stay bounded (each one held memory for good)."""
    cache = _attention._safe_softmax_compiled
    for n in range(1, getattr(cache, "traces", 256) + 20):
        q = mx.ones((1, 1, 2, 4))
        k = mx.ones((1, 1, n, 4))
        for _ in range(2):  # a shape is compiled from its second call
            mx.eval(F.scaled_dot_product_attention(q, k, k, dropout_p=0.25))
    assert len(cache.compiled) <= cache.traces


@pytest.mark.parametrize("shape", [(3, 77), (300, 300)])
def test_first_and_compiled_calls_of_a_shape_draw_alike(shape):
    """A shape's first call (uncompiled draw), its later ones (the draw compiled with the
    formula) and mlx.nn.Dropout's agree, bit for bit."""
    x = mx.random.normal(shape, key=mx.random.key(0))
    ours, theirs = [], []
    mx.random.seed(8)
    for _ in range(3):
        ours.append(np.array(F.dropout(x, 0.5)))
    mx.random.seed(8)
    for _ in range(3):
        theirs.append(np.array(mlx.nn.Dropout(0.5)(x)))
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
