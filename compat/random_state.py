"""Random state: hand torch's CPU generator to flashdrop's ``"torch"`` random mode and back."""

from __future__ import annotations

from flashdrop._random import get_torch_state, set_torch_state
from flashdrop.compat.lazy_torch import import_torch

__all__ = ["copy_rng_from_torch", "copy_rng_to_torch"]


def copy_rng_from_torch() -> None:
    """Continue flashdrop's ``"torch"`` random mode from torch's CPU generator, as it is now.

    Afterwards, a torch-mode flashdrop call draws exactly the mask torch's own next call would
    draw. Only the torch-mode stream is set; MLX's key (``"mlx"`` mode) is left alone, and torch's
    generator is not advanced.

    Returns:
        None.

    Example::

        >>> torch.manual_seed(0); _ = torch.rand(7)
        >>> compat.copy_rng_from_torch()
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(compat.to_mlx(x), 0.5)  # the bits of torch's F.dropout(x, 0.5) now
    """
    torch = import_torch()
    set_torch_state(torch.get_rng_state().numpy().tobytes())


def copy_rng_to_torch() -> None:
    """Set torch's CPU generator to where flashdrop's ``"torch"`` random mode has got to.

    Afterwards, torch's next draw continues the stream flashdrop's torch-mode calls drew from, as
    if torch had made those calls itself. flashdrop's own state is not changed.

    Returns:
        None.

    Example::

        >>> compat.copy_rng_from_torch()
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(compat.to_mlx(x), 0.5)
        >>> compat.copy_rng_to_torch()  # torch carries on after flashdrop's draw
    """
    torch = import_torch()
    # bytearray: torch.frombuffer warns on a read-only buffer such as bytes.
    state = torch.frombuffer(bytearray(get_torch_state()), dtype=torch.uint8)
    torch.set_rng_state(state)
