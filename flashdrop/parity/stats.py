"""Statistics: the two-proportion test behind the mlx-mode rows, and its threshold."""

from __future__ import annotations

import math

__all__ = ["P_VALUE_THRESHOLD", "two_proportion_p_value"]

# A statistical row fails below this p-value; under the null hypothesis (flashdrop keeps with
# torch's probability) it is also each row's chance of failing by bad luck.
P_VALUE_THRESHOLD = 1e-6


def two_proportion_p_value(kept1: int, n1: int, kept2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test that ``kept1/n1 == kept2/n2``.

    Normal approximation: ``z = (f1 - f2) / sqrt(f (1 - f) (1/n1 + 1/n2))`` with ``f`` the pooled
    fraction, p-value ``erfc(|z| / sqrt 2)``. When every draw went the same way on both sides
    (``f`` is 0 or 1, as at p = 0 and p = 1) the proportions are equal and the p-value is 1.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("two_proportion_p_value: both samples need at least one draw")
    pooled = (kept1 + kept2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        return 1.0
    z = (kept1 / n1 - kept2 / n2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))
