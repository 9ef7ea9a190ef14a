"""How figures are written, the same in the terminal, in Markdown and in the targets' reasons."""


def duration(seconds: float) -> str:
    """``121 us``, ``5.27 ms``, ``258 ms``, ``1.99 s``: three significant digits at most."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def mebibytes(size: float, sign: bool = False) -> str:
    return f"{size / 2**20:{'+' if sign else ''}.1f} MiB"
