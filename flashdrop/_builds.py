"""The two torch builds a comparison with torch involves, for flashdrop.testing, its pytest
plugin and the parity report: the target torch mode emulates, and the torch compared (the one
running beside flashdrop, on this machine). Their verdicts name both (the texts are in
:mod:`flashdrop._checks.torch_builds`): the same port, checked against another build, may draw
other masks (docs/torch-versions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from flashdrop import _checks, _random, compat

__all__ = ["Builds"]


@dataclass(frozen=True)
class Builds:
    """torch mode's ``target`` (``None`` for a check in mlx mode, which emulates no torch) and
    the torch ``compared``, as :class:`flashdrop.TorchTarget` objects."""

    target: _random.TorchTarget | None
    compared: _random.TorchTarget

    @classmethod
    def now(cls, mode: str = "torch") -> Builds:
        """The builds of a check starting now in ``mode``: the calling thread's target (in
        torch mode), and the torch :func:`flashdrop.compat.import_torch` gives (its version),
        on this machine's CPU."""
        target = _random.get_torch_target() if mode == "torch" else None
        version = compat.import_torch().__version__
        return cls(target, _random.TorchTarget(version, _random.this_cpu()))

    def line(self) -> str:
        """Both builds, named: the line a verdict ends with."""
        return _checks.builds_line(self.target, self.compared)

    def hint(self, evidence: str) -> str:
        """That the torch compared may draw otherwise than the target, on the ``evidence`` of
        draws that differ from the very first on, and how to set the target (torch mode)."""
        assert self.target is not None, "mlx mode emulates no torch"
        return _checks.target_hint(self.target, self.compared, evidence)
