"""flashdrop.compat: the bridge between torch and flashdrop: tensors, random state, modules.

This is the only place in the project that imports torch, and it does so lazily, inside the
functions: ``from flashdrop import compat`` works without torch installed, and torch is loaded
on the first call. It is organised by concern:

- :mod:`flashdrop.compat.tensors`: :func:`to_mlx` and :func:`to_torch` convert tensors and
  arrays, bit for bit.
- :mod:`flashdrop.compat.random_state`: :func:`copy_rng_from_torch` and
  :func:`copy_rng_to_torch` hand torch's CPU generator state to flashdrop's ``"torch"`` random
  mode and back, so the two can draw from one stream in turn.
- :mod:`flashdrop.compat.porting`: :func:`port_dropout` turns a torch dropout module into its
  flashdrop twin, and :func:`dropout_layers` lists the dropout modules of a torch model, so a
  port can be built and checked layer by layer.
- :mod:`flashdrop.compat.recording`: :func:`record_torch_draws` records every draw of torch's CPU
  generator, as :func:`flashdrop.testing.record_draws` records flashdrop's.
- :mod:`flashdrop.compat.lazy_torch`: :func:`import_torch`, the one place torch is imported.

In the repository these files live in the top-level ``compat/`` folder; ``flashdrop/compat`` is
a link to it, so the package is ``flashdrop.compat`` everywhere (see ``pyproject.toml``).
"""

from flashdrop.compat.lazy_torch import import_torch
from flashdrop.compat.porting import dropout_layers, port_dropout
from flashdrop.compat.random_state import copy_rng_from_torch, copy_rng_to_torch
from flashdrop.compat.recording import record_torch_draws
from flashdrop.compat.tensors import to_mlx, to_torch

__all__ = [
    "copy_rng_from_torch",
    "copy_rng_to_torch",
    "dropout_layers",
    "import_torch",
    "port_dropout",
    "record_torch_draws",
    "to_mlx",
    "to_torch",
]
