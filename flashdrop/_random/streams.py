"""The two random modes, and where each thread's mlx-mode keys come from.

- ``"mlx"`` (the default): in the main thread MLX's own global generator, ``mx.random.state``.
  Fast, lazy, and the same stream ``mx.random`` and ``mlx.nn.Dropout`` use, so
  ``mx.random.seed`` and an ``mx.compile(..., inputs=[mx.random.state],
  outputs=[mx.random.state])`` cover flashdrop too. Other threads draw from streams of their
  own, and :func:`~flashdrop.checkpoint` replays saved keys: every mlx-mode key comes from
  :func:`next_mlx_key`.
- ``"torch"``: torch's CPU generator (:mod:`flashdrop._random.torch_cpu`): every torch-mode
  draw takes its words from :func:`torch_stream`.

Every draw of every kind, and every read or write of the random state, goes through
:func:`next_mlx_key`, :func:`torch_stream` and the accessors below them: they answer for the
calling thread, and :func:`~flashdrop.checkpoint`'s recomputation replays through them.

:data:`local` holds what each thread sets (its mode, its stream, the keys a transformation
supplies, ...).
"""

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import numpy as np

from flashdrop import _checks
from flashdrop._random.torch_cpu.generator import TorchCPUGenerator, TorchStream, torch_generator

MODES = ("mlx", "torch")
_mode = "mlx"  # the process default; rng_mode() blocks override it in their own thread


class _Local(threading.local):
    """Per thread: ``mode`` (an rng_mode() block's), ``stream`` (a non-main thread's mlx-mode
    keys), ``override`` (keys a transformation supplies: a compiled trace's threaded key, a
    checkpoint's replay inside a trace), ``torch_replay`` (a checkpoint's replayed torch
    stream), ``tracing``
    (depth of flashdrop.compile traces), ``trace_modules`` (the layers whose training flag the
    current flashdrop.compile trace read). The class attributes are the defaults of a thread
    that set none: read as plain attributes, with no ``getattr(..., default)``, whose miss
    raises and catches an ``AttributeError`` on every draw (~0.5 us each)."""

    mode: str | None = None
    stream: "KeyStream | None" = None
    override: "KeyStream | None" = None
    torch_replay: "TorchCPUGenerator | None" = None
    tracing: int = 0
    trace_modules: "list[Any] | None" = None


local = _Local()
_MAIN_THREAD = threading.main_thread().ident


def set_rng_mode(mode: str) -> None:
    """Choose the stream every later mask is drawn from: ``"mlx"`` (default) or ``"torch"``.

    This is the process default, seen by every thread outside an :func:`rng_mode` block (and
    by the calling thread inside its block, until the block ends). In ``"torch"`` mode, after
    :func:`manual_seed`, each dropout function and module returns the very bits torch returns
    after ``torch.manual_seed`` with the same seed, on a torch CPU build.
    """
    global _mode
    _mode = _checks.check_rng_mode(mode, MODES)
    if local.mode is not None:
        local.mode = mode


def get_rng_mode() -> str:
    """The random mode of the calling thread, ``"mlx"`` or ``"torch"``."""
    return local.mode or _mode


@contextmanager
def rng_mode(mode: str) -> Iterator[None]:
    """Context manager: draw in ``mode`` inside the block, then go back to the previous mode.

    The block changes the mode of the calling thread only; other threads keep theirs.

    Example::

        >>> flashdrop.manual_seed(0)
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(x, 0.5)   # the same bits as torch.manual_seed(0); F.dropout(x, 0.5)
    """
    previous = local.mode
    local.mode = _checks.check_rng_mode(mode, MODES)
    try:
        yield
    finally:
        local.mode = previous


class KeyStream:
    """MLX's key sequence with explicit keys: a draw takes ``split(key)[1]``, and the key moves
    on to ``split(key)[0]``, as ``mx.random.state`` does for draws without a key."""

    def __init__(self, key: mx.array, generation: int = 0) -> None:
        self.key = key
        self.generation = generation

    def next(self) -> mx.array:
        self.key, subkey = mx.random.split(self.key)
        return subkey


class _ThreadStreams:
    """The seed of non-main threads' mlx-mode streams: the n-th thread to draw after
    :func:`manual_seed` (n = 1, 2, ...) draws from a key made of (seed, n)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seed = secrets.randbits(64)
        self.generation = 0
        self.count = 0

    def reseed(self, seed: int) -> None:
        with self.lock:
            self.seed, self.generation, self.count = seed, self.generation + 1, 0

    def stream(self) -> KeyStream:
        """The calling thread's stream, made on its first draw (or its first after a seed)."""
        stream = local.stream
        if stream is None or stream.generation != self.generation:
            with self.lock:
                self.count += 1
                entropy, generation = [self.seed, self.count], self.generation
            words = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
            # Made from host memory: nothing lazy, nothing of MLX's per-thread random state.
            stream = local.stream = KeyStream(mx.array(words), generation)
        return stream


thread_streams = _ThreadStreams()


def in_main_thread() -> bool:
    """Whether the caller runs in the main thread: flashdrop runs its ``mx.compile``d
    functions only there (one compiled in one thread and run in another can make MLX abort
    at exit)."""
    return threading.get_ident() == _MAIN_THREAD


def current_stream() -> "KeyStream | None":
    """Where the next mlx-mode key comes from; None: MLX's own ``mx.random.state``."""
    override = local.override
    if override is not None:
        return override
    if threading.get_ident() == _MAIN_THREAD:  # in_main_thread(), one call less per draw
        return None
    return thread_streams.stream()


def in_main_stream() -> bool:
    """Whether mlx-mode draws come from ``mx.random.state`` (the main thread, no keys supplied
    by a transformation).

    Only then are the library's compiled functions used: a function compiled in one thread and
    run in another can make MLX abort at exit. Elsewhere the same formulas run uncompiled, with
    the same bits.
    """
    return current_stream() is None


def next_mlx_key() -> mx.array | None:
    """The key of the next mlx-mode draw, or ``None``: draw from ``mx.random.state``.

    Every mlx-mode draw in flashdrop passes this as ``key=`` to ``mx.random``. ``None`` in the
    main thread, which keeps MLX's own global state (so ``mx.random.seed``,
    ``mx.compile(..., inputs=[mx.random.state])`` and :func:`checkpoint`'s replay cover
    flashdrop and MLX's own draws alike); a key from the thread's own stream in other threads
    (MLX's per-thread state is never touched there: reading or drawing from it makes the
    interpreter abort at exit); the threaded key inside a :func:`compile` trace in a thread.
    """
    stream = current_stream()
    return None if stream is None else stream.next()


def mlx_key() -> mx.array:
    """The calling thread's mlx-mode key: ``mx.random.state``'s, or its stream's."""
    stream = current_stream()
    return mx.random.state[0] if stream is None else stream.key


def put_mlx_key(key: mx.array) -> None:
    """Make ``key`` the calling thread's mlx-mode key. In the main thread it must be evaluable
    (not a compiled trace's): MLX's key cannot be assigned; seeding with the key's 64-bit number
    (hi, lo) recreates it exactly."""
    stream = current_stream()
    if stream is not None:
        stream.key = key
    elif key is not mx.random.state[0]:
        hi, lo = (int(word) for word in np.asarray(key, dtype=np.uint32))
        mx.random.seed(hi << 32 | lo)


def set_mlx_key(words: np.ndarray) -> None:
    """Set the calling thread's mlx-mode key to ``words``, a key's two uint32 (hi, lo)."""
    put_mlx_key(mx.array(np.asarray(words, dtype=np.uint32)))


def torch_generator_here() -> TorchCPUGenerator:
    """The calling thread's torch-mode generator: torch's default CPU generator (one for the
    process, as torch's), or, while :func:`checkpoint` recomputes in this thread, its replay
    of the forward's."""
    return local.torch_replay or torch_generator


def torch_stream() -> TorchStream:
    """The calling thread's torch-mode stream, for one kernel's draws: ``with torch_stream()
    as stream:`` (it holds the generator's lock)."""
    return torch_generator_here().stream()


@contextmanager
def local_value(name: str, value: Any) -> Iterator[None]:
    """Set the calling thread's ``local.<name>`` inside the block."""
    previous = getattr(local, name)  # _Local's class attributes are the defaults
    setattr(local, name, value)
    try:
        yield
    finally:
        setattr(local, name, previous)
