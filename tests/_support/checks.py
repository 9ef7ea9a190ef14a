"""Helpers of the tests of flashdrop.testing: seeded inputs, and the message of a failed check."""

import pytest
import torch

from flashdrop._builds import Builds


def randn(*shape: int, seed: int = 1) -> torch.Tensor:
    """A standard normal tensor from its own generator (torch's global stream untouched)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def failure(check, *args, **kwargs) -> str:
    """The message of the AssertionError ``check(*args, **kwargs)``, a flashdrop.testing
    helper, must raise, without its last line: that line must name the builds compared, torch
    mode's target and the torch compared (tests/parity/test_builds_named.py checks what the
    lines say)."""
    with pytest.raises(AssertionError) as error:
        check(*args, **kwargs)
    message, _, builds = str(error.value).rpartition("\n")
    assert builds in (Builds.now("torch").line(), Builds.now("mlx").line()), builds
    return message


def both_fail(model, port, x) -> tuple[str, str]:
    """The messages of both helpers, which must fail alike at call 1: ``assert_same_as_torch``
    (at its default tolerances) and ``assert_statistically_equivalent`` on its plan of draws."""
    from flashdrop.testing import assert_same_as_torch, assert_statistically_equivalent

    same = failure(assert_same_as_torch, model, port, x)
    stats = failure(assert_statistically_equivalent, model, port, x, trials=5)
    assert same.startswith("the port differs from torch at call 1 of 3 (seed 0): ")
    assert stats.startswith(
        "the port differs from torch at call 1 (seed 0, flashdrop in mlx mode): "
    )
    assert same.split(": ", 1)[1] == stats.split(": ", 1)[1]
    return same, stats
