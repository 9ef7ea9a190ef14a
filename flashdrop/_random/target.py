"""The torch that torch mode emulates: its release and the CPU it runs on.

torch's CPU draws are not the same in every build. torch 2.1 to 2.6, in their x86-64 builds
(which link Intel MKL), draw ``bernoulli_(p)`` (every dropout mask) from an MKL stream on Intel
and AMD CPUs alike, where torch 2.7 and later, and every arm64 build, draw it from mt19937 (see
:mod:`flashdrop._random.torch_cpu.mkl`). A target names the build: ``version`` a torch release,
``cpu`` one of ``"intel"``, ``"amd"``, ``"arm"``. What is not set is automatic: the torch
installed beside flashdrop (its metadata, read without importing torch) and this machine's CPU;
without torch, the newest verified release.

Checked bit for bit against goldens recorded from every release 2.1 to 2.15 on x86-64
(scripts/record_torch_goldens.py, replayed by tests/parity/test_torch_goldens.py);
docs/torch-versions.md says which release and platform was verified how.
"""

import functools
import importlib.metadata
import platform
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CPUS = ("intel", "amd", "arm")
# The minor releases torch mode reproduces, oldest first: each recorded from real torch on x86-64
# (tests/goldens/; docs/torch-versions.md says how each release and platform was verified).
VERIFIED = tuple((2, minor) for minor in range(1, 16))
# x86-64 builds of these releases draw bernoulli_(p) from MKL's MCG31 (on every x86 CPU).
MKL_BERNOULLI = ((2, 1), (2, 6))
# The other changes between releases: per change, the first release that draws torch 2.13's way
# (the release before it was recorded drawing the old way: flashdrop._random.torch_cpu.legacy).
CHANGES = {
    "half_bernoulli": (2, 2),  # x86-64: MKL's bernoulli_(p) takes float16 tensors (2.1 raises)
    "randint_span": (2, 7),  # randint: two words from a span of 2**28 on, not 2**32
    "half_uniform": (2, 12),  # float16/bfloat16 uniforms: 24 bits, not the dtype's
    "half_normal": (2, 12),  # float16/bfloat16 normals of 16+: in float32, not in the dtype
    "half_normal_avx2": (2, 13),  # ... and with float32's AVX2 path, not the C library's
}

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:[+.\-].*)?")


@dataclass(frozen=True)
class TorchTarget:
    """A torch build whose draws torch mode reproduces.

    Attributes:
        version (str): the torch release, such as ``"2.4.1"`` or ``"2.4"`` (its patch releases
            draw alike).
        cpu (str): ``"intel"``, ``"amd"`` or ``"arm"`` (arm64 builds: Apple silicon, Linux
            aarch64).
    """

    version: str
    cpu: str

    @property
    def release(self) -> tuple[int, int]:
        """``(major, minor)`` of :attr:`version`."""
        return _release(self.version)

    @property
    def mkl_bernoulli(self) -> bool:
        """Whether this build draws ``bernoulli_(p)`` from MKL's MCG31 (one generator word a
        call) instead of mt19937 (two words an element)."""
        first, last = MKL_BERNOULLI
        return self.cpu != "arm" and first <= self.release <= last

    def before(self, change: str) -> bool:
        """Whether this release draws as before ``change``, a key of :data:`CHANGES`."""
        return self.release < CHANGES[change]

    def __str__(self) -> str:
        return f"torch {self.version} on {_CPU_NAMES[self.cpu]}"


_CPU_NAMES = {"intel": "an Intel x86-64 CPU", "amd": "an AMD x86-64 CPU", "arm": "an arm64 CPU"}


@functools.cache  # read at every torch-mode draw: parse each version string once
def _release(version: str) -> tuple[int, int]:
    match = _VERSION.fullmatch(version)
    assert match is not None  # checked by _checked_version
    return int(match[1]), int(match[2])


def _verified_range() -> str:
    (major, first), (_, last) = VERIFIED[0], VERIFIED[-1]
    return f"torch {major}.{first} to {major}.{last}"


def _checked_version(version: object) -> str:
    """``version`` if it names a verified torch release, else a ValueError naming those."""
    if not isinstance(version, str):
        raise TypeError(f"version must be a str such as '2.4.1', not {type(version).__name__}")
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        raise ValueError(
            f"version must be a torch release such as '2.4' or '2.4.1', got {version!r}"
        )
    if (int(match[1]), int(match[2])) not in VERIFIED:
        raise ValueError(
            f"torch {version} is not a verified torch target: flashdrop reproduces the draws of"
            f" {_verified_range()} ({', '.join(f'{a}.{b}' for a, b in VERIFIED)})"
        )
    return version.strip().split("+")[0]


def _checked_cpu(cpu: object) -> str:
    if cpu not in CPUS:
        raise ValueError(f"cpu must be one of {', '.join(map(repr, CPUS))}, got {cpu!r}")
    return str(cpu)


@functools.cache
def installed_torch() -> str | None:
    """The version of the torch installed beside flashdrop (from its metadata), or None."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def this_cpu() -> str:
    """This machine's CPU: ``"arm"`` for arm64, else the x86-64 vendor (``"amd"`` for vendors
    other than Intel: they draw as AMD does)."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm"
    try:  # Linux: the vendor CPUID reports
        with open("/proc/cpuinfo") as file:
            text = file.read()
    except OSError:  # Windows names it in processor(); x86-64 Macs are all Intel
        text = platform.processor() or ("GenuineIntel" if platform.system() == "Darwin" else "")
    return "intel" if "GenuineIntel" in text else "amd"


def nearest_verified(installed: str | None) -> tuple[str, bool]:
    """The release to emulate for an installed torch version (None: no torch), and whether it
    is a stand-in: the nearest verified release for a torch that was not verified."""
    match = _VERSION.fullmatch(installed or "")
    if match is None:  # no torch (or a version that is no release): the newest verified
        return "{}.{}".format(*VERIFIED[-1]), installed is not None
    release = (int(match[1]), int(match[2]))
    if release in VERIFIED:
        return installed.split("+")[0], False
    return "{}.{}".format(*(VERIFIED[0] if release < VERIFIED[0] else VERIFIED[-1])), True


@functools.cache
def _automatic_version() -> str:
    """The installed torch's release, or the nearest verified one (with a warning, once)."""
    installed = installed_torch()
    version, stand_in = nearest_verified(installed)
    if stand_in:
        warnings.warn(
            f"flashdrop's torch mode reproduces {_verified_range()}; the installed torch"
            f" {installed} was not verified, so torch mode emulates torch {version}, the nearest"
            " verified release (choose another with flashdrop.set_torch_target)",
            stacklevel=4,
        )
    return version


# The process's setting (None: automatic), and a torch_target block's, per thread.
_default: tuple[str | None, str | None] = (None, None)


class _Local(threading.local):
    setting: tuple[str | None, str | None] | None = None


_local = _Local()


def set_torch_target(version: str | None = None, cpu: str | None = None) -> None:
    """Choose the torch build whose draws torch mode reproduces.

    Args:
        version (str, optional): a torch release, ``"2.1"`` to ``"2.15"`` or with its patch
            number (``"2.4.1"``). Default: the torch installed beside flashdrop (read from its
            package metadata, without importing it), or the newest verified release without one.
        cpu (str, optional): ``"intel"``, ``"amd"`` or ``"arm"``. Default: this machine's.

    This is the process default, seen by every thread outside a :func:`torch_target` block.
    ``set_torch_target()`` goes back to automatic.

    Example::

        >>> flashdrop.set_torch_target("2.4", cpu="amd")  # the masks of torch 2.4 on x86-64 CI
    """
    global _default
    _default = _checked_setting(version, cpu)
    if _local.setting is not None:
        _local.setting = _default


def get_torch_target() -> TorchTarget:
    """The torch build torch mode reproduces now, in the calling thread (automatic parts
    resolved): a :class:`TorchTarget` with ``version`` and ``cpu``."""
    version, cpu = _local.setting or _default
    return TorchTarget(version or _automatic_version(), cpu or this_cpu())


@contextmanager
def torch_target(version: str | None = None, cpu: str | None = None) -> Iterator[TorchTarget]:
    """Context manager: reproduce the given torch build inside the block (the calling thread
    only), then go back to the previous target. Arguments as :func:`set_torch_target`.

    Example::

        >>> with flashdrop.torch_target("2.6", cpu="intel"), flashdrop.rng_mode("torch"):
        ...     y = F.dropout(x, 0.5)   # the mask torch 2.6 draws on x86-64
    """
    previous = _local.setting
    _local.setting = _checked_setting(version, cpu)
    try:
        yield get_torch_target()
    finally:
        _local.setting = previous


def _checked_setting(version: object, cpu: object) -> tuple[str | None, str | None]:
    return (
        None if version is None else _checked_version(version),
        None if cpu is None else _checked_cpu(cpu),
    )
