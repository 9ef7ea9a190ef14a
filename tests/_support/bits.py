"""Bit-for-bit comparison of a flashdrop output with torch's, of the two random states, and the
inputs that show a difference (NaN, inf and -0.0 planted among normal values)."""

import math

import mlx.core as mx
import numpy as np
import torch

import flashdrop
from flashdrop import compat
from flashdrop._comparison import same

# The bytes of torch's CPU generator state at the front of flashdrop's torch-mode state.
TORCH_STATE_BYTES = 5056


def sample_input(shape, dtype, seed=0):
    """Normal values with NaN, inf, -inf and -0.0 planted at the front."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype)
    specials = torch.tensor([math.nan, math.inf, -math.inf, -0.0], dtype=dtype)
    flat = x.view(-1)
    flat[: min(4, flat.numel())] = specials[: flat.numel()]
    return x


def assert_same_bits(ours: mx.array, theirs: torch.Tensor):
    """Same dtype, shape and bits (NaN equals NaN: torch does not define which NaN
    ``nan * 0`` gives)."""
    back = compat.to_torch(ours)
    assert back.dtype == theirs.dtype and back.shape == theirs.shape
    differ = ~same(back, theirs)
    assert not bool(differ.any()), f"{int(differ.sum())} differ"


def same_state() -> bool:
    """Whether flashdrop's torch-mode stream is where torch's CPU generator is."""
    ours = np.asarray(flashdrop.get_rng_state())[:TORCH_STATE_BYTES]
    return np.array_equal(ours, torch.get_rng_state().numpy())
