"""Seeding torch and flashdrop together, for the helpers and the pytest plugin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import flashdrop
from flashdrop import compat

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int, mode: str | None = None) -> Iterator[None]:
    """Context manager: seed torch and flashdrop alike; restore both, and the mode, on exit.

    Inside the block torch's CPU generator is in the state ``torch.manual_seed(seed)`` leaves,
    and flashdrop's streams in the state ``flashdrop.manual_seed(seed)`` leaves; on exit both
    random states and flashdrop's random mode are what they were before.

    Args:
        seed: the seed of both, as for ``torch.manual_seed``.
        mode: flashdrop's random mode inside the block, ``"torch"`` or ``"mlx"``; ``None`` (the
            default) keeps the current one.

    Example::

        >>> with flashdrop.testing.seeded(0, mode="torch"):
        ...     assert (compat.to_torch(port(compat.to_mlx(x))) == torch_model(x)).all()
    """
    torch = compat.import_torch()
    with (
        torch.random.fork_rng(devices=[]),
        flashdrop.fork_rng(),
        flashdrop.rng_mode(mode or flashdrop.get_rng_mode()),
    ):
        torch.manual_seed(seed)
        flashdrop.manual_seed(seed)
        yield
