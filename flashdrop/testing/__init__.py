"""Check an MLX port's dropout against the torch original, in your own tests.

- :func:`assert_same_as_torch`: the port makes torch's dropout draws (shape, p and mask of each,
  in order) and gives torch's outputs bit for bit (or within tolerances), call after call, from
  the same seed in flashdrop's ``"torch"`` random mode. On failure it names the first draw that
  differs, on both sides (op, shape, p, module, call site), or, when every draw agrees, the
  positions where the outputs differ.
- :func:`assert_statistically_equivalent`: in the default ``"mlx"`` mode, where masks differ by
  design, the port makes torch's draws (shape and p) and its masks and outputs have torch's
  statistics over many calls, with a stated false-failure rate.
- :func:`record_draws` and :func:`record_torch_draws`: the records both compare, one
  :class:`Draw` per draw; :func:`dropout_sites` lists a torch model's draws in call order.
- :func:`seeded`: seed torch and flashdrop together, and restore both afterwards.

Every failure names the torch builds compared: torch mode's target
(:func:`flashdrop.get_torch_target`) and the torch compared, on this machine. torch does not
draw alike in every build (docs/torch-versions.md): where the very first mask differs, the
message says that the two may draw differently, and how to set the target.

The pytest plugin (:mod:`flashdrop.pytest_plugin`, active when flashdrop is installed) wraps
:func:`seeded` in the fixtures ``flashdrop_seed`` and ``torch_mode``, and shows both sides'
draws, side by side, under a test these helpers fail.

torch is needed to run these helpers, not to import this module: it is loaded through
:func:`flashdrop.compat.import_torch` on the first call.
"""

from flashdrop._recording import CallSite, Draw, record_draws
from flashdrop.compat import record_torch_draws
from flashdrop.testing._assertions import (
    assert_same_as_torch,
    assert_statistically_equivalent,
    dropout_sites,
)
from flashdrop.testing._seeding import seeded

__all__ = [
    "CallSite",
    "Draw",
    "assert_same_as_torch",
    "assert_statistically_equivalent",
    "dropout_sites",
    "record_draws",
    "record_torch_draws",
    "seeded",
]
