"""flashdrop's randomness: the two random modes, seeding, saving and restoring state, compiling.

Every mask flashdrop draws comes from :func:`bernoulli`, which draws from one of two streams:

- ``"mlx"`` (the default): MLX's own global generator, ``mx.random.state``. Fast, lazy, and the
  same stream ``mx.random`` and ``mlx.nn.Dropout`` use, so ``mx.random.seed`` and an
  ``mx.compile(..., inputs=[mx.random.state], outputs=[mx.random.state])`` cover flashdrop too.
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
import numpy as np

from flashdrop import _checks

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
        if not (1 <= left <= _MT_WORDS and seeded != 0 and next_ <= _MT_WORDS):
            # torch's check and text; ours names the fields.
            raise RuntimeError(
                f"Invalid mt19937 state; the torch part of the state needs 1 <= left <= 624, "
                f"seeded != 0 and next <= 624, but has left={left}, seeded={seeded}, "
                f"next={next_}"
            )
        if not (next_ == _MT_WORDS + 1 - left or (left == 1 and next_ == 0)):
            # torch accepts it, but its draws read word `next` and regenerate after `left`
            # more: two counters only torch's own updates keep in step, as numpy's one does.
            raise ValueError(
                f"set_rng_state: a torch generator state with left={left} and next={next_} "
                "is not one torch produces (next == 625 - left, or left == 1 and next == 0 "
                "after seeding); flashdrop's torch mode cannot continue it"
            )
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
_mode = "mlx"
_tracing = threading.local()


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"random mode must be one of {MODES}, but got {mode!r}")
    return mode


def set_rng_mode(mode: str) -> None:
    """Choose the stream every later mask is drawn from: ``"mlx"`` (default) or ``"torch"``.

    In ``"torch"`` mode, after :func:`manual_seed`, each dropout function and module returns the
    very bits torch returns after ``torch.manual_seed`` with the same seed, on a torch CPU build.
    """
    global _mode
    _mode = _check_mode(mode)


def get_rng_mode() -> str:
    """The current random mode, ``"mlx"`` or ``"torch"``."""
    return _mode


@contextmanager
def rng_mode(mode: str) -> Iterator[None]:
    """Context manager: draw in ``mode`` inside the block, then go back to the previous mode.

    Example::

        >>> flashdrop.manual_seed(0)
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(x, 0.5)   # the same bits as torch.manual_seed(0); F.dropout(x, 0.5)
    """
    global _mode
    previous, _mode = _mode, _check_mode(mode)
    try:
        yield
    finally:
        _mode = previous


def manual_seed(seed: int) -> None:
    """Seed both streams, as ``torch.manual_seed(seed)`` seeds torch's.

    Args:
        seed: an integer in [-2**63, 2**64); negative seeds wrap through 2**64, as in torch.
    """
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError("Overflow when unpacking long long")  # torch's text
    seed %= 2**64
    torch_generator.manual_seed(seed)
    mx.random.seed(seed)


def get_rng_state() -> mx.array:
    """The state of both random streams, as a uint8 array of 5064 bytes.

    The first 5056 bytes are laid out as ``torch.get_rng_state()``'s (the torch-mode stream);
    the last 8 are MLX's key, ``mx.random.state``, as two little-endian uint32.
    """
    mlx_key = np.asarray(mx.random.state[0], dtype="<u4").tobytes()
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
    hi, lo = np.frombuffer(data[_TORCH_STATE_BYTES:], dtype="<u4")
    # MLX's key cannot be assigned; seeding with the 64-bit number (hi, lo) recreates it exactly.
    mx.random.seed((int(hi) << 32) | int(lo))


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


def next_mlx_key() -> mx.array | None:
    """The key for the next mlx-mode draw, or ``None`` for MLX's global ``mx.random.state``.

    Every mlx-mode draw passes this as ``key=`` to ``mx.random``.
    """
    return None


def check_not_tracing(what: str = "dropout") -> None:
    """Refuse a torch-mode draw inside :func:`compile`: it would be frozen into the graph."""
    if getattr(_tracing, "depth", 0):
        _checks.raise_torch_mode_compiled(what)


# (thread id, recorder): each recorder is called with (shape, q, mode, mask) after every draw
# its thread makes while flashdrop.testing.record_draws() is active there (through _record);
# empty otherwise, so that a draw costs one truth test more.
_recorders: list[tuple[int, Callable[[tuple[int, ...], Any, str, mx.array | None], None]]] = []


def _recording_here() -> bool:
    """Whether this thread records its draws."""
    thread = threading.get_ident()
    return any(owner == thread for owner, _ in tuple(_recorders))


def bernoulli(shape: Sequence[int], q: float | mx.array) -> mx.array:
    """A bool mask of ``shape``, True with probability ``q``, from the current mode's stream."""
    if _mode == "mlx":
        mask = mx.random.bernoulli(q, shape, key=next_mlx_key())
    else:
        check_not_tracing()
        # Reshaped by MLX: numpy stops at 64 dimensions, torch and MLX do not.
        mask = mx.array(torch_generator.bernoulli(math.prod(shape), q)).reshape(shape)
    if _recorders:
        _record(shape, q, mask)
    return mask


def _record(shape: Sequence[int], q: float | mx.array | None, mask: mx.array | None) -> None:
    """Report a draw to every recorder of this thread; ``q`` and ``mask`` are ``None`` for a
    draw that is not a ``bernoulli``. Its caller names the draw unless a public function above
    it does."""
    thread = threading.get_ident()
    for owner, record in tuple(_recorders):  # another thread may stop recording meanwhile
        if owner == thread:
            record(tuple(shape), q, _mode, mask)


def compile(
    fn: Callable[..., Any],
    inputs: Any = None,
    outputs: Any = None,
    shapeless: bool = False,
) -> Callable[..., Any]:
    """``mx.compile`` with MLX's random state threaded through.

    A plain ``mx.compile`` bakes the random key in at trace time, so every call of the compiled
    function repeats one mask. This one passes ``mx.random.state`` in and out of the graph, so
    each call draws a fresh mask, exactly as the uncompiled function would.

    While :func:`flashdrop.testing.record_draws` records in the calling thread, an mlx-mode
    call runs ``fn`` uncompiled, so that each draw is recorded with its mask: the same masks,
    outputs and random state.

    Args:
        fn: the function to compile.
        inputs, outputs, shapeless: as for ``mx.compile`` (for example a model's and an
            optimizer's state); the random state is added to them.

    Example::

        >>> step = flashdrop.compile(lambda x: model(x).sum())
    """

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        # Runs only while mx.compile traces `fn`: torch-mode draws check the depth.
        _tracing.depth = getattr(_tracing, "depth", 0) + 1
        try:
            return fn(*args, **kwargs)
        finally:
            _tracing.depth -= 1

    compiled = mx.compile(
        traced,
        inputs=[mx.random.state, inputs],
        outputs=[mx.random.state, outputs],
        shapeless=shapeless,
    )

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _recorders and _mode == "mlx" and _recording_here():
            # Recording (flashdrop.testing.record_draws): run eagerly, so that every draw is
            # seen with its mask; the same masks, outputs and random state as compiled.
            return fn(*args, **kwargs)
        return compiled(*args, **kwargs)

    return call
