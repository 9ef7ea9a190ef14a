import pytest
import torch

import flashdrop


@pytest.fixture(autouse=True)
def _same_seed_everywhere():
    """Each parity test starts from one seed on both sides, in mlx mode."""
    torch.manual_seed(0)
    flashdrop.manual_seed(0)
    with flashdrop.rng_mode("mlx"):
        yield
