"""torch's default CPU generator: an mt19937 seeded as torch seeds it, its state in the 5056
bytes of ``torch.get_rng_state()``, and the word streams its kernels (:mod:`.kernels`) draw from.
"""

import secrets
import struct
import sys
import threading
from collections.abc import Callable

import numpy as np

from flashdrop import _checks

_MT_WORDS = 624
_TORCH_HEADER = struct.Struct("<QiiQ")  # initial seed, left, seeded, next
TORCH_STATE_BYTES = 5056  # header, 624 u64 words, torch's normal-sampler cache
_NORMAL_CACHE_AT = _TORCH_HEADER.size + 8 * _MT_WORDS
# torch's normal-sampler cache, after the 624 words: normal_x, normal_y, normal_rho (doubles),
# normal_is_valid (int32), 4 bytes of padding, next_float_normal_sample (float32), its valid
# flag (one byte), 3 bytes of padding. torch reads normal_y when normal_is_valid is nonzero and
# writes only normal_y, the flags and the float, every other byte 0.
_NORMAL_Y_AT = _NORMAL_CACHE_AT + 8
_NORMAL_VALID_AT = _NORMAL_CACHE_AT + 24
_FLOAT_NORMAL_AT = _NORMAL_CACHE_AT + 32
_FLOAT_VALID_AT = _NORMAL_CACHE_AT + 36


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
    ``torch.manual_seed``; its draws are made by the kernels of :mod:`.kernels`, each through a
    :class:`TorchStream`, which holds the generator's lock, as torch's generator serialises
    its calls.
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

    def stream(self) -> "TorchStream":
        """Draw from the generator: ``with generator.stream() as stream:`` holds its lock for
        one torch kernel's worth of draws."""
        return TorchStream(self)

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
            cache = bytearray(TORCH_STATE_BYTES - _NORMAL_CACHE_AT)
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
    """The draws of one torch kernel, made inside ``with generator.stream() as stream:``, which
    holds the generator's lock.

    ``words`` are torch's ``random()`` (one 32-bit mt19937 word each), ``pairs`` its
    ``random64()`` (two words, the first the high half); ``normal`` is the cached second value of
    torch's scalar Box-Muller sampler (``None`` when there is none).
    """

    def __init__(self, generator: TorchCPUGenerator) -> None:
        self._generator = generator

    def __enter__(self) -> "TorchStream":
        self._generator._lock.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._generator._lock.release()

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
