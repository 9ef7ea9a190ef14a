"""flashdrop's randomness: the two random modes, seeding, saving and restoring state, compiling,
checkpointing.

Every mask flashdrop draws comes from :func:`bernoulli`, which draws from one of two streams:

- ``"mlx"`` (the default): in the main thread MLX's own global generator, ``mx.random.state``.
  Fast, lazy, and the same stream ``mx.random`` and ``mlx.nn.Dropout`` use, so
  ``mx.random.seed`` and an ``mx.compile(..., inputs=[mx.random.state],
  outputs=[mx.random.state])`` cover flashdrop too. Other threads draw from streams of their
  own, and :func:`checkpoint` replays saved keys: every mlx-mode key comes from
  :func:`next_mlx_key`.
- ``"torch"``: torch's CPU generator, emulated with numpy's mt19937 (:class:`TorchCPUGenerator`),
  so that after ``manual_seed(s)`` every mask is the one torch draws after ``torch.manual_seed(s)``.

The state of both streams travels together: :func:`get_rng_state` returns one uint8 array, the
first 5056 bytes laid out exactly as ``torch.get_rng_state()``, the last 8 MLX's key.
"""

import functools
import math
import secrets
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import mlx.nn
import numpy as np

from flashdrop import _checks, _mkl_bernoulli, _torch_target  # (issue 20: the last two)

MODES = ("mlx", "torch")

_MT_WORDS = 624
_TORCH_HEADER = struct.Struct("<QiiQ")  # initial seed, left, seeded, next
_TORCH_STATE_BYTES = 5056  # header, 624 u64 words, torch's normal-sampler cache
_NORMAL_CACHE_AT = _TORCH_HEADER.size + 8 * _MT_WORDS
# torch's normal-sampler cache, after the 624 words: normal_x, normal_y, normal_rho (doubles),
# normal_is_valid (int32), 4 bytes of padding, next_float_normal_sample (float32), its valid
# flag (one byte), 3 bytes of padding. torch reads normal_y when normal_is_valid is nonzero and
# writes only normal_y, the flags and the float, every other byte 0.
_NORMAL_Y_AT = _NORMAL_CACHE_AT + 8
_NORMAL_VALID_AT = _NORMAL_CACHE_AT + 24
_FLOAT_NORMAL_AT = _NORMAL_CACHE_AT + 32
_FLOAT_VALID_AT = _NORMAL_CACHE_AT + 36
_MLX_KEY_BYTES = 8
STATE_BYTES = _TORCH_STATE_BYTES + _MLX_KEY_BYTES

# Drawn in pieces this many elements long (one 64-bit pair of words each), so they stay in cache.
_CHUNK = 1 << 16
_LOW_53_BITS = (1 << 53) - 1


def _pairs_come_high_first() -> bool:
    """Whether numpy's 64-bit MT19937 output is ``first word << 32 | second word``.

    numpy builds it as ``(uint64_t)next32() << 32 | next32()`` in C, where the order of the two
    calls is the compiler's choice; every build checked puts the first call first. Checked once.
    """
    words = np.random.MT19937(0).random_raw(2)
    pair = np.random.Generator(np.random.MT19937(0)).integers(2**64, dtype=np.uint64)
    return int(pair) == int(words[0]) << 32 | int(words[1])


_PAIRS_HIGH_FIRST = _pairs_come_high_first()
# TorchStream.words draws pairs of words from this many on; the index of a pair's first word
# (its high half) among the two uint32 halves of the uint64 in memory.
_PAIRED_FROM = 64
_FIRST_HALF = 1 if sys.byteorder == "little" else 0


class TorchCPUGenerator:
    """torch's default CPU generator, as far as dropout reads it.

    An mt19937 (numpy's ``MT19937`` yields the same 32-bit words as torch's) seeded like
    ``torch.manual_seed``. ``bernoulli_(q)`` on the CPU takes two words per element, ``r1`` then
    ``r2``, forms the 53-bit integer ``k = (r1 & 0x1FFFFF) << 32 | r2``, and keeps the element when
    ``k * 2**-53 < q``, that is when ``k < ceil(q * 2**53)``: exactly, with no rounding. Calls are
    serialised by a lock, as torch's generator serialises them.
    """

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._bits = np.random.MT19937()
        self._integers = np.random.Generator(self._bits).integers  # draws from self._bits
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> None:
        """Seed as ``torch.manual_seed(seed)`` does; ``seed`` is already reduced to [0, 2**64)."""
        # mt19937's init_genrand, on the low 32 bits of the seed.
        key = np.empty(_MT_WORDS, dtype=np.uint32)
        word = seed & 0xFFFFFFFF
        for i in range(_MT_WORDS):
            key[i] = word
            word = (1812433253 * (word ^ (word >> 30)) + i + 1) & 0xFFFFFFFF
        with self._lock:
            self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": _MT_WORDS}}
            self._initial_seed = seed
            self._next_when_spent = 0  # torch's `next` field while the table is used up
            self._normal = None  # torch's cached second Box-Muller double, or None
            self._float_normal = None  # torch's cached float sample: carried, never drawn

    @contextmanager
    def stream(self) -> Iterator["TorchStream"]:
        """Hold the generator's lock and draw from it: one torch kernel's worth of draws."""
        with self._lock:
            yield TorchStream(self)

    def bernoulli(self, count: int, q: float) -> np.ndarray:
        """The next ``count`` draws of ``bernoulli_(q)``: a bool array, True where kept."""
        threshold = math.ceil(q * 2.0**53)  # exact: scaling by a power of two, then an integer
        keep = np.empty(count, dtype=bool)
        with self._lock:
            for start in range(0, count, _CHUNK):
                k = self._pairs(min(_CHUNK, count - start))
                k &= _LOW_53_BITS  # k = (r1 & 0x1FFFFF) << 32 | r2, compared in one 64-bit op
                np.less(k, threshold, out=keep[start : start + len(k)])
            if count:
                self._next_when_spent = _MT_WORDS
        return keep

    def _pairs(self, count: int) -> np.ndarray:
        """The next ``2 * count`` words as ``count`` uint64 ``r1 << 32 | r2``; the lock is held."""
        if _PAIRS_HIGH_FIRST:  # numpy's 64-bit output: one call per pair, no 32-bit halves
            return self._integers(2**64, size=count, dtype=np.uint64)
        words = self._bits.random_raw(2 * count)
        return (words[0::2] << 32) | words[1::2]

    def get_state(self) -> bytes:
        """The 5056 bytes ``torch.get_rng_state()`` would return for this state."""
        with self._lock:
            state = self._bits.state["state"]
            pos = int(state["pos"])
            left = _MT_WORDS + 1 - pos
            next_ = pos if pos < _MT_WORDS else self._next_when_spent
            header = _TORCH_HEADER.pack(self._initial_seed, left, 1, next_)
            words = state["key"].astype("<u8").tobytes()
            cache = bytearray(_TORCH_STATE_BYTES - _NORMAL_CACHE_AT)
            if self._normal is not None:
                struct.pack_into("<d", cache, _NORMAL_Y_AT - _NORMAL_CACHE_AT, self._normal)
                struct.pack_into("<i", cache, _NORMAL_VALID_AT - _NORMAL_CACHE_AT, 1)
            if self._float_normal is not None:
                struct.pack_into(
                    "<f", cache, _FLOAT_NORMAL_AT - _NORMAL_CACHE_AT, self._float_normal
                )
                cache[_FLOAT_VALID_AT - _NORMAL_CACHE_AT] = 1
            return header + words + bytes(cache)

    def set_state(self, data: bytes) -> None:
        """Take a state in ``torch.get_rng_state()``'s layout."""
        initial_seed, left, seeded, next_ = _TORCH_HEADER.unpack_from(data)
        _checks.check_torch_generator_state(left, seeded, next_, _MT_WORDS)
        key = np.frombuffer(data, dtype="<u8", count=_MT_WORDS, offset=_TORCH_HEADER.size)
        with self._lock:
            self._bits.state = {
                "bit_generator": "MT19937",
                "state": {"key": key.astype(np.uint32), "pos": _MT_WORDS + 1 - left},
            }
            self._initial_seed = initial_seed
            self._next_when_spent = next_
            (valid,) = struct.unpack_from("<i", data, _NORMAL_VALID_AT)
            self._normal = struct.unpack_from("<d", data, _NORMAL_Y_AT)[0] if valid else None
            self._float_normal = (
                struct.unpack_from("<f", data, _FLOAT_NORMAL_AT)[0]
                if data[_FLOAT_VALID_AT]
                else None
            )


class TorchStream:
    """The draws of one torch kernel, made while :meth:`TorchCPUGenerator.stream` holds the lock.

    ``words`` are torch's ``random()`` (one 32-bit mt19937 word each), ``pairs`` its
    ``random64()`` (two words, the first the high half); ``normal`` is the cached second value of
    torch's scalar Box-Muller sampler (``None`` when there is none).
    """

    def __init__(self, generator: TorchCPUGenerator) -> None:
        self._generator = generator

    def words(
        self,
        count: int,
        dtype: type = np.uint32,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """The next ``count`` 32-bit words in order, as ``dtype``.

        ``transform``, if given, maps uint32 words elementwise to uint32 before the cast; it sees
        them in some other order (numpy draws them fastest as 64-bit pairs).
        """
        if count:
            self._generator._next_when_spent = _MT_WORDS
        draw = self._generator._integers
        if not _PAIRS_HIGH_FIRST or count < _PAIRED_FROM:
            # numpy returns the raw words for the full 32-bit range (faster than random_raw).
            words = draw(0, 2**32, size=count, dtype=np.uint32)
            return (words if transform is None else transform(words)).astype(dtype, copy=False)
        halves = draw(2**64, size=count // 2, dtype=np.uint64).view(np.uint32)
        if transform is not None:
            halves = transform(halves)
        out = np.empty(count, dtype=dtype)
        even = count - count % 2
        out[0:even:2] = halves[_FIRST_HALF::2]  # a pair is its first word << 32 | its second
        out[1:even:2] = halves[1 - _FIRST_HALF :: 2]
        if count % 2:
            last = draw(0, 2**32, size=1, dtype=np.uint32)
            out[-1:] = last if transform is None else transform(last)
        return out

    def pairs(self, count: int) -> np.ndarray:
        """The next ``count`` ``random64()`` draws (two words each), as uint64."""
        if count:
            self._generator._next_when_spent = _MT_WORDS
        return self._generator._pairs(count)

    @property
    def normal(self) -> float | None:
        return self._generator._normal

    @normal.setter
    def normal(self, value: float | None) -> None:
        self._generator._normal = value


# torch 2.13 seeds its generator differently at every start; so does flashdrop's torch stream.
torch_generator = TorchCPUGenerator(secrets.randbits(64))
_mode = "mlx"  # the process default; rng_mode() blocks override it in their own thread


class _Local(threading.local):
    """Per thread: ``mode`` (an rng_mode() block's), ``stream`` (a non-main thread's mlx-mode
    keys), ``override`` (keys a transformation supplies: a checkpoint's replay, a compiled
    trace's threaded key), ``torch_replay`` (a checkpoint's replayed torch stream), ``tracing``
    (depth of flashdrop.compile traces), ``trace_modules`` (the layers whose training flag the
    current flashdrop.compile trace read). The class attributes are the defaults of a thread
    that set none: read as plain attributes, with no ``getattr(..., default)``, whose miss
    raises and catches an ``AttributeError`` on every draw (~0.5 us each)."""

    mode: str | None = None
    stream: "_KeyStream | None" = None
    override: "_KeyStream | None" = None
    torch_replay: "TorchCPUGenerator | None" = None
    tracing: int = 0
    trace_modules: "list[Any] | None" = None


_local = _Local()
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
    if _local.mode is not None:
        _local.mode = mode


def get_rng_mode() -> str:
    """The random mode of the calling thread, ``"mlx"`` or ``"torch"``."""
    return _local.mode or _mode


@contextmanager
def rng_mode(mode: str) -> Iterator[None]:
    """Context manager: draw in ``mode`` inside the block, then go back to the previous mode.

    The block changes the mode of the calling thread only; other threads keep theirs.

    Example::

        >>> flashdrop.manual_seed(0)
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(x, 0.5)   # the same bits as torch.manual_seed(0); F.dropout(x, 0.5)
    """
    previous = _local.mode
    _local.mode = _checks.check_rng_mode(mode, MODES)
    try:
        yield
    finally:
        _local.mode = previous


class _KeyStream:
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

    def stream(self) -> _KeyStream:
        """The calling thread's stream, made on its first draw (or its first after a seed)."""
        stream = _local.stream
        if stream is None or stream.generation != self.generation:
            with self.lock:
                self.count += 1
                entropy, generation = [self.seed, self.count], self.generation
            words = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
            # Made from host memory: nothing lazy, nothing of MLX's per-thread random state.
            stream = _local.stream = _KeyStream(mx.array(words), generation)
        return stream


_thread_streams = _ThreadStreams()


def in_main_thread() -> bool:
    """Whether the caller runs in the main thread: flashdrop runs its ``mx.compile``d
    functions only there (one compiled in one thread and run in another can make MLX abort
    at exit)."""
    return threading.get_ident() == _MAIN_THREAD


def _current_stream() -> "_KeyStream | None":
    """Where the next mlx-mode key comes from; None: MLX's own ``mx.random.state``."""
    override = _local.override
    if override is not None:
        return override
    if threading.get_ident() == _MAIN_THREAD:  # in_main_thread(), one call less per draw
        return None
    return _thread_streams.stream()


def next_mlx_key() -> mx.array | None:
    """The key of the next mlx-mode draw, or ``None``: draw from ``mx.random.state``.

    Every mlx-mode draw in flashdrop passes this as ``key=`` to ``mx.random``. ``None`` in the
    main thread, which keeps MLX's own global state (so ``mx.random.seed`` and
    ``mx.compile(..., inputs=[mx.random.state])`` cover flashdrop); a key from the thread's own
    stream in other threads (MLX's per-thread state is never touched there: reading or drawing
    from it makes the interpreter abort at exit); the replayed keys while
    :func:`checkpoint` recomputes; the threaded key inside a :func:`compile` trace in a thread.
    """
    stream = _current_stream()
    return None if stream is None else stream.next()


def _mlx_key() -> mx.array:
    """The calling thread's mlx-mode key: ``mx.random.state``'s, or its stream's."""
    stream = _current_stream()
    return mx.random.state[0] if stream is None else stream.key


def _set_mlx_key(words: np.ndarray) -> None:
    """Set the calling thread's mlx-mode key to ``words``, a key's two uint32 (hi, lo)."""
    hi, lo = (int(word) for word in words)
    # MLX's key cannot be assigned; seeding with the 64-bit number (hi, lo) recreates it exactly.
    seed = hi << 32 | lo
    stream = _current_stream()
    if stream is None:
        mx.random.seed(seed)
    else:
        stream.key = mx.random.key(seed)


@contextmanager
def _local_value(name: str, value: Any) -> Iterator[None]:
    """Set the calling thread's ``_local.<name>`` inside the block."""
    previous = getattr(_local, name)  # _Local's class attributes are the defaults
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, previous)


def manual_seed(seed: int) -> None:
    """Seed both streams, as ``torch.manual_seed(seed)`` seeds torch's.

    The mlx-mode streams: MLX's own ``mx.random.state`` of the main thread (when called from
    the main thread), and the streams of the other threads: the n-th thread to draw after the
    call draws from a key made of ``(seed, n)``.

    Args:
        seed: an integer in [-2**63, 2**64); negative seeds wrap through 2**64, as in torch.
    """
    seed = int(seed)
    _checks.check_seed(seed)
    seed %= 2**64
    torch_generator.manual_seed(seed)
    _thread_streams.reseed(seed)
    if in_main_thread():
        # MLX's state is per thread; another thread's would be touched (see next_mlx_key).
        mx.random.seed(seed)


def get_rng_state() -> mx.array:
    """The state of both random streams, as a uint8 array of 5064 bytes.

    The first 5056 bytes are laid out as ``torch.get_rng_state()``'s (the torch-mode stream);
    the last 8 are the mlx-mode key as two little-endian uint32: MLX's ``mx.random.state`` in
    the main thread, the thread's own stream in other threads (see :func:`next_mlx_key`).
    """
    mlx_key = np.asarray(_mlx_key(), dtype="<u4").tobytes()
    return mx.array(np.frombuffer(torch_generator.get_state() + mlx_key, dtype=np.uint8))


def set_rng_state(state: mx.array) -> None:
    """Restore the random state from an array returned by :func:`get_rng_state` (5064 bytes:
    both streams), or from torch's own state (5056 bytes: the torch-mode stream only; MLX's key
    is left as it is). As in torch, a uint8 array of any shape with that many elements is taken,
    in its row-major order.

    Example::

        >>> flashdrop.set_rng_state(compat.to_mlx(torch.get_rng_state()))  # torch's stream
    """
    _checks.check_rng_state(state, (STATE_BYTES, _TORCH_STATE_BYTES))
    data = np.asarray(state).tobytes()
    torch_generator.set_state(data[:_TORCH_STATE_BYTES])
    if len(data) == _TORCH_STATE_BYTES:
        return
    _set_mlx_key(np.frombuffer(data[_TORCH_STATE_BYTES:], dtype="<u4"))


@contextmanager
def fork_rng(
    devices: Iterable[Any] | None = None,
    enabled: bool = True,
    _caller: str = "fork_rng",
    _devices_kw: str = "devices",
    device_type: str | None = None,
) -> Iterator[None]:
    """Context manager: whatever is drawn inside, the random state is restored on exit.

    ``torch.random.fork_rng``'s parameters and meaning, with torch's CPU generator standing for
    the torch-mode stream and a device's generator for MLX's key (one key for every MLX device).
    Two calls made inside two separate ``fork_rng()`` blocks draw the same mask.

    Args:
        devices: the devices whose generators are forked besides the torch-mode stream, which
            always is: ``None`` (all) or any non-empty iterable forks MLX's key too; an empty
            one (``devices=[]``, torch's "CPU only") leaves MLX's key to run on. Default: ``None``
        enabled: if ``False``, nothing is forked or restored. Default: ``True``
        _caller, _devices_kw: internal to torch (the name in its warning); accepted, unused.
        device_type: ``"meta"`` forks nothing, as in torch; ``None`` or a type torch 2.13 has
            a module for (``"cuda"``, ``"mps:0"``, ...), the generators above. Checked as torch
            checks it, before ``enabled``: another type raises torch's ``RuntimeError``.
            Default: ``None``

    Example::

        >>> with flashdrop.fork_rng():
        ...     y = F.dropout(x)  # the state after the block is the state before it
    """
    _checks.check_device_type(device_type)
    if device_type == "meta" or not enabled:
        yield
        return
    # A generator is read once, as torch does (it takes list(devices) before forking).
    fork_mlx = devices is None or len(list(devices)) > 0
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state if fork_mlx else state[:_TORCH_STATE_BYTES])


def check_not_tracing(what: str = "dropout", like: mx.array | None = None) -> None:
    """Refuse a torch-mode draw that a transformation would freeze, share or redraw: inside a
    :func:`compile` trace, or, when ``like`` (the array the draw is for) is given, inside any
    ``mx.compile`` or ``mx.vmap`` trace, or in a backward pass's recomputation (a plain
    ``mx.checkpoint``'s, ``mlx.nn.utils.checkpoint``'s) other than :func:`checkpoint`'s
    replay."""
    if _local.tracing:
        _checks.raise_torch_mode_compiled(what)
    if like is None or _evaluable(like):  # eager: nothing more to ask
        return
    if _refused_by_eval(like):  # _is_traced(like), its _evaluable(like) already asked
        _checks.raise_torch_mode_compiled(what)
    if _local.torch_replay is None and _in_backward():
        _checks.raise_torch_mode_recomputed(what)


def _evaluable(array: mx.array) -> bool:
    """Whether no transformation holds ``array``: it is then scheduled for evaluation
    (``mx.async_eval``: the host goes on, and nothing is evaluated twice)."""
    try:
        mx.async_eval(array)
        return True
    except ValueError:
        return False


def _in_backward() -> bool:
    """Whether MLX is running a custom vjp, as ``mx.checkpoint`` does to recompute its
    function in the backward pass: there MLX keeps the graph of every array made, and
    ``mx.async_eval`` refuses even a new one (MLX's ``RetainGraph``). Asked only where a
    transformation holds the draw's array: the probe is evaluated."""
    return not _evaluable(mx.zeros((1,)) + 1)


# (thread id, recorder): each recorder is called with (shape, q, mode, mask) after every draw
# its thread makes while flashdrop.testing.record_draws() is active there (through _record);
# empty otherwise, so that a draw costs one truth test more.
_recorders: list[tuple[int, Callable[[tuple[int, ...], Any, str, mx.array | None], None]]] = []


def _recording_here() -> bool:
    """Whether this thread records its draws."""
    thread = threading.get_ident()
    return any(owner == thread for owner, _ in tuple(_recorders))


def bernoulli(shape: Sequence[int], q: float | mx.array, like: mx.array | None = None) -> mx.array:
    """A bool mask of ``shape``, True with probability ``q``, from the current mode's stream.

    ``like``: the array the mask is for; a torch-mode draw checks it is not being traced by
    ``mx.compile`` or ``mx.vmap``.
    """
    if get_rng_mode() == "mlx":
        key = next_mlx_key()
        # Without the keyword when there is no key: nanobind's keywords cost ~4 us a call.
        mask = mx.random.bernoulli(q, shape) if key is None else mx.random.bernoulli(q, shape, key)
    else:
        check_not_tracing("dropout", like)
        generator = _local.torch_replay or torch_generator
        # --- torch target (issue 20): torch 2.1-2.6 x86-64 draw bernoulli_(p) from MKL ---
        target = _torch_target.get_torch_target()
        if target.mkl_bernoulli:
            with generator.stream() as stream:  # one 32-bit word seeds MKL's stream
                seed = int(stream.words(1)[0])
            if like is not None and like.dtype == mx.float16 and target.before("half_bernoulli"):
                _torch_target.raise_no_half_bernoulli()
            keep = _mkl_bernoulli.bernoulli(seed, math.prod(shape), q)
        else:
            keep = generator.bernoulli(math.prod(shape), q)
        # --- end torch target ---
        # Reshaped by MLX: numpy stops at 64 dimensions, torch and MLX do not.
        mask = mx.array(keep).reshape(shape)
    if _recorders:
        _record(shape, q, mask)
    return mask


def _record(shape: Sequence[int], q: float | mx.array | None, mask: mx.array | None) -> None:
    """Report a draw to every recorder of this thread; ``q`` and ``mask`` are ``None`` for a
    draw that is not a ``bernoulli``. Its caller names the draw unless a public function above
    it does."""
    thread, mode = threading.get_ident(), get_rng_mode()
    for owner, record in tuple(_recorders):  # another thread may stop recording meanwhile
        if owner == thread:
            record(tuple(shape), q, mode, mask)


def _is_traced(array: mx.array) -> bool:
    """Whether ``array`` is being traced by ``mx.compile`` or ``mx.vmap``.

    Outside any transformation ``array`` is scheduled for evaluation (:func:`_evaluable`).
    ``async_eval`` refuses every transformation, ``mx.grad`` included; there, ``mx.eval``
    tells them apart: it refuses the arrays of ``mx.compile`` and ``mx.vmap`` traces and
    evaluates those of ``mx.grad``.
    """
    return not _evaluable(array) and _refused_by_eval(array)


def _refused_by_eval(array: mx.array) -> bool:
    """For an array a transformation holds (not :func:`_evaluable`): whether ``mx.eval``
    refuses it, as it does in ``mx.compile`` and ``mx.vmap`` traces (not in ``mx.grad``)."""
    try:
        mx.eval(array)
    except ValueError as error:
        if "during function transformations" in str(error):
            return True
        raise
    return False


def note_training_flag(module: Any) -> None:
    """A layer reads its training flag: inside a :func:`compile` trace, the trace depends on it
    (a later call with the flag changed is traced anew)."""
    if _local.trace_modules is not None:
        _local.trace_modules.append(module)


def _add_new(modules: list[Any], more: Iterable[Any]) -> None:
    """Append to ``modules`` those of ``more`` it does not hold (modules are dicts, unhashable:
    compared by identity)."""
    known = {id(m) for m in modules}
    for module in more:
        if id(module) not in known:
            known.add(id(module))
            modules.append(module)


def _modules_in(tree: Any) -> list[Any]:
    """Every ``mlx.nn.Module`` in a tree of lists, tuples and dicts, and their submodules
    (``model.state`` is the model itself)."""
    if isinstance(tree, mlx.nn.Module):
        return list(tree.modules())
    if isinstance(tree, dict):
        tree = tree.values()
    if isinstance(tree, (list, tuple, type({}.values()))):
        return [m for item in tree for m in _modules_in(item)]
    return []


def _fresh(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A new function object calling ``fn``: MLX keeps one compiled cache per function object,
    so each of :func:`compile`'s variants needs its own."""
    return lambda *args, **kwargs: fn(*args, **kwargs)


def compile(
    fn: Callable[..., Any],
    inputs: Any = None,
    outputs: Any = None,
    shapeless: bool = False,
) -> Callable[..., Any]:
    """``mx.compile`` with the random state threaded through.

    A plain ``mx.compile`` bakes the random key in at trace time, so every call of the compiled
    function repeats one mask. This one passes the random state in and out of the graph, so
    each call draws a fresh mask, exactly as the uncompiled function would: in the main thread
    MLX's ``mx.random.state``, in other threads the thread's own mlx-mode stream (see
    :func:`next_mlx_key`). A torch-mode draw inside raises ``RuntimeError``: torch's stream
    lives on the host. If a call fails while tracing, the random state is restored.

    As ``torch.compile`` retraces when a module's training flag changes, a call made after
    ``model.eval()`` (or ``model.train()``) runs a trace made in that mode: one trace is kept per
    combination of the training flags of the flashdrop layers a trace called and of every
    module of the models in ``inputs`` and ``outputs`` (``model.state`` is the model). An
    ``mlx.nn`` layer reached only through ``fn``'s closure, or a ``training=`` argument given
    to a function, is read once, when a shape is first traced, as by ``mx.compile``.

    While :func:`flashdrop.testing.record_draws` records in the calling thread, an mlx-mode
    call runs ``fn`` uncompiled, so that each draw is recorded with its mask: the same masks,
    outputs and random state.

    Args:
        fn: the function to compile.
        inputs, outputs: as for ``mx.compile`` (for example a model's and an optimizer's
            state); the random state is added to them.
        shapeless: must be ``False``: MLX's random ops cannot be traced shapeless (they cannot
            infer their output shapes); ``True`` raises ``ValueError`` here, before any trace.

    Example::

        >>> step = flashdrop.compile(lambda x: model(x).sum())
    """
    _checks.check_compile_not_shapeless(shapeless)

    # The modules whose training flag a trace may depend on: those of the models in `inputs`
    # and `outputs`, and each flashdrop layer a trace called. A trace is kept per combination
    # of their flags, as torch.compile retraces when a module's training flag changes.
    modules: list[Any] = []
    _add_new(modules, _modules_in([inputs, outputs]))  # inputs and outputs often hold one model

    def run(*args: Any, **kwargs: Any) -> Any:
        depth, noted = _local.tracing, _local.trace_modules
        _local.tracing = depth + 1  # torch-mode draws refuse to be traced
        _local.trace_modules = found = []
        try:
            return fn(*args, **kwargs)
        finally:
            _local.tracing, _local.trace_modules = depth, noted
            _add_new(modules, found)

    def traced_global(*args: Any, **kwargs: Any) -> Any:
        # After mx.disable_compile() this runs eagerly: then nothing is traced.
        return (run if _is_traced(mx.random.state[0]) else fn)(*args, **kwargs)

    def traced_keyed(key: mx.array, *args: Any, **kwargs: Any) -> Any:
        stream = _KeyStream(key)
        with _local_value("override", stream):
            out = (run if _is_traced(key) else fn)(*args, **kwargs)
        return stream.key, out

    # Per combination of training flags: [keyed, global]. The keyed one threads a key given as
    # an argument (other threads, checkpoint recomputations); the global one MLX's own state,
    # made on the first call in the main thread (reading mx.random.state in another thread
    # would make its MLX state, see next_mlx_key).
    variants: dict[tuple[bool, ...], list[Any]] = {}

    def flags() -> tuple[bool, ...]:
        return tuple(m.training for m in modules)

    def call(variant: list[Any], args: tuple, kwargs: dict) -> Any:
        stream = _current_stream()
        if stream is not None:  # another thread, or a checkpoint's recomputation
            if variant[0] is None:
                variant[0] = mx.compile(_fresh(traced_keyed), inputs=inputs, outputs=outputs)
            stream.key, out = variant[0](stream.key, *args, **kwargs)
            return out
        if variant[1] is None:
            state = [mx.random.state, inputs]
            variant[1] = mx.compile(
                _fresh(traced_global), inputs=state, outputs=[mx.random.state, outputs]
            )
        saved = mx.random.state[0]
        try:
            return variant[1](*args, **kwargs)
        except BaseException:
            # A failed trace leaves a placeholder as MLX's key; put the key back.
            _set_mlx_key(np.asarray(saved, dtype=np.uint32))
            raise

    @functools.wraps(fn)
    def compiled(*args: Any, **kwargs: Any) -> Any:
        if _recorders and get_rng_mode() == "mlx" and _recording_here():
            # Recording (flashdrop.testing.record_draws): run eagerly, so that every draw is
            # seen with its mask; the same masks, outputs and random state as compiled.
            return fn(*args, **kwargs)
        key, known = flags(), len(modules)
        variant = variants.setdefault(key, [None, None])
        out = call(variant, args, kwargs)
        if len(modules) > known:  # the trace met layers: its flags are theirs now, too
            variants[flags()] = variants.pop(key)
        if _local.trace_modules is not None:  # called inside another compile's trace
            _local.trace_modules.extend(modules)
        return out

    return compiled


def checkpoint(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``mx.checkpoint`` that recomputes with the forward's random masks.

    Like ``torch.utils.checkpoint(fn, ..., preserve_rng_state=True)``: the backward pass
    recomputes ``fn`` drawing exactly the masks the forward drew, in both random modes, so the
    gradients are those of the uncheckpointed function, bit for bit. The random streams advance
    once, by the forward's draws: in torch mode exactly as torch's generator does with
    ``torch.utils.checkpoint``. A plain ``mx.checkpoint`` or ``mlx.nn.utils.checkpoint``
    draws new masks when it recomputes in mlx mode (its gradients are not the forward's), and
    raises ``RuntimeError`` there in torch mode.

    Args:
        fn: a function of arrays (trees of arrays, as for ``mx.checkpoint``), or an
            ``mlx.nn.Module``: then gradients flow to its trainable parameters too, as with
            ``mlx.nn.utils.checkpoint(module)``.

    Returns:
        A function with ``fn``'s signature.

    Example::

        >>> block = flashdrop.checkpoint(transformer_block)   # an mlx.nn.Module
        >>> loss, grads = nn.value_and_grad(model, loss_fn)(model, x)
    """
    module = fn if isinstance(fn, mlx.nn.Module) else None

    @functools.wraps(fn)
    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        mode = get_rng_mode()
        key = _mlx_key()
        # Both streams are saved: fn may switch modes inside.
        torch_state = (_local.torch_replay or torch_generator).get_state()
        calls = 0

        def recomputable(params: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if module is not None:
                module.update(params)
            if calls == 1:  # the forward: draws as usual, advancing the streams
                return fn(*args, **kwargs)
            replay = TorchCPUGenerator(0)
            replay.set_state(torch_state)
            with (
                _local_value("mode", mode),
                _local_value("override", _KeyStream(key)),
                _local_value("torch_replay", replay),
            ):
                return fn(*args, **kwargs)

        params = module.trainable_parameters() if module is not None else {}
        return mx.checkpoint(recomputable)(params, *args, **kwargs)

    return checkpointed
