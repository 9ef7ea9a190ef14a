"""The table of the dropout family (flashdrop._family) against flashdrop's layers and torch's.

Every fact of a row is checked where it can be: names and settings against flashdrop.nn, alpha,
channel layout and ranks against torch's functions (against flashdrop's for the layers beyond
torch.nn, whose originals are not installed here).
"""

import inspect
import warnings

import pytest
import torch
import torch.nn.functional as TF

import flashdrop.nn.functional as F
from flashdrop import _family, compat, nn
from tests._support.names import LAYERS

MEMBERS = {m.module: m for m in _family.MEMBERS}
TORCH = [m.module for m in _family.MEMBERS if m.in_torch_nn]
# The most dimensions tried where a member sets no upper limit.
MOST = 6


def test_the_table_lists_every_layer_and_function_once():
    # every dropout layer of flashdrop.nn; the layers that drop inside (compat's table) are not
    assert sorted(MEMBERS) == sorted(n for n in nn.__all__ if n not in ("functional", *LAYERS))
    assert not set(MEMBERS) & set(LAYERS)
    functions = [m.function for m in _family.MEMBERS]
    assert sorted(functions) == sorted(n for n in F.__all__ if n != "scaled_dot_product_attention")
    assert all(_family.named(m.module) is _family.named(m.function) is m for m in MEMBERS.values())
    assert _family.named("scaled_dot_product_attention") is None


@pytest.mark.parametrize("name", list(MEMBERS))
def test_settings_are_the_first_constructor_arguments(name):
    member = MEMBERS[name]
    params = list(inspect.signature(getattr(nn, name)).parameters)
    assert tuple(params[: len(member.settings)]) == member.settings


@pytest.mark.parametrize("name", list(MEMBERS))
def test_channel_members_take_channel_dim(name):
    member = MEMBERS[name]
    for obj in (getattr(nn, name), getattr(F, member.function)):
        assert ("channel_dim" in inspect.signature(obj).parameters) is member.channel


@pytest.mark.parametrize("name", TORCH)
def test_torch_rows_name_torch_s_own(name):
    member = MEMBERS[name]
    assert member.original == f"torch.nn.{name}"
    assert getattr(torch.nn, name).__name__ == name
    assert callable(getattr(TF, member.function))


@pytest.mark.parametrize("name", TORCH)
def test_alpha_is_torch_s(name):
    """torch's plain dropouts give only 0 and 1/(1-p) on ones; its alpha dropouts give neither."""
    member = MEMBERS[name]
    shape = (8,) * (member.max_rank or 4)
    out = getattr(TF, member.function)(torch.ones(shape), 0.5, True)
    assert bool(((out == 0) | (out == 2)).all()) is not member.alpha


def _accepts(fn, ndim):
    """Whether ``fn`` takes an input of ``ndim`` dimensions without an error or a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            fn(ndim)
        except (Exception, Warning):
            return False
    return True


def _call(name):
    """One call of the member's function, torch's for torch.nn's (else flashdrop's), on an
    input of the given rank."""
    member = MEMBERS[name]
    if member.in_torch_nn:
        return lambda ndim: getattr(TF, member.function)(torch.ones((2,) * ndim), 0.5, True)
    args = {"stochastic_depth": (0.5, "row"), "drop_block2d": (0.5, 1), "drop_block3d": (0.5, 1)}
    fn = getattr(F, member.function)
    extra = args.get(member.function, (0.5,))
    return lambda ndim: fn(compat.to_mlx(torch.ones((2,) * ndim)), *extra, training=True)


@pytest.mark.parametrize("name", list(MEMBERS))
def test_ranks(name):
    """Every rank from min_rank to max_rank is taken; one fewer, and one more, is not (refused,
    or warned about), except by dropout2d, whose 3-D input torch takes with a warning."""
    member, call = MEMBERS[name], _call(name)
    most = MOST if member.max_rank is None else member.max_rank
    taken = [n for n in range(member.min_rank, most + 1) if _accepts(call, n)]
    legacy = [3] if member.function == "dropout2d" else []
    assert taken == [n for n in range(member.min_rank, most + 1) if n not in legacy]
    if member.min_rank > 0:
        assert not _accepts(call, member.min_rank - 1)
    if member.max_rank is not None:
        assert not _accepts(call, member.max_rank + 1)
