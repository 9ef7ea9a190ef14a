"""flashdrop: torch's dropout on Apple MLX, behaving exactly like torch.

``from flashdrop import nn`` gives torch's six dropout modules (and the dropout family beyond
``torch.nn``: stochastic depth, drop path, DropBlock, locked dropout), ``flashdrop.nn.functional``
the matching functions; the names below control their randomness, and draw torch's other random
numbers (``rand``, ``randn``, ``randint``, ``randperm``, ``bernoulli``, ``normal``) from the same
stream. ``flashdrop.compat`` converts tensors and random state between torch and MLX (it
imports torch only when one of its functions is called).
"""

from flashdrop import compat, nn
from flashdrop._draws import (
    bernoulli,
    normal,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
)
from flashdrop._random import (
    TorchTarget,
    checkpoint,
    compile,
    fork_rng,
    get_rng_mode,
    get_rng_state,
    get_torch_target,
    manual_seed,
    rng_mode,
    set_rng_mode,
    set_rng_state,
    set_torch_target,
    torch_target,
)

__version__ = "0.1.0"  # the one place the version is defined (pyproject.toml reads it)

__all__ = [
    "TorchTarget",
    "bernoulli",
    "checkpoint",
    "compat",
    "compile",
    "fork_rng",
    "get_rng_mode",
    "get_rng_state",
    "get_torch_target",
    "manual_seed",
    "nn",
    "normal",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "randperm",
    "rng_mode",
    "set_rng_mode",
    "set_rng_state",
    "set_torch_target",
    "torch_target",
]
