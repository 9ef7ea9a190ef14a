"""What a check against torch says about the two torch builds in play: the one torch mode
emulated (the torch target, :func:`flashdrop.get_torch_target`) and the one compared (the torch
running beside flashdrop, on this machine), and the hint when they may draw differently.

Both are :class:`flashdrop.TorchTarget` objects: ``str()`` names a build ("torch 2.13.0 on an
AMD x86-64 CPU"), ``release`` its ``(major, minor)`` and ``cpu`` its CPU. The texts here serve
``flashdrop.testing``, its pytest plugin and the parity report alike.
"""

from typing import Any

# Where the builds and the target are explained: said with every hint to set the target.
_DOCS = "docs/torch-versions.md"


def builds_line(target: Any | None, compared: Any) -> str:
    """The builds a verdict was reached with: torch mode's ``target`` (``None`` in mlx mode,
    which emulates no torch) and the torch ``compared``."""
    torch_mode = "" if target is None else f"torch mode's target: {target}; "
    return f"{torch_mode}the torch compared: {compared} (this machine)"


def another_build(target: Any, compared: Any) -> bool:
    """Whether the torch ``compared`` is another build than torch mode's ``target``: another
    release (major and minor: a release's patch versions draw alike) or another CPU."""
    return (target.release, target.cpu) != (compared.release, compared.cpu)


def target_hint(target: Any, compared: Any, evidence: str) -> str:
    """The hint that the torch ``compared`` may draw otherwise than torch mode's ``target``, on
    the ``evidence`` of draws that differ from the very first on ("the very first mask
    differs"), with how to set the target: to the compared torch's release and CPU where it is
    another build (the likely cause), else in general (a possibility among others)."""
    if another_build(target, compared):
        major, minor = compared.release
        setting = f'version="{major}.{minor}", cpu="{compared.cpu}"'
        return (
            f"{evidence}, and the torch compared ({compared}) is another build than torch "
            f"mode's target ({target}): the two may draw differently. To emulate the torch "
            f"compared, set the target: flashdrop.set_torch_target({setting}), or "
            f"flashdrop.torch_target({setting}) as a context manager around the check "
            f"(see {_DOCS})"
        )
    return (
        f"{evidence}: if the torch compared ({compared}) draws otherwise than torch mode's "
        f"target ({target}), though it has that release and CPU (a build of its own, say), set "
        "the target it draws as: flashdrop.set_torch_target(version=..., cpu=...), or "
        "flashdrop.torch_target(version=..., cpu=...) as a context manager around the check "
        f"(see {_DOCS})"
    )
