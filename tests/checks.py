"""Helpers of the tests of flashdrop.testing: seeded inputs, and the message of a failed check."""

import pytest
import torch


def randn(*shape: int, seed: int = 1) -> torch.Tensor:
    """A standard normal tensor from its own generator (torch's global stream untouched)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def failure(check, *args, **kwargs) -> str:
    """The message of the AssertionError ``check(*args, **kwargs)`` must raise."""
    with pytest.raises(AssertionError) as error:
        check(*args, **kwargs)
    return str(error.value)
