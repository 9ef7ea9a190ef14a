"""The checks and messages of the random state: modes, seeds, ``set_rng_state``, ``fork_rng``,
``compile``, and torch-mode draws that a transformation would freeze or redraw."""

import re
import sys
from typing import Any

import mlx.core as mx

from flashdrop._checks.arguments import OVERFLOW, typename


def check_rng_state(state: Any, sizes: tuple[int, ...]) -> None:
    """``torch.set_rng_state``'s checks, with its exception types and texts: a uint8 array
    (``TypeError``) with one of ``sizes`` elements, in any shape (``RuntimeError``)."""
    how = (
        f"; set_rng_state takes the uint8 mx.array flashdrop.get_rng_state() returns "
        f"({sizes[0]} elements), or torch's state ({sizes[1]} elements) as an mx.array: "
        "compat.to_mlx(torch.get_rng_state())"
    )
    if not isinstance(state, mx.array):
        raise TypeError(f"expected a torch.ByteTensor, but got {typename(state)}{how}")
    if state.dtype != mx.uint8:
        raise TypeError(f"RNG state must be a torch.ByteTensor{how}, not {state.dtype}")
    if state.size not in sizes:
        raise RuntimeError(
            f"Expected a CPUGeneratorImplState of size {sizes[1]} but found the input RNG "
            f"state size to be {state.size}{how}"
        )


def check_torch_generator_state(left: int, seeded: int, next_: int, words: int) -> None:
    """A torch generator state's header (``left``, ``seeded``, ``next`` of its mt19937 of
    ``words`` words): torch's ``RuntimeError`` for one torch refuses (torch's check; our text
    names the fields), and a ``ValueError`` for one torch accepts but never produces: its draws
    read word ``next`` and regenerate after ``left`` more, two counters only torch's own updates
    keep in step, as numpy's one does."""
    if not (1 <= left <= words and seeded != 0 and next_ <= words):
        raise RuntimeError(
            f"Invalid mt19937 state; the torch part of the state needs 1 <= left <= {words}, "
            f"seeded != 0 and next <= {words}, but has left={left}, seeded={seeded}, "
            f"next={next_}"
        )
    if not (next_ == words + 1 - left or (left == 1 and next_ == 0)):
        raise ValueError(
            f"set_rng_state: a torch generator state with left={left} and next={next_} "
            f"is not one torch produces (next == {words + 1} - left, or left == 1 and next == 0 "
            "after seeding); flashdrop's torch mode cannot continue it"
        )


def check_rng_mode(mode: Any, modes: tuple[str, ...]) -> str:
    """``mode`` if it is one of ``modes``, else a ``ValueError``."""
    if mode not in modes:
        raise ValueError(f"random mode must be one of {modes}, but got {mode!r}")
    return mode


def check_seed(seed: int) -> None:
    """torch's ``ValueError`` for a seed outside [-2**63, 2**64)."""
    if not -(2**63) <= seed < 2**64:
        raise ValueError(OVERFLOW)


def check_compile_not_shapeless(shapeless: bool) -> None:
    """``flashdrop.compile``'s ``ValueError`` for ``shapeless=True``."""
    if shapeless:
        raise ValueError(
            "flashdrop.compile: shapeless=True cannot compile a random draw (MLX's random ops "
            "cannot infer their output shapes in a shapeless trace: 'RandomBits cannot infer "
            "output shapes'). Use shapeless=False: one trace per input shape."
        )


# torch 2.13's device types, as its message lists them, and those it has a module for.
_DEVICE_TYPES = (
    "cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, maia, xla, lazy, "
    "vulkan, mps, meta, hpu, mtia, privateuseone"
)
_DEVICE_MODULES = ("cpu", "cuda", "xpu", "mps", "mtia")
_DEVICE_STRING = re.compile(r"([a-zA-Z_]+)(?::([1-9][0-9]*|0))?")


def check_device_type(device_type: Any) -> None:
    """``torch.random.fork_rng``'s check of ``device_type`` (``torch.get_device_module``'s),
    made before it looks at ``enabled``; torch's ``RuntimeError`` texts. ``"meta"`` and a false
    value (torch's default) pass."""
    if device_type == "meta" or not device_type:
        return
    if not isinstance(device_type, str):
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(device_type, torch.device):
            raise RuntimeError(
                f"Invalid value of device '{device_type}', expect torch.device, str, or None"
            )
        device_type = device_type.type
    match = _DEVICE_STRING.fullmatch(device_type)
    if match is None:
        raise RuntimeError(f"Invalid device string: '{device_type}'")
    name, index = match.groups()
    if index is not None and int(index) >= 2**31:
        raise RuntimeError(
            f"Could not parse device index '{index}' in device string '{device_type}'"
        )
    if name not in _DEVICE_TYPES.split(", "):
        raise RuntimeError(
            f"Expected one of {_DEVICE_TYPES} device type at start of device string: {name}"
        )
    if name not in _DEVICE_MODULES:
        raise RuntimeError(
            f"Device '{name}' does not have a corresponding module registered as 'torch.{name}'."
        )


def raise_torch_mode_compiled(what: str) -> None:
    raise RuntimeError(
        f"flashdrop: a torch-mode {what} cannot be compiled or vmapped: its values are drawn "
        "on the host, so mx.compile would freeze them into the graph (the same values on every "
        "call) and mx.vmap would share them between all rows. Draw in 'mlx' mode there (with "
        "flashdrop.compile for compiling), or call the function uncompiled and outside mx.vmap "
        "(dropout on the whole batch draws every row afresh)."
    )


def raise_torch_mode_recomputed(what: str) -> None:
    raise RuntimeError(
        f"flashdrop: a torch-mode {what} cannot be recomputed by mx.checkpoint or "
        "mlx.nn.utils.checkpoint (or drawn in any custom vjp's backward pass): the "
        "recomputation would draw new masks, not the forward's, so the gradient would be wrong "
        "and torch's stream would advance past where torch's checkpoint leaves it. Use "
        "flashdrop.checkpoint(fn) (or flashdrop.checkpoint(module)), which recomputes with the "
        "forward's masks, as torch.utils.checkpoint does."
    )


def raise_mlx_draw_not_replayed() -> None:
    raise RuntimeError(
        "flashdrop: flashdrop.checkpoint inside a compiled function recomputed an MLX draw "
        "that takes no key (mlx.nn.Dropout, mx.random.normal(...) without key=, ...): inside "
        "a trace MLX's random state cannot be set back to the forward's, so that draw got new "
        "values and the gradient would not be the forward's. Use flashdrop's draws there "
        "(flashdrop.nn.Dropout, flashdrop.randn, ...), pass key= to mx.random, or checkpoint "
        "outside the compiled function."
    )
