"""flashdrop: torch's dropout on Apple MLX, behaving exactly like torch.

``from flashdrop import nn`` gives the six dropout modules, ``flashdrop.nn.functional`` the six
functions; the names below control their randomness.
"""

from flashdrop import nn
from flashdrop._random import (
    compile,
    fork_rng,
    get_rng_mode,
    get_rng_state,
    manual_seed,
    rng_mode,
    set_rng_mode,
    set_rng_state,
)

__version__ = "0.1.0"

__all__ = [
    "compile",
    "fork_rng",
    "get_rng_mode",
    "get_rng_state",
    "manual_seed",
    "nn",
    "rng_mode",
    "set_rng_mode",
    "set_rng_state",
]
