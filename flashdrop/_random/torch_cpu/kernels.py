"""torch 2.13's CPU random kernels on x86-64, emulated with numpy on the words of flashdrop's
torch stream.

Each function takes a :class:`~flashdrop._random.torch_cpu.generator.TorchStream` (the
generator's lock held) and returns a numpy array holding exactly the values torch's kernel
computes, in torch's compute dtype (float32 for float32, float16 and bfloat16; float64 for
float64); the caller rounds them to the output dtype. The recipes, read from ATen
(``core/DistributionsHelper.h``, ``core/TransformationHelper.h``,
``native/cpu/DistributionTemplates.h``, ``native/cpu/avx_mathfun.h``,
``native/TensorFactories.cpp``) and checked bit for bit against
torch 2.13 on x86-64 (tests/parity/test_draws_parity.py):

- bernoulli with a scalar ``p`` (dropout's draw): two words per element (see
  :func:`bernoulli_scalar`); with a tensor of probabilities, a uniform per element.
- uniform: float types take one word ``w``, ``(w & 0xFFFFFF) * 2**-24``; float64 one
  ``random64()``, ``(r & (2**53 - 1)) * 2**-53``.
- normal, fewer than 16 elements: a scalar Box-Muller in double (``u1``, ``u2`` uniform doubles,
  ``r = sqrt(-2 log1p(-u2))``, ``theta = 2 pi u1``), returning ``r cos(theta)`` and keeping
  ``r sin(theta)`` in the generator for the next element (or the next call); ``x * std + mean``
  is one fused multiply-add.
- normal, 16 elements or more: uniforms for the whole buffer, Box-Muller over each block of 16
  (pairs ``j``, ``j + 8``), and, when the size is not a multiple of 16, 16 fresh uniforms for the
  last 16 outputs. float32 (and float16 / bfloat16, which skip the uniforms of the partial
  block) runs avx_mathfun's polynomial ``log256_ps`` / ``sincos256_ps`` (:mod:`.avx2`) with the
  FMA contractions of torch's x86-64 build; float64 calls libm (``math``, the same C library torch
  calls).
- integers: ``w % range + low`` with one word while ``range < 2**28``, one ``random64()`` from
  ``2**28`` on.
- randperm: Fisher-Yates with one word per step; from 214,748,364 elements on, the "inside-out"
  Fisher-Yates with one ``random64()`` per step.
"""

import functools
import math
from collections.abc import Callable

import numpy as np

from flashdrop._random.torch_cpu.avx2 import ROWS, fill16_avx2
from flashdrop._random.torch_cpu.fma import fma64
from flashdrop._random.torch_cpu.generator import TorchStream

_F32 = np.float32
_U24 = _F32(2.0**-24)
_U53 = 2.0**-53
_LOW_24 = np.uint32(0xFFFFFF)
_LOW_53 = np.uint64((1 << 53) - 1)
_BLOCK = 16  # torch's vectorised normal path works in blocks of 16 from this size on
# bernoulli_scalar draws in pieces this many elements long (a pair of words each): they stay in
# the CPU's caches.
CHUNK = 1 << 16


def uniform_float(stream: TorchStream, count: int) -> np.ndarray:
    """torch's ``uniform_real_distribution<float>(0, 1)``: ``count`` float32 in [0, 1)."""
    out = stream.words(count, _F32, _low_24)  # exact: fewer than 24 bits
    out *= _U24
    return out


def _low_24(words: np.ndarray) -> np.ndarray:
    words &= _LOW_24
    return words


def uniform_double(stream: TorchStream, count: int) -> np.ndarray:
    """torch's ``uniform_real_distribution<double>(0, 1)``: ``count`` float64 in [0, 1)."""
    return (stream.pairs(count) & _LOW_53).astype(np.float64) * _U53


def randint(stream: TorchStream, count: int, low: int, high: int) -> tuple[np.ndarray, int]:
    """torch's ``random_from_to`` on ``[low, high)``, before the dtype cast: ``(values, offset)``,
    the draws being ``values + offset`` in int64.

    Below a span of ``2**28`` (one word each) ``values`` are the uint32 offsets from ``low`` and
    ``offset`` is ``low``: the caller widens them (MLX casts faster than numpy's strided
    copies). From ``2**28`` on (two words each) ``values`` are the int64 draws, ``offset`` 0.
    """
    span = high - low
    if span < 1 << 28:
        return stream.words(count, np.uint32, functools.partial(_remainder, np.uint32(span))), low
    # uint64 arithmetic wrapping through 2**64, then read as int64: torch's casts.
    values = stream.pairs(count) % np.uint64(span) + np.uint64(low % 2**64)
    return values.view(np.int64), 0


def _remainder(divisor: np.uint32, words: np.ndarray) -> np.ndarray:
    """``words % divisor`` in place: numpy divides by a scalar with SIMD, its ``%`` does not."""
    quotient = words // divisor
    quotient *= divisor
    words -= quotient
    return words


# torch's randperm shuffles with one word per step below this size, with random64() from it on.
INSIDE_OUT_FROM = (2**32 - 1) // 20
# randperm resolves its shuffle in blocks of this many steps: their arrays stay in the CPU's
# caches, and the only array of the full length is the permutation itself.
_STEPS_SHIFT = 14
_STEPS = 1 << _STEPS_SHIFT


def randperm(stream: TorchStream, n: int) -> np.ndarray:
    """torch's CPU ``randperm``: int32 below 2**31 elements (the caller casts; half of an int64
    result's memory). Below :data:`INSIDE_OUT_FROM` elements :func:`_fisher_yates`, from there
    on :func:`_inside_out`."""
    return (_fisher_yates if n < INSIDE_OUT_FROM else _inside_out)(stream, n)


def _fisher_yates(stream: TorchStream, n: int) -> np.ndarray:
    """torch's Fisher-Yates with one word per step: step ``i`` swaps positions ``i`` and
    ``i + w % (n - i)``, for ``i < n - 1``; made in place, a block of steps at a time."""
    perm = np.arange(n, dtype=np.int32)
    for start in range(0, n - 1, _STEPS):
        stop = min(n - 1, start + _STEPS)
        spans = np.arange(n - start, n - stop, -1, dtype=np.uint32)
        partner = (stream.words(stop - start) % spans).astype(np.int64)
        partner += np.arange(start, stop)
        _fisher_yates_steps(perm, start, partner)
    return perm


def _inside_out(stream: TorchStream, n: int) -> np.ndarray:
    """torch's "inside-out" Fisher-Yates: step ``i`` moves the value at
    ``random64() % (i + 1)`` to position ``i`` and puts ``i`` there; made in place, a block of
    steps at a time."""
    perm = np.empty(n, dtype=np.int32 if n < 2**31 else np.int64)  # filled step by step
    for start in range(0, n, _STEPS):
        stop = min(n, start + _STEPS)
        spans = np.arange(start + 1, stop + 1, dtype=np.uint64)
        _inside_out_steps(perm, start, (stream.pairs(stop - start) % spans).astype(np.int64))
    return perm


def _fisher_yates_steps(perm: np.ndarray, start: int, partner: np.ndarray) -> None:
    """Fisher-Yates steps ``start + t``, in order, on ``perm`` in place: step ``start + t``
    swaps positions ``start + t`` and ``partner[t] >= start + t``.

    Resolved with array operations over the block rather than swap by swap. Step ``t`` moves
    ``v[t]``, the value at position ``start + t`` when the step reaches it, to its partner and
    leaves at ``start + t`` what its partner held, for good. So, with the steps grouped by
    partner:

    - ``v[t]`` is the ``v`` of the last earlier step that swapped with position ``start + t``,
      or, if none, what that position held before the block: chains followed back by pointer
      doubling;
    - step ``t`` keeps the ``v`` of the previous step with its partner, or, if none, what the
      partner held before the block;
    - a partner past the block ends holding the ``v`` of the last step with it.
    """
    count = partner.size
    order, grouped, repeat = _group_steps(partner - start)
    later = order[1:][repeat]  # the steps with an earlier step in their group
    earlier = np.full(count, -1)  # the previous step with the same partner, or -1
    earlier[later] = order[:-1][repeat]
    last = np.append(~repeat, True)  # the last step of each group
    target, writer = grouped[last], order[last]
    past = np.searchsorted(target, count)  # the groups of partners past the block
    # source[k]: the block position whose value position start + k holds when step k reaches
    # it. The last step before k with partner k moved its v there: a step k swapping with k
    # itself is its group's last, then it is the step before it in its group.
    inside, wrote = target[:past], writer[:past]
    itself = wrote == inside
    wrote[itself] = earlier[wrote[itself]]
    moved = wrote >= 0
    source = np.arange(count)
    source[inside[moved]] = wrote[moved]
    block = perm[start : start + count]
    v = block[_follow(source)]
    taken = perm[partner]
    taken[later] = v[earlier[later]]
    perm[target[past:] + start] = v[writer[past:]]
    block[:] = taken


def _inside_out_steps(perm: np.ndarray, start: int, partner: np.ndarray) -> None:
    """Inside-out Fisher-Yates steps ``start + t``, in order, on ``perm`` in place (filled
    below ``start``): step ``start + t`` moves the value at ``partner[t] <= start + t`` to
    position ``start + t`` and puts ``start + t`` at ``partner[t]``.

    Resolved with array operations over the block rather than step by step. With the steps
    grouped by partner, step ``t`` moves: ``start`` plus the previous step with its partner,
    which put itself there; or, if none, what its partner held before the block, for a partner
    below ``start``; ``start + t`` for itself; or what the partner's own step moved, for an
    earlier step of the block: chains followed back by pointer doubling. A partner then holds
    ``start`` plus the last step with it.
    """
    count = partner.size
    steps = np.arange(count)
    order, grouped, repeat = _group_steps(partner)
    later, earlier = order[1:][repeat], order[:-1][repeat]  # a step, the one before it in group
    first = np.ones(count, dtype=bool)  # the first step with its partner
    first[later] = False
    below = first & (partner < start)
    itself = first & (partner == steps + start)
    chained = first & ~below & ~itself
    moved = np.empty(count, dtype=perm.dtype)  # what step t moves, where no chain leads on
    moved[later] = earlier + start
    moved[below] = perm[partner[below]]
    moved[itself] = steps[itself] + start
    source = steps.copy()
    source[chained] = partner[chained] - start
    perm[start : start + count] = moved[_follow(source)]
    last = np.append(~repeat, True)  # the last step of each group
    perm[grouped[last]] = order[last] + start


def _group_steps(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The steps ``t`` of a block grouped by ``keys[t]`` (in ``[0, 2**49)``), in step order
    within a group: ``(order, grouped, repeat)``, the steps in that order, their keys, and
    whether ``order[g + 1]`` has the key of ``order[g]``. One sort of key-and-step integers."""
    key = keys << _STEPS_SHIFT
    key |= np.arange(keys.size)
    key.sort()
    grouped = key >> _STEPS_SHIFT
    return key & (_STEPS - 1), grouped, grouped[1:] == grouped[:-1]


def _follow(source: np.ndarray) -> np.ndarray:
    """Where ``k -> source[k]`` leads, for every ``k``, until ``source[k] == k``: by pointer
    doubling."""
    while True:
        further = source[source]
        if np.array_equal(further, source):
            return source
        source = further


def bernoulli_scalar(stream: TorchStream, count: int, q: float) -> np.ndarray:
    """torch's ``bernoulli_(q)`` with a scalar probability, dropout's draw: ``count`` bools, True
    where kept.

    Two words per element, ``r1`` then ``r2``, form the 53-bit integer
    ``k = (r1 & 0x1FFFFF) << 32 | r2``, and the element is kept when ``k * 2**-53 < q``, that is
    when ``k < ceil(q * 2**53)``: exactly, with no rounding.
    """
    threshold = math.ceil(q * 2.0**53)  # exact: scaling by a power of two, then an integer
    keep = np.empty(count, dtype=bool)
    for start in range(0, count, CHUNK):
        k = stream.pairs(min(CHUNK, count - start))
        k &= _LOW_53  # k = (r1 & 0x1FFFFF) << 32 | r2, compared in one 64-bit op
        np.less(k, threshold, out=keep[start : start + len(k)])
    return keep


def bernoulli_tensor(stream: TorchStream, probs: np.ndarray) -> np.ndarray:
    """torch's ``bernoulli_(p)`` with a tensor of probabilities: a bool per element.

    float64 probabilities compare a uniform double, the others a uniform float with ``p`` as
    float32.
    """
    flat = probs.reshape(-1)
    if flat.dtype == np.float64:
        return uniform_double(stream, flat.size) < flat
    return uniform_float(stream, flat.size) < flat.astype(_F32)


def normal(stream: TorchStream, count: int, kind: str, mean: float, std: float) -> np.ndarray:
    """torch's ``normal_(mean, std)`` on a contiguous tensor of ``count`` elements.

    ``kind`` is ``"float32"``, ``"half"`` (float16 and bfloat16) or ``"float64"``. Returns float64
    below 16 elements (the scalar path, cast by the caller through float32 as c10 does), float32
    for the float kinds and float64 for float64 from 16 on. An infinite ``std`` (or one float32
    rounds to infinity) gives IEEE's infinities and NaNs (for a sample of 0), as in torch.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # IEEE's results are torch's
        return _normal(stream, count, kind, mean, std)


def _normal(stream: TorchStream, count: int, kind: str, mean: float, std: float) -> np.ndarray:
    if count < _BLOCK:
        return _normal_scalar(stream, count, mean, std)
    whole = count - count % _BLOCK
    if kind == "float64":
        data = uniform_double(stream, count)
        fill, mean_d, std_d = _fill16_libm, mean, std
    else:
        # float16/bfloat16 draw uniforms for the whole blocks only; float32 for every element.
        data = uniform_float(stream, whole if kind == "half" else count)
        if data.size < count:
            data = np.concatenate([data, np.zeros(count - data.size, _F32)])
        fill, mean_d, std_d = fill16_avx2, _F32(mean), _F32(std)
    blocks = data[:whole].reshape(-1, _BLOCK)  # a view: filled in place
    for start in range(0, len(blocks), ROWS):  # in pieces that stay in the CPU's caches
        piece = blocks[start : start + ROWS]
        fill(piece, mean_d, std_d, out=piece)
    if whole != count:  # the last 16 again, from fresh uniforms
        tail = (
            uniform_double(stream, _BLOCK) if kind == "float64" else uniform_float(stream, _BLOCK)
        )
        data[count - _BLOCK :] = fill(tail.reshape(1, _BLOCK), mean_d, std_d).reshape(-1)
    return data


def _normal_scalar(stream: TorchStream, count: int, mean: float, std: float) -> np.ndarray:
    """``at::normal_distribution<double>``, element by element, with torch's cached sample."""
    out = np.empty(count, dtype=np.float64)
    for i in range(count):
        value = stream.normal
        if value is not None:
            stream.normal = None
        else:
            u1, u2 = uniform_double(stream, 2).tolist()
            radius = math.sqrt(-2.0 * math.log1p(-u2))
            theta = 2.0 * math.pi * u1
            stream.normal = radius * math.sin(theta)
            value = radius * math.cos(theta)
        out[i] = fma64(np.float64(value), np.float64(std), np.float64(mean))
    return out


def _fill16_libm(
    u: np.ndarray, mean: float, std: float, out: np.ndarray | None = None
) -> np.ndarray:
    """``normal_fill_16<double>`` on rows of 16 uniform doubles, with libm's log, cos, sin, into
    ``out`` (which may be ``u``) if given.

    numpy's own float64 ``log`` (and, on some machines, ``sin``/``cos``) differ from the C
    library's in the last bit: those three are the C library's, through ``math``, as torch
    calls them. The products and the square root are IEEE operations, correctly rounded by
    numpy as by C.
    """
    radius = _libm(math.log, 1.0 - u[:, :8])
    radius *= -2.0
    np.sqrt(radius, out=radius)
    theta = u[:, 8:] * (2.0 * math.pi)  # C's 2.0f * pi * u2: (2 pi) folded, then times u2
    if out is None:
        out = np.empty_like(u)
    np.multiply(radius, _libm(math.cos, theta), out=out[:, :8])
    np.multiply(radius, _libm(math.sin, theta), out=out[:, 8:])
    if mean != 0.0:
        out[...] = fma64(out, np.float64(std), np.float64(mean))
        return out
    # fma(x, std, +-0) rounds the exact product once, as a float64 product does, then adds the
    # signed zero (a -0 product plus +0 is +0).
    if std != 1.0:
        out *= std
    out += mean
    return out


def _libm(function: Callable[[float], float], x: np.ndarray) -> np.ndarray:
    """``function`` (one of ``math``'s) of every element of ``x``, in ``x``'s shape."""
    values = map(function, x.reshape(-1).tolist())
    return np.fromiter(values, np.float64, count=x.size).reshape(x.shape)
