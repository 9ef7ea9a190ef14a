"""The one place flashdrop imports torch: lazily, when a function that needs it is called."""

from __future__ import annotations

from types import ModuleType


def import_torch() -> ModuleType:
    """Import and return torch, with an install hint when it is missing.

    Every function here calls this first, so ``from flashdrop import compat`` itself never
    loads torch.

    Raises:
        ImportError: torch is not installed; the message says how to install it.
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "flashdrop.compat needs torch; install it with `pip install '.[torch]'` in flashdrop's "
            "clone (on Linux that is the CUDA build; for torch's CPU-only build, first run "
            "`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`)"
        ) from error
    return torch
