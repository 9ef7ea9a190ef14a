"""Statistical bounds for the tests, each derived from a stated false-failure rate.

Every bound here is a rigorous tail inequality (no normal approximation), so a test that uses
it fails by chance with probability at most the rate it states. With fixed seeds the suite is
deterministic; the rate says how unlucky a seed would have to be.
"""

import math

# The false-failure rate of every statistical test in this suite, unless it says otherwise.
FALSE_FAILURE_RATE = 1e-9


def hoeffding_halfwidth(n: int, rate: float = FALSE_FAILURE_RATE) -> float:
    """t such that a mean of n independent [0, 1] draws is within t of its expectation,
    except with probability ``rate``: P(|mean - E| >= t) <= 2 exp(-2 n t^2) (Hoeffding)."""
    return math.sqrt(math.log(2 / rate) / (2 * n))


def two_sample_halfwidth(n1: int, n2: int, rate: float = FALSE_FAILURE_RATE) -> float:
    """t such that the means of two independent samples of [0, 1] draws with the same
    expectation differ by less than t, except with probability ``rate`` (Hoeffding applied to
    the difference: each term lies in a range of 1/n1 or 1/n2)."""
    return math.sqrt(math.log(2 / rate) * (1 / n1 + 1 / n2) / 2)
