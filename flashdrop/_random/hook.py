"""The recording hook: :func:`flashdrop.testing.record_draws` sees every draw through it.

A recorder (:func:`recording`) is called with ``(shape, q, mode, mask)`` after every draw its
thread makes, by :func:`report_draw`, the one place that calls it: called from the draw's own
frame, so a recorder finds the draw's callers two frames up from itself.
"""

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import mlx.core as mx

from flashdrop._random.streams import get_rng_mode

Recorder = Callable[[tuple[int, ...], Any, str, "mx.array | None"], None]

# (thread id, recorder) of every active recording; empty otherwise, so that a draw costs one
# truth test more (`if recorders:`, read where the draw is made).
recorders: list[tuple[int, Recorder]] = []


@contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    """Context manager: ``recorder`` sees every draw the calling thread makes in the block."""
    entry = (threading.get_ident(), recorder)
    recorders.append(entry)
    try:
        yield
    finally:
        recorders.remove(entry)


def recording_here() -> bool:
    """Whether this thread records its draws."""
    thread = threading.get_ident()
    return any(owner == thread for owner, _ in tuple(recorders))


def report_draw(shape: Sequence[int], q: float | mx.array | None, mask: mx.array | None) -> None:
    """Report a draw to every recorder of this thread (nothing to do, and one truth test, while
    none records); ``q`` and ``mask`` are ``None`` for a draw that is not a ``bernoulli``. Its
    caller names the draw unless a public function above it does."""
    if not recorders:
        return
    thread, mode = threading.get_ident(), get_rng_mode()
    for owner, record in tuple(recorders):  # another thread may stop recording meanwhile
        if owner == thread:
            record(tuple(shape), q, mode, mask)
