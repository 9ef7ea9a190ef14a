"""flashdrop's randomness, its one owner: the two random modes, every draw's streams, seeding
and state, compiling and checkpointing.

Every mask flashdrop draws comes from :func:`bernoulli`, from the calling thread's mode's
stream: ``"mlx"`` (MLX's keys) or ``"torch"`` (torch's CPU generator, emulated). Every draw of
every kind takes its key from :func:`next_mlx_key` or its words from :func:`torch_stream`, and
the state functions read and write the same two streams: the calling thread's, which
:func:`checkpoint` replays (the global generator itself is not exported). :func:`compile`
keeps a trace per random mode. The rooms:

- :mod:`.streams`: the modes, where each thread's mlx-mode keys and torch-mode words come from.
- :mod:`.torch_cpu`: torch's CPU generator and its kernels (``torch.manual_seed``'s stream).
- :mod:`.target`: which torch build torch mode reproduces (release and CPU), which picks the
  kernels.
- :mod:`.draw`: :func:`bernoulli`, the draw of a mask.
- :mod:`.state`: seeding, ``get_rng_state``/``set_rng_state`` and ``fork_rng`` (the scope of
  ``torch/random.py``).
- :mod:`.tracing`: whether a transformation holds a draw, and the refusal of torch-mode draws
  it would freeze, share or redraw.
- :mod:`.compiling` and :mod:`.checkpointing`: :func:`compile` and :func:`checkpoint` (the
  scope of ``torch.compile`` and ``torch/utils/checkpoint.py``), which keep draws right under
  MLX's transformations.
- :mod:`.hook`: the recording hook :func:`flashdrop.testing.record_draws` uses.

Other modules use the names below only.
"""

from flashdrop._random.checkpointing import checkpoint
from flashdrop._random.compiling import CompiledPerShape, compile, note_training_flag
from flashdrop._random.draw import bernoulli
from flashdrop._random.hook import recording, report_draw
from flashdrop._random.state import (
    STATE_BYTES,
    fork_rng,
    get_rng_state,
    get_torch_state,
    manual_seed,
    set_rng_state,
    set_torch_state,
)
from flashdrop._random.streams import (
    MODES,
    get_rng_mode,
    in_main_stream,
    in_main_thread,
    next_mlx_key,
    rng_mode,
    set_rng_mode,
    torch_stream,
)
from flashdrop._random.target import (
    TorchTarget,
    get_torch_target,
    set_torch_target,
    this_cpu,
    torch_target,
)
from flashdrop._random.torch_cpu import kernels as torch_kernels
from flashdrop._random.torch_cpu import legacy as legacy_torch_kernels
from flashdrop._random.torch_cpu.generator import TorchCPUGenerator
from flashdrop._random.tracing import check_not_tracing

__all__ = [
    "MODES",
    "STATE_BYTES",
    "CompiledPerShape",
    "TorchCPUGenerator",
    "TorchTarget",
    "bernoulli",
    "check_not_tracing",
    "checkpoint",
    "compile",
    "fork_rng",
    "get_rng_mode",
    "get_rng_state",
    "get_torch_state",
    "get_torch_target",
    "in_main_stream",
    "in_main_thread",
    "legacy_torch_kernels",
    "manual_seed",
    "next_mlx_key",
    "note_training_flag",
    "recording",
    "report_draw",
    "rng_mode",
    "set_rng_mode",
    "set_rng_state",
    "set_torch_state",
    "set_torch_target",
    "this_cpu",
    "torch_kernels",
    "torch_stream",
    "torch_target",
]
