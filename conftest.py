"""Every ```python block of README.md and docs/*.md runs as a test, through Sybil.

A block in doctest form (``>>>``) has its printed output checked; any other block must run
without an error. The blocks of one page run in order, in one namespace; each page starts from
flashdrop's default random mode, and the random states of flashdrop (MLX's key included) and
torch are put back after it, so that pages change nothing for the tests that follow.
"""

from contextlib import ExitStack
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser


def _setup(namespace: dict) -> None:
    import flashdrop

    stack = ExitStack()
    stack.enter_context(flashdrop.fork_rng())
    stack.enter_context(flashdrop.rng_mode("mlx"))
    try:
        import torch
    except ImportError:
        pass
    else:
        stack.enter_context(torch.random.fork_rng(devices=[]))
    namespace["_sybil_stack"] = stack


def _teardown(namespace: dict) -> None:
    namespace["_sybil_stack"].close()


pytest_collect_file = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=ELLIPSIS | NORMALIZE_WHITESPACE),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()
