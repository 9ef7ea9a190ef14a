"""Seeding, saving and restoring both random streams: the scope of ``torch/random.py``.

The state of both streams travels together: :func:`get_rng_state` returns one uint8 array, the
first 5056 bytes laid out exactly as ``torch.get_rng_state()``, the last 8 MLX's key.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import mlx.core as mx
import numpy as np

from flashdrop import _checks
from flashdrop._random.streams import (
    in_main_thread,
    local,
    mlx_key,
    put_mlx_key,
    set_mlx_key,
    thread_streams,
    torch_generator_here,
)
from flashdrop._random.torch_cpu.generator import TORCH_STATE_BYTES

_MLX_KEY_BYTES = 8
STATE_BYTES = TORCH_STATE_BYTES + _MLX_KEY_BYTES


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
    torch_generator_here().manual_seed(seed)
    if local.torch_replay is None:  # a checkpoint's recomputation reseeds its own streams only
        thread_streams.reseed(seed)
    if in_main_thread():
        # MLX's state is per thread; another thread's would be touched (see next_mlx_key).
        mx.random.seed(seed)


def get_rng_state() -> mx.array:
    """The state of both random streams, as a uint8 array of 5064 bytes.

    The first 5056 bytes are laid out as ``torch.get_rng_state()``'s (the torch-mode stream);
    the last 8 are the mlx-mode key as two little-endian uint32: MLX's ``mx.random.state`` in
    the main thread, the thread's own stream in other threads (see :func:`next_mlx_key`).
    """
    key = np.asarray(mlx_key(), dtype="<u4").tobytes()
    return mx.array(np.frombuffer(get_torch_state() + key, dtype=np.uint8))


def set_rng_state(state: mx.array) -> None:
    """Restore the random state from an array returned by :func:`get_rng_state` (5064 bytes:
    both streams), or from torch's own state (5056 bytes: the torch-mode stream only; MLX's key
    is left as it is). As in torch, a uint8 array of any shape with that many elements is taken,
    in its row-major order.

    Example::

        >>> flashdrop.set_rng_state(compat.to_mlx(torch.get_rng_state()))  # torch's stream
    """
    _checks.check_rng_state(state, (STATE_BYTES, TORCH_STATE_BYTES))
    data = np.asarray(state).tobytes()
    set_torch_state(data[:TORCH_STATE_BYTES])
    if len(data) == TORCH_STATE_BYTES:
        return
    set_mlx_key(np.frombuffer(data[TORCH_STATE_BYTES:], dtype="<u4"))


def get_torch_state() -> bytes:
    """The torch-mode stream's state, the bytes of ``torch.get_rng_state()``."""
    return torch_generator_here().get_state()


def set_torch_state(data: bytes) -> None:
    """Set the torch-mode stream from the bytes of ``torch.get_rng_state()``."""
    torch_generator_here().set_state(data)


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
    state = snapshot()
    try:
        yield
    finally:
        restore(state if fork_mlx else state._replace(mlx_key=None))


class Snapshot(NamedTuple):
    """The calling thread's random state, as :func:`snapshot` takes it: torch's stream in
    ``torch.get_rng_state()``'s bytes, and the mlx-mode key itself (an array: it may be a
    compiled trace's)."""

    torch: bytes
    mlx_key: mx.array | None


def snapshot() -> Snapshot:
    """The calling thread's random state, both streams; :func:`restore` puts it back."""
    return Snapshot(get_torch_state(), mlx_key())


def restore(state: Snapshot) -> None:
    """Put back a :func:`snapshot` (its torch stream only if its ``mlx_key`` is ``None``)."""
    set_torch_state(state.torch)
    if state.mlx_key is not None:
        put_mlx_key(state.mlx_key)
