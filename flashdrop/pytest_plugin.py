"""flashdrop's pytest plugin: seeded fixtures for checking a port against torch.

Registered through the ``pytest11`` entry point, so pytest loads it wherever flashdrop is
installed (``-p no:flashdrop`` turns it off). It adds, and changes nothing else:

- the fixture ``flashdrop_seed``: seeds torch and flashdrop with the test's seed and gives it to
  the test; both random states are restored after the test;
- the fixture ``torch_mode``: the same, with flashdrop in its ``"torch"`` random mode for the
  test (the previous mode is restored), so the port draws torch's masks;
- the option ``--flashdrop-seed N``: the seed of those fixtures (default 0), for example to rerun
  the statistical checks (:func:`flashdrop.testing.assert_statistically_equivalent`) with
  another seed;
- the marker ``@pytest.mark.flashdrop_seed(N)``: the seed of one test, over the option;
- under a test that :func:`flashdrop.testing.assert_same_as_torch` or
  :func:`~flashdrop.testing.assert_statistically_equivalent` fails, a report section
  "flashdrop: dropout draws" with both sides' draws side by side, ``!`` on those that differ;
- at the end of a run whose tests used those fixtures, or that a helper failed, a summary
  section "flashdrop" naming the torch builds compared: torch mode's target
  (:func:`flashdrop.get_torch_target`, as the run left it) and the torch compared, on this
  machine.

The helpers and fixtures hide their own frames from pytest's tracebacks (``__tracebackhide__``):
a failure shows the test's line, then the message.

This module imports neither flashdrop's arrays nor torch: the fixtures do, when a test uses them.
"""

from collections.abc import Generator, Iterator

import pytest

# Whether a test of the run used the fixtures or failed a helper: then the summary names the
# builds compared.
_USED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flashdrop")
    group.addoption(
        "--flashdrop-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the flashdrop_seed and torch_mode fixtures (default 0); a test's "
        "flashdrop_seed marker takes precedence",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "flashdrop_seed(n): the seed the flashdrop_seed and torch_mode fixtures use in this test",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Add both sides' draws to the report of a test a flashdrop.testing helper failed."""
    outcome = yield
    report = outcome.get_result()
    error = call.excinfo.value if call.excinfo is not None else None
    while error is not None:  # the helper's error, or one raised from it
        table = getattr(error, "flashdrop_draws", None)
        if table:
            report.sections.append(("flashdrop: dropout draws (torch | port)", table))
            item.config.stash[_USED] = True
            return
        error = error.__cause__ or error.__context__


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Name the torch builds compared, after a run that used flashdrop's fixtures or helpers."""
    if config.stash.get(_USED, False):
        from flashdrop._builds import Builds

        terminalreporter.write_sep("-", "flashdrop")
        terminalreporter.write_line(Builds.now().line())


def _chosen_seed(request: pytest.FixtureRequest) -> int:
    """The test's marker, else ``--flashdrop-seed``, else 0."""
    marker = request.node.get_closest_marker("flashdrop_seed")
    if marker is not None:
        if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], int):
            raise TypeError(
                "the flashdrop_seed marker takes one int, as in "
                f"@pytest.mark.flashdrop_seed(7), but got {marker.args!r} {marker.kwargs!r}"
            )
        return marker.args[0]
    return request.config.getoption("flashdrop_seed")


@pytest.fixture
def flashdrop_seed(request: pytest.FixtureRequest) -> Iterator[int]:
    """The test's seed, with torch and flashdrop seeded with it; both restored afterwards.

    Example::

        def test_dropout_rate(flashdrop_seed):
            assert_statistically_equivalent(torch_model, port, x, seed=flashdrop_seed)
    """
    __tracebackhide__ = True
    from flashdrop.testing import seeded

    seed = _chosen_seed(request)
    request.config.stash[_USED] = True
    with seeded(seed):
        yield seed


@pytest.fixture
def torch_mode(flashdrop_seed: int) -> Iterator[int]:
    """``flashdrop_seed``, with flashdrop in ``"torch"`` random mode during the test.

    The port then draws the masks torch draws: compare a torch call and the port's directly.

    Example::

        def test_same_masks(torch_mode):
            expected = torch_model(x)
            got = compat.to_torch(port(compat.to_mlx(x)))
            torch.testing.assert_close(got, expected, rtol=0, atol=0)  # says where they differ
    """
    __tracebackhide__ = True
    import flashdrop

    with flashdrop.rng_mode("torch"):
        yield flashdrop_seed
