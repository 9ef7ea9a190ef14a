"""Random programs of draws under checkpoint, compile, fork_rng and mode switches, against torch.

Hypothesis writes a program: a list of blocks, each run in a random mode and wrapped (or not)
in ``flashdrop.checkpoint``, ``flashdrop.compile``, ``fork_rng`` or a ``get_rng_state`` ...
``set_rng_state`` pair (which replays the block's draws), a block holding ops and at most one
more block. An op is one of every draw kind (``rand`` ... ``normal``'s four forms), the dropout
family or attention with dropout: it multiplies (or drops out) the running value ``h``, which
starts as the parameters ``x``; the program returns ``sum(h * w)``. Three runs of it:

- **plain**: flashdrop with no checkpoint or compile (``fork_rng``, the state pair and the modes
  kept: they are what the program means). It records the noise of every mlx-mode op.
- **transformed**: the program as written. Against plain: the loss and gradient bit for bit (to
  float32 tolerances where it compiled: MLX fuses compiled graphs), and both streams' final
  state (torch's 5056 bytes and MLX's key) byte for byte.
- **torch**: the same program in torch (``torch.utils.checkpoint`` with a random
  ``use_reentrant``, ``torch.random.fork_rng``, ``torch.get_rng_state``/``set_rng_state``),
  the mlx-mode ops' noise taken from the plain run. Against plain: each draw is exact, the
  sums and attention are float32 computed in other orders, so the loss and gradient agree to
  ``rtol=1e-4``; torch's generator ends where flashdrop's torch-mode stream does, byte for byte.

A torch-mode block under ``flashdrop.compile`` must raise (torch's stream lives on the host)
and leave both streams as they were: it is checked, then left out of the program.

Deterministic: a fixed derandomized search, no example database, no deadline.
scripts/soak_fuzz.py runs the same programs unseeded, for as long as it is asked.
"""

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import torch.utils.checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

import flashdrop
import flashdrop.nn.functional as F

SHAPE = (2, 3, 2, 4)  # (N, C, L, E): attention's (N, heads, L, E), dropout2d's (N, C, H, W)
SIZE = int(np.prod(SHAPE))
TORCH_STATE_BYTES = 5056
RTOL, ATOL = 1e-4, 1e-5  # float32 sums and softmax in other orders (torch against flashdrop)
COMPILED_RTOL = 1e-5  # MLX's fused compiled graphs against its eager ones


def _pair(theirs: Callable[..., Any], ours: Callable[..., Any]) -> tuple:
    return theirs, ours


# Each op: (torch's, flashdrop's) function of h, the same formula on each side. Draws of a
# shape or a constant array multiply h (scaled to about 1: the product of a few stays finite).
OPS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "rand": _pair(lambda h: h * torch.rand(SHAPE), lambda h: h * flashdrop.rand(*SHAPE)),
    "rand_like": _pair(lambda h: h * torch.rand_like(h), lambda h: h * flashdrop.rand_like(h)),
    "randn": _pair(lambda h: h * torch.randn(SHAPE), lambda h: h * flashdrop.randn(SHAPE)),
    "randn_like": _pair(lambda h: h * torch.randn_like(h), lambda h: h * flashdrop.randn_like(h)),
    "randint": _pair(
        lambda h: h * torch.randint(1, 5, SHAPE) / 4,
        lambda h: h * flashdrop.randint(1, 5, SHAPE).astype(mx.float32) / 4,
    ),
    "randint_like": _pair(
        lambda h: h * torch.randint_like(h, 1, 5) / 4,
        lambda h: h * flashdrop.randint_like(h, 1, 5) / 4,
    ),
    "randperm": _pair(
        lambda h: h * torch.randperm(SIZE).reshape(SHAPE) / SIZE,
        lambda h: h * flashdrop.randperm(SIZE).reshape(SHAPE).astype(mx.float32) / SIZE,
    ),
    "bernoulli": _pair(
        lambda h: h * torch.bernoulli(torch.full(SHAPE, 0.7)),
        lambda h: h * flashdrop.bernoulli(mx.full(SHAPE, 0.7)),
    ),
    "bernoulli_p": _pair(
        lambda h: h * torch.bernoulli(torch.ones(SHAPE), 0.6),
        lambda h: h * flashdrop.bernoulli(mx.ones(SHAPE), 0.6),
    ),
    "normal_mean": _pair(
        lambda h: h * torch.normal(torch.ones(SHAPE), 0.5),
        lambda h: h * flashdrop.normal(mx.ones(SHAPE), 0.5),
    ),
    "normal_std": _pair(
        lambda h: h * torch.normal(1.0, torch.full(SHAPE, 0.5)),
        lambda h: h * flashdrop.normal(1.0, mx.full(SHAPE, 0.5)),
    ),
    "normal_both": _pair(
        lambda h: h * torch.normal(torch.ones(SHAPE), torch.full(SHAPE, 0.5)),
        lambda h: h * flashdrop.normal(mx.ones(SHAPE), mx.full(SHAPE, 0.5)),
    ),
    "normal_size": _pair(
        lambda h: h * torch.normal(1.0, 0.5, SHAPE), lambda h: h * flashdrop.normal(1.0, 0.5, SHAPE)
    ),
    "dropout": _pair(lambda h: TF.dropout(h, 0.3), lambda h: F.dropout(h, 0.3)),
    "dropout1d": _pair(
        lambda h: TF.dropout1d(h.reshape(6, 2, 4), 0.4).reshape(SHAPE),
        lambda h: F.dropout1d(h.reshape(6, 2, 4), 0.4).reshape(SHAPE),
    ),
    "dropout2d": _pair(lambda h: TF.dropout2d(h, 0.4), lambda h: F.dropout2d(h, 0.4)),
    "dropout3d": _pair(lambda h: TF.dropout3d(h, 0.4), lambda h: F.dropout3d(h, 0.4)),
    "alpha_dropout": _pair(
        lambda h: TF.alpha_dropout(h, 0.2, True), lambda h: F.alpha_dropout(h, 0.2, True)
    ),
    "feature_alpha_dropout": _pair(
        lambda h: TF.feature_alpha_dropout(h, 0.2, True),
        lambda h: F.feature_alpha_dropout(h, 0.2, True),
    ),
    "attention": _pair(
        lambda h: TF.scaled_dot_product_attention(h, h, h, dropout_p=0.3),
        lambda h: F.scaled_dot_product_attention(h, h, h, dropout_p=0.3),
    ),
}
WRAPPERS = ["plain", "checkpoint", "compile", "fork_rng", "replay"]


class Block(NamedTuple):
    mode: str  # "mlx" or "torch"
    wrapper: str  # one of WRAPPERS
    use_reentrant: bool  # torch's side of a checkpoint
    ops: tuple[Any, ...]  # op names and at most one inner Block


def blocks(depth: int) -> st.SearchStrategy[Block]:
    ops = st.lists(st.sampled_from(sorted(OPS)), min_size=1, max_size=3)
    inner = st.just(()) if depth == 0 else st.lists(blocks(depth - 1), max_size=1)
    return st.builds(
        _block,
        st.sampled_from(["mlx", "torch"]),
        st.sampled_from(WRAPPERS),
        st.booleans(),
        ops,
        inner,
        st.integers(0, 3),
    ).filter(_readable_state)


def _block(
    mode: str, wrapper: str, reentrant: bool, names: list[str], nested: list[Block], at: int
) -> Block:
    return Block(mode, wrapper, reentrant, (*names[:at], *nested, *names[at:]))


def _readable_state(block: Block) -> bool:
    """No fork_rng or state pair inside a compiled block: the state is read on the host
    (get_rng_state, fork_rng) and MLX's key is a traced array there."""
    inner = [item for item in block.ops if isinstance(item, Block)]
    return block.wrapper != "compile" or all(
        item.wrapper not in ("fork_rng", "replay") and _readable_state(item) for item in inner
    )


programs = st.lists(blocks(depth=1), min_size=1, max_size=3)


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, SHAPE).astype(np.float32)
    w = rng.standard_normal(SHAPE).astype(np.float32)
    return x, w


# --- flashdrop's runs ---------------------------------------------------------------------------


class Flashdrop:
    """Runs a program in flashdrop; ``transformed=False`` drops checkpoint and compile and
    records every mlx-mode op's noise (the factor it multiplies h by, h's gradient aside)."""

    def __init__(self, transformed: bool) -> None:
        self.transformed = transformed
        self.noises: dict[tuple[int, int], mx.array] = {}  # by (id(block), index in block.ops)
        self.compiled = False

    def op(self, block: Block, index: int, h: mx.array) -> mx.array:
        ours = OPS[block.ops[index]][1]
        if block.mode == "torch":
            return ours(h)
        # mlx mode: the op's draw as a noise independent of h, which torch's run can replay.
        noise = ours(mx.ones(SHAPE) * 0.9)
        if not self.transformed:
            self.noises[id(block), index] = noise
        return h * noise

    def block(self, block: Block, h: mx.array) -> mx.array:
        def body(h: mx.array) -> mx.array:
            with flashdrop.rng_mode(block.mode):
                for index, item in enumerate(block.ops):
                    is_block = isinstance(item, Block)
                    h = self.block(item, h) if is_block else self.op(block, index, h)
            return h

        if block.wrapper == "fork_rng":
            with flashdrop.fork_rng():
                return body(h)
        if block.wrapper == "replay":  # the block's draws, then the state before them again
            state = flashdrop.get_rng_state()
            h = body(h)
            flashdrop.set_rng_state(state)
            return h
        if not self.transformed or block.wrapper == "plain":
            return body(h)
        if block.wrapper == "checkpoint":
            return flashdrop.checkpoint(body)(h)
        self.compiled = True
        return flashdrop.compile(body)(h)

    def run(self, program: list[Block], seed: int) -> tuple[float, np.ndarray, bytes]:
        x, w = (mx.array(a) for a in inputs())

        def loss(x: mx.array) -> mx.array:
            h = x
            for block in program:
                h = self.block(block, h)
            return (h * w).sum()

        flashdrop.manual_seed(seed)
        value, grad = mx.value_and_grad(loss)(x)
        return value.item(), np.array(grad), bytes(np.array(flashdrop.get_rng_state()))


# --- torch's run --------------------------------------------------------------------------------


def torch_run(program: list[Block], seed: int, noises: dict[tuple[int, int], np.ndarray]) -> tuple:
    """The program in torch: torch-mode ops drawn by torch, mlx-mode ops' noise replayed (also
    when torch's checkpoint recomputes them)."""

    def run_block(block: Block, h: torch.Tensor) -> torch.Tensor:
        def body(h: torch.Tensor) -> torch.Tensor:
            for index, item in enumerate(block.ops):
                if isinstance(item, Block):
                    h = run_block(item, h)
                elif block.mode == "torch":
                    h = OPS[item][0](h)
                else:
                    h = h * torch.from_numpy(noises[id(block), index])
            return h

        if block.wrapper == "fork_rng":
            with torch.random.fork_rng():
                return body(h)
        if block.wrapper == "replay":
            state = torch.get_rng_state()
            h = body(h)
            torch.set_rng_state(state)
            return h
        if block.wrapper == "checkpoint":
            return torch.utils.checkpoint.checkpoint(body, h, use_reentrant=block.use_reentrant)
        return body(h)

    x_np, w_np = inputs()
    x, w = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(w_np)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # A reentrant checkpoint inside another: torch runs the outer forward without grad,
        # and the inner one warns there (its recomputation has grad).
        warnings.filterwarnings("ignore", "None of the inputs have requires_grad", UserWarning)
        h = x
        for block in program:
            h = run_block(block, h)
        loss = (h * w).sum()
        loss.backward()
    return loss.item(), x.grad.numpy(), torch.get_rng_state().numpy().tobytes()


# --- the check ----------------------------------------------------------------------------------


def torch_mode_compiled(program: list[Block]) -> list[Block]:
    """The blocks with a torch-mode op under flashdrop.compile (with its mode at the op)."""

    def holds(block: Block, compiled: bool) -> bool:
        compiled = compiled or block.wrapper == "compile"
        return any(
            holds(item, compiled) if isinstance(item, Block) else compiled and block.mode == "torch"
            for item in block.ops
        )

    return [block for block in program if holds(block, False)]


def check_refused(block: Block, seed: int) -> None:
    """A torch-mode draw under flashdrop.compile raises (never draws MLX's masks instead)."""
    flashdrop.manual_seed(seed)
    with pytest.raises(RuntimeError, match="cannot be compiled"):
        Flashdrop(transformed=True).block(block, mx.ones(SHAPE))


def check_program(program: list[Block], seed: int) -> None:
    for refused in torch_mode_compiled(program):
        check_refused(refused, seed)
        program = [block for block in program if block is not refused]
    if not program:
        return
    plain = Flashdrop(transformed=False)
    expected = plain.run(program, seed)
    transformed = Flashdrop(transformed=True)
    got = transformed.run(program, seed)
    assert got[2] == expected[2], "both streams end where the untransformed program's do"
    if transformed.compiled:
        assert np.isclose(got[0], expected[0], rtol=COMPILED_RTOL, atol=ATOL)
        np.testing.assert_allclose(got[1], expected[1], rtol=COMPILED_RTOL, atol=ATOL)
    else:
        assert got[0] == expected[0] and np.array_equal(got[1], expected[1])
    noises = {at: np.array(noise) for at, noise in plain.noises.items()}
    loss, grad, state = torch_run(program, seed, noises)
    assert expected[2][:TORCH_STATE_BYTES] == state, "torch's generator ends where ours does"
    assert np.isclose(expected[0], loss, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(expected[1], grad, rtol=RTOL, atol=ATOL)


# About 7 s on this 2-core machine alone (40 s while other jobs shared it).
EXAMPLES = 200


@settings(derandomize=True, database=None, deadline=None, max_examples=EXAMPLES)
@given(program=programs, seed=st.integers(0, 2**32 - 1))
def test_fuzzed_programs_match_torch(program, seed):
    check_program(program, seed)
