"""Names for what flows around the report: torch is imported only through flashdrop.compat."""

from collections.abc import Callable
from typing import Any

Tensor = Any  # a torch.Tensor
Torch = Any  # the torch module
DropoutFn = Callable[[Any], Any]  # one call of an op: input -> output
