"""The draws' arguments as a port writes them for torch: sizes in every form, torch's keywords
(``generator``, ``out``, ``device``, ``requires_grad``, ``layout``, ``pin_memory``,
``memory_format``, ``size=``) and dtypes from the wrong library. At torch's defaults they are
taken and change no bit; at a value flashdrop cannot honour they raise, never ignored."""

import mlx.core as mx
import numpy as np
import pytest
import torch

import flashdrop
from tests._support.bits import assert_same_bits, same_state

T3 = torch.full((3,), 0.5)
M3 = mx.full((3,), 0.5)

# name -> (flashdrop call, torch call), each taking torch's keywords.
CALLS = {
    "rand": (lambda **k: flashdrop.rand(2, 3, **k), lambda **k: torch.rand(2, 3, **k)),
    "randn": (lambda **k: flashdrop.randn([17], **k), lambda **k: torch.randn([17], **k)),
    "randint": (
        lambda **k: flashdrop.randint(3, 9, (5,), **k),
        lambda **k: torch.randint(3, 9, (5,), **k),
    ),
    "randperm": (lambda **k: flashdrop.randperm(7, **k), lambda **k: torch.randperm(7, **k)),
    "normal": (
        lambda **k: flashdrop.normal(1.0, 2.0, (4,), **k),
        lambda **k: torch.normal(1.0, 2.0, (4,), **k),
    ),
    "normal_array": (
        lambda **k: flashdrop.normal(M3, 1.0, **k),
        lambda **k: torch.normal(T3, 1.0, **k),
    ),
    "bernoulli": (lambda **k: flashdrop.bernoulli(M3, **k), lambda **k: torch.bernoulli(T3, **k)),
    "bernoulli_p": (
        lambda **k: flashdrop.bernoulli(M3, 0.3, **k),
        lambda **k: torch.bernoulli(T3, 0.3, **k),
    ),
    "rand_like": (lambda **k: flashdrop.rand_like(M3, **k), lambda **k: torch.rand_like(T3, **k)),
    "randn_like": (
        lambda **k: flashdrop.randn_like(M3, **k),
        lambda **k: torch.randn_like(T3, **k),
    ),
    "randint_like": (
        lambda **k: flashdrop.randint_like(M3, 4, **k),
        lambda **k: torch.randint_like(T3, 4, **k),
    ),
}
DEFAULTS = {
    "generator": None,
    "out": None,
    "device": None,
    "requires_grad": False,
    "layout": torch.strided,
    "pin_memory": False,
    "memory_format": torch.preserve_format,
}


def torch_takes(call, **keywords) -> bool:
    """Whether torch's call takes the keywords (its parser's TypeError says it does not)."""
    try:
        call(**keywords)
    except TypeError:
        return False
    except RuntimeError:  # taken, and refused for its value (an out= of the wrong shape)
        pass
    return True


@pytest.mark.parametrize("keyword", sorted(DEFAULTS))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_torch_defaults_are_taken_and_change_nothing(name, keyword):
    ours, theirs = CALLS[name]
    given = {keyword: DEFAULTS[keyword]}
    if not torch_takes(theirs, **given):  # torch's TypeError, and ours
        with pytest.raises(TypeError, match=f"unexpected keyword argument '{keyword}'"):
            ours(**given)
        return
    torch.manual_seed(5)
    flashdrop.manual_seed(5)
    with flashdrop.rng_mode("torch"):
        assert_same_bits(ours(**given), theirs(**given))
    assert same_state()


@pytest.mark.parametrize("keyword", ["generator", "device", "requires_grad", "out"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_values_flashdrop_cannot_honour_raise(name, keyword):
    ours, theirs = CALLS[name]
    if keyword == "out":
        value = torch.empty(0)
        if not torch_takes(theirs, out=value):
            return
        mine = {"out": mx.zeros(3)}
    else:
        value = {"generator": torch.Generator(), "device": "cpu", "requires_grad": True}[keyword]
        mine = {keyword: value}
        if name.startswith(("randint", "randperm", "bernoulli")) and keyword == "requires_grad":
            value = None  # torch refuses requires_grad for integer / non-float results
        if value is None or not torch_takes(theirs, **{keyword: value}):
            return
    flashdrop.manual_seed(0)
    with flashdrop.rng_mode("torch"), pytest.raises(ValueError, match=f"{keyword}=.*not supported"):
        ours(**mine)


def test_unknown_keyword_is_a_type_error_as_in_torch():
    with pytest.raises(TypeError):
        torch.rand(3, pin_memory=False, stride=(1,))
    with pytest.raises(TypeError, match="unexpected keyword argument 'stride'"):
        flashdrop.rand(3, stride=(1,))
    with pytest.raises(TypeError):
        torch.rand_like(T3, out=None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'out'"):
        flashdrop.rand_like(M3, out=None)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: flashdrop.rand(size=(2, 3)), lambda: torch.rand(size=(2, 3))),
        (lambda: flashdrop.randn(size=[33]), lambda: torch.randn(size=[33])),
        (lambda: flashdrop.rand(torch.Size([2, 3])), lambda: torch.rand(torch.Size([2, 3]))),
        (lambda: flashdrop.rand((2, 3)), lambda: torch.rand((2, 3))),
        (lambda: flashdrop.rand(np.int64(4)), lambda: torch.rand(np.int64(4))),
        (lambda: flashdrop.randint(np.int64(9), [4]), lambda: torch.randint(np.int64(9), [4])),
        (lambda: flashdrop.randint(5, size=(3,)), lambda: torch.randint(5, size=(3,))),
        (lambda: flashdrop.randperm(n=6), lambda: torch.randperm(n=6)),
        (lambda: flashdrop.normal(0.0, 1.0, [4, 5]), lambda: torch.normal(0.0, 1.0, [4, 5])),
    ],
    ids=[
        "size=",
        "size=list",
        "Size",
        "tuple",
        "np.int64",
        "randint np",
        "randint size=",
        "n=",
        "list",
    ],
)
def test_sizes_in_torch_forms(ours, theirs):
    torch.manual_seed(2)
    flashdrop.manual_seed(2)
    with flashdrop.rng_mode("torch"):
        assert_same_bits(ours(), theirs())
    assert same_state()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: flashdrop.randperm(3.0), lambda: torch.randperm(3.0)),
        (lambda: flashdrop.randint(5.0, (2,)), lambda: torch.randint(5.0, (2,))),
        (lambda: flashdrop.randint(True, (2,)), lambda: torch.randint(True, (2,))),
        (lambda: flashdrop.randint(5, 3), lambda: torch.randint(5, 3)),
        (lambda: flashdrop.rand(2, size=(2,)), lambda: torch.rand(2, size=(2,))),
        (lambda: flashdrop.rand(2.5), lambda: torch.rand(2.5)),
    ],
    ids=[
        "randperm float",
        "randint float",
        "randint bool",
        "randint size int",
        "size twice",
        "float",
    ],
)
def test_wrong_argument_types_raise_type_errors_as_torch(ours, theirs):
    with pytest.raises(TypeError) as expected:
        theirs()
    with pytest.raises(TypeError) as got:
        ours()
    if "invalid combination" not in str(expected.value):  # torch's one-line texts: ours too
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("dtype", [torch.float64, np.float64, "float64"], ids=str)
def test_a_dtype_from_another_library_is_a_clear_type_error(dtype):
    for call in (
        lambda: flashdrop.rand(3, dtype=dtype),
        lambda: flashdrop.randn_like(M3, dtype=dtype),
        lambda: flashdrop.randint(3, (2,), dtype=dtype),
        lambda: flashdrop.randperm(3, dtype=dtype),
        lambda: flashdrop.normal(0.0, 1.0, (2,), dtype=dtype),
    ):
        with pytest.raises(TypeError, match=r"must be an mlx\.core\.Dtype"):
            call()
