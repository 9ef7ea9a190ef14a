"""The torch-mode stream under threads: concurrent calls never corrupt it.

The generator takes its lock for the whole of each call, so calls from several threads come out
as if made one after another, in some order. Checked exactly against a single-threaded
:class:`TorchCPUGenerator` (the serial path): every call draws as many numbers (one block), and
the blocks of the serial path are all different, so each mask tells which serial call it is.
Then the masks of N threads x M calls are some serial order when each is a block of the serial
path, every block is drawn exactly once, and each thread's blocks come in its own call order;
and the final state is the serial state after N*M calls. States read, set or seeded while other
threads draw must be states of the serial path too.

Each test runs twice: on a generator directly, and through flashdrop's public API in torch mode
(``F.dropout`` and a shared ``nn.Dropout``, ``get_rng_state``, ``set_rng_state``,
``manual_seed``). ``rng_mode()`` blocks are per thread, so torch mode is set as the process
default (``set_rng_mode``), once, before the threads start.
"""

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn
from flashdrop._random import TorchCPUGenerator, torch_kernels

THREADS, CALLS = 4, 6
# Several of the generator's 64k-element pieces per call: without the lock, a call's pieces
# would interleave with another thread's.
COUNT = 150_001
P = 0.5
SEED = 2024
TORCH_STATE_BYTES = 5056  # flashdrop.get_rng_state()'s torch part, then MLX's key


def keep_mask(generator: TorchCPUGenerator) -> np.ndarray:
    """One dropout mask of COUNT elements, drawn as flashdrop's torch mode draws it."""
    with generator.stream() as stream:
        return torch_kernels.bernoulli_scalar(stream, COUNT, 1 - P)


class GeneratorUnderTest:
    """A TorchCPUGenerator used directly."""

    def __init__(self) -> None:
        self.generator = TorchCPUGenerator(SEED)

    def draw(self, thread: int) -> np.ndarray:
        return keep_mask(self.generator)

    def state(self) -> bytes:
        return self.generator.get_state()

    def restore(self, state: bytes) -> None:
        self.generator.set_state(state)

    def seed(self) -> None:
        self.generator.manual_seed(SEED)


class PublicAPIUnderTest:
    """flashdrop's global torch-mode stream: even threads call F.dropout, odd ones a shared
    nn.Dropout; states go through get_rng_state / set_rng_state / manual_seed."""

    def __init__(self) -> None:
        flashdrop.manual_seed(SEED)
        self.mlx_key = bytes(np.array(flashdrop.get_rng_state()))[TORCH_STATE_BYTES:]
        self.module = nn.Dropout(P)

    def draw(self, thread: int) -> np.ndarray:
        x = mx.ones((COUNT,))
        y = F.dropout(x, P) if thread % 2 == 0 else self.module(x)
        return np.array(y) != 0

    def state(self) -> bytes:
        return bytes(np.array(flashdrop.get_rng_state()))[:TORCH_STATE_BYTES]

    def restore(self, state: bytes) -> None:
        flashdrop.set_rng_state(mx.array(np.frombuffer(state + self.mlx_key, dtype=np.uint8)))

    def seed(self) -> None:
        flashdrop.manual_seed(SEED)


@pytest.fixture(params=[GeneratorUnderTest, PublicAPIUnderTest], ids=["generator", "flashdrop"])
def subject(request):
    """The generator under test; torch mode set once for the process, before any thread starts,
    and switching threads as often as the interpreter allows, so that the calls interleave."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with flashdrop.fork_rng():
            flashdrop.set_rng_mode("torch")
            yield request.param()
    finally:
        flashdrop.set_rng_mode("mlx")
        sys.setswitchinterval(interval)


def serial_path(blocks: int) -> tuple[list[bytes], list[bytes]]:
    """One thread's masks (packed to bytes) of ``blocks`` calls from SEED, and the states before
    each call and after the last."""
    generator = TorchCPUGenerator(SEED)
    masks, states = [], [generator.get_state()]
    for _ in range(blocks):
        masks.append(np.packbits(keep_mask(generator)).tobytes())
        states.append(generator.get_state())
    assert len(set(masks)) == blocks, "each block of the serial path tells its position"
    return masks, states


def run_threads(work: Callable[[int], list], threads: int) -> list[list]:
    """``work(i)`` in ``threads`` threads started together; their results, in thread order."""
    start = threading.Barrier(threads)

    def started(i: int) -> list:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(started, range(threads)))  # re-raises a thread's exception


def drawer(subject, calls: int = CALLS) -> Callable[[int], list[bytes]]:
    return lambda thread: [np.packbits(subject.draw(thread)).tobytes() for _ in range(calls)]


def test_concurrent_calls_draw_the_masks_of_some_serial_order(subject):
    masks, states = serial_path(THREADS * CALLS)
    position = {mask: i for i, mask in enumerate(masks)}

    drawn = run_threads(drawer(subject), THREADS)

    used = []
    for thread_masks in drawn:
        positions = [position.get(mask, -1) for mask in thread_masks]
        assert -1 not in positions, "a mask no serial call draws: the stream was corrupted"
        assert positions == sorted(positions), "a thread's calls come in its own order"
        used += positions
    assert sorted(used) == list(range(THREADS * CALLS)), "every serial block exactly once"
    assert subject.state() == states[-1]


def test_states_read_during_draws_are_states_of_the_serial_path(subject):
    _, states = serial_path(THREADS * CALLS)
    position = {state: i for i, state in enumerate(states)}
    drawing = threading.Event()
    draw = drawer(subject)

    def work(thread: int) -> list:
        if thread > 0:
            try:
                return draw(thread)
            finally:
                drawing.set()  # the reader stops after the first drawer's last call
        read = [subject.state()]
        while not drawing.is_set():
            read.append(subject.state())
        return read

    read = run_threads(work, THREADS + 1)[0]

    positions = [position.get(state, -1) for state in read]
    assert -1 not in positions, "a state read mid-draw that no serial call leaves"
    assert positions == sorted(positions), "reads never go back along the path"


def test_states_set_and_seeded_during_draws_stay_on_the_serial_path(subject):
    """One thread keeps restoring the state after the third serial call and re-seeding; the
    other threads' masks must still be blocks of the serial path, and the final state one of
    its states."""
    restart = 3
    masks, states = serial_path(restart + THREADS * CALLS)  # the longest run after a reset
    drawing = threading.Event()
    draw = drawer(subject)

    def work(thread: int) -> list:
        if thread > 0:
            try:
                return draw(thread)
            finally:
                drawing.set()
        while True:  # at least once
            subject.restore(states[restart])
            subject.seed()
            if drawing.is_set():
                return []

    drawn = run_threads(work, THREADS + 1)[1:]

    assert set().union(*drawn) <= set(masks), "a mask no serial call draws: state corrupted"
    assert subject.state() in states


@pytest.mark.parametrize("mode", ["mlx", "torch"])
def test_a_call_in_another_thread_breaks_no_later_call(mode):
    """A thread's dropout call, its output left unevaluated, must not break the calls of other
    threads with the same dtype and p (when they overlap, MLX can even crash)."""
    p = {"mlx": 0.3141592, "torch": 0.2718281}[mode]  # a (dtype, p) no other test uses
    with flashdrop.rng_mode(mode):
        run_threads(lambda _: F.dropout(mx.ones((4,), mx.float16), p), 1)
        y = F.dropout(mx.ones((4,), mx.float16), p)
        kept = np.float16(np.float32(1) / np.float32(1 - p))
        assert set(np.array(y).tolist()) <= {0.0, float(kept)}


# --- random modes and mlx-mode streams per thread ---------------------------------------------


def in_thread(work: Callable[[], object], pool: bool = False) -> object:
    """``work()`` in a new thread (a ``threading.Thread`` or a one-thread pool); its result."""
    if pool:
        with ThreadPoolExecutor(1) as executor:
            return executor.submit(work).result()
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def test_rng_mode_blocks_are_per_thread():
    """Two threads' blocks overlap (enter A, enter B, leave A, leave B): each thread sees its own
    mode, and afterwards the process default is untouched."""
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a() -> None:
        with flashdrop.rng_mode("torch"):
            a_entered.set()
            b_entered.wait()
            seen["a"] = flashdrop.get_rng_mode()
        a_left.set()

    def b() -> None:
        a_entered.wait()
        seen["b before"] = flashdrop.get_rng_mode()
        with flashdrop.rng_mode("torch"):
            b_entered.set()
            a_left.wait()
            seen["b"] = flashdrop.get_rng_mode()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": "torch", "b before": "mlx", "b": "torch"}
    assert flashdrop.get_rng_mode() == "mlx"
    assert in_thread(flashdrop.get_rng_mode) == "mlx"


def test_set_rng_mode_is_the_default_of_every_thread():
    flashdrop.set_rng_mode("torch")
    try:
        assert in_thread(flashdrop.get_rng_mode) == "torch"
        with flashdrop.rng_mode("mlx"):
            assert flashdrop.get_rng_mode() == "mlx"
            assert in_thread(flashdrop.get_rng_mode) == "torch"
    finally:
        flashdrop.set_rng_mode("mlx")


def thread_masks(threads: int = 3, pool: bool = False) -> list[list[bytes]]:
    """Two masks from each of ``threads`` threads run one after another after manual_seed."""

    def work() -> list[bytes]:
        x = mx.ones((512,))
        return [np.packbits(np.array(f(x)) != 0).tobytes() for f in (F.dropout, nn.Dropout())]

    flashdrop.manual_seed(SEED)
    return [in_thread(work, pool) for _ in range(threads)]


def test_mlx_mode_threads_draw_distinct_streams_reproducible_from_manual_seed():
    first = thread_masks()
    assert len({mask for masks in first for mask in masks}) == 6, "no two draws alike"
    # Threads made another way (other ids, other names) draw the same: the n-th thread to draw
    # after the seed draws stream n.
    assert thread_masks(pool=True) == first
    main_key = np.array(mx.random.state[0])
    assert np.array_equal(main_key, np.array(mx.random.key(SEED))), "no thread moved MLX's state"
    flashdrop.manual_seed(SEED + 1)
    assert in_thread(lambda: np.array(F.dropout(mx.ones((512,)), 0.5))).tobytes() != first[0][0]


def test_threads_compile_and_checkpoint_with_their_own_stream():
    """In a thread, flashdrop.compile threads the thread's stream (fresh masks per call, the
    eager ones), and flashdrop.checkpoint replays it."""

    def work() -> tuple:
        x = mx.ones((256,))
        flashdrop.manual_seed(SEED)
        eager = [np.array(F.dropout(x, 0.5)) for _ in range(2)]
        flashdrop.manual_seed(SEED)
        step = flashdrop.compile(lambda v: F.dropout(v, 0.5))
        compiled = [np.array(step(x)) for _ in range(2)]
        flashdrop.manual_seed(SEED)
        grad = np.array(mx.grad(lambda v: (F.dropout(v, 0.5) ** 2).sum())(x))
        flashdrop.manual_seed(SEED)
        checkpointed = flashdrop.checkpoint(lambda v: (F.dropout(v, 0.5) ** 2).sum())
        return eager, compiled, grad, np.array(mx.grad(checkpointed)(x))

    eager, compiled, grad, checkpointed = in_thread(work)
    assert all(np.array_equal(a, b) for a, b in zip(eager, compiled, strict=True))
    assert not np.array_equal(compiled[0], compiled[1])
    assert np.array_equal(grad, checkpointed)


class SmallModel(mlx.nn.Module):
    """A layer, dropout, attention with dropout of its weights, a layer."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.last = mlx.nn.Linear(16, 32), mlx.nn.Linear(32, 4)
        self.dropout = nn.Dropout(0.3)

    def __call__(self, x: mx.array) -> mx.array:
        h = self.dropout(mlx.nn.relu(self.first(x)))[None, None]
        return self.last(F.scaled_dot_product_attention(h, h, h, dropout_p=0.2)[0, 0])


def test_thread_pool_trains_in_both_modes_at_once():
    """Forward and backward passes of a model with dropout in a pool of four workers, tasks in
    mlx mode and in torch mode mixed: every mlx-mode task draws its own masks, and the torch
    stream ends where the same torch-mode steps taken serially leave it."""
    mx.random.seed(0)
    weights = SmallModel().parameters()
    x = mx.random.normal((8, 16), key=mx.random.key(1))
    mx.eval(weights, x)  # MLX evaluates a graph only in the thread that built it
    models = threading.local()  # value_and_grad updates its model: one model per worker

    def step(mode: str) -> float:
        if not hasattr(models, "model"):
            models.model = SmallModel()
            models.model.update(weights)
        with flashdrop.rng_mode(mode):
            loss_and_grad = mlx.nn.value_and_grad(models.model, lambda m, x: (m(x) ** 2).sum())
            loss, grads = loss_and_grad(models.model, x)
            mx.eval(loss, grads)
        return loss.item()

    modes = ["mlx", "torch"] * 8
    flashdrop.manual_seed(SEED)
    with ThreadPoolExecutor(4) as pool:
        losses = list(pool.map(step, modes))
    after = np.array(flashdrop.get_rng_state())[:TORCH_STATE_BYTES]
    assert len({loss for loss, mode in zip(losses, modes, strict=True) if mode == "mlx"}) == 8
    flashdrop.manual_seed(SEED)
    serial = [step("torch") for _ in range(8)]
    assert np.array_equal(np.array(flashdrop.get_rng_state())[:TORCH_STATE_BYTES], after)
    assert len(set(serial)) == 8


EXIT_SCRIPT = """
import threading
import mlx.core as mx
import flashdrop
import flashdrop.nn.functional as F

def work():
    x, x5 = mx.ones((2, 3, 5, 5)), mx.ones((2, 3, 2, 5, 5))
    for mode in ("mlx", "torch"):
        with flashdrop.rng_mode(mode):
            outs = [
                F.dropout(x), F.alpha_dropout(x, training=True), F.dropout1d(x[0]),
                F.dropout2d(x), F.dropout3d(x5), F.feature_alpha_dropout(x, training=True),
                F.stochastic_depth(x, 0.5, "row"), F.drop_path(x, 0.5, True),
                F.drop_block2d(x, 0.5, 3), F.drop_block3d(x5, 0.5, 1), F.locked_dropout(x[0]),
                mx.grad(flashdrop.checkpoint(lambda v: F.dropout(v).sum()))(x),
                F.scaled_dot_product_attention(x, x, x, dropout_p=0.5),
                flashdrop.rand(3), flashdrop.randn_like(x), flashdrop.randint(9, (4,)),
                flashdrop.randperm(5), flashdrop.bernoulli(x * 0.5), flashdrop.normal(x),
            ]
            if mode == "mlx":
                outs.append(flashdrop.compile(lambda v: F.dropout(v))(x))
            mx.eval(outs)

thread = threading.Thread(target=work)
thread.start()
thread.join()
"""


def test_no_abort_at_exit_after_draws_in_a_thread():
    """MLX aborts at exit ("terminate called without an active exception", 134) in about half
    the runs after a thread used its per-thread random state; flashdrop never touches it."""
    codes = [
        subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True).returncode
        for _ in range(20)
    ]
    assert codes == [0] * 20
