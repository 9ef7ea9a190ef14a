"""scaled_dot_product_attention at its edges, against real torch 2.13 (CPU): non-finite keys
and values under a mask, an empty value, degenerate scales (issue 18, items 6, 7 and 10).

Where torch's two CPU kernels disagree, flashdrop follows the one torch takes (its flash kernel:
4-D, no dropout; its math kernel otherwise), except for degenerate scales, where it follows the
math kernel (docs/differences.md).
"""

import math

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashdrop
from flashdrop import compat
from flashdrop.nn import functional as F

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOL = {torch.float32: 1e-5, torch.float64: 1e-13, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def attend(seed, q, k, v, **kwargs):
    """(torch's output, ours, whether each side's generator moved) after the same seed."""
    torch.manual_seed(seed)
    theirs = TF.scaled_dot_product_attention(q, k, v, **kwargs)
    their_draw = not torch.equal(torch.get_rng_state(), torch.manual_seed(seed).get_state())
    if isinstance(kwargs.get("attn_mask"), torch.Tensor):
        kwargs["attn_mask"] = compat.to_mlx(kwargs["attn_mask"])
    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(seed)
        before = np.array(flashdrop.get_rng_state())
        ours = F.scaled_dot_product_attention(*map(compat.to_mlx, (q, k, v)), **kwargs)
        mx.eval(ours)
        our_draw = not np.array_equal(before, np.array(flashdrop.get_rng_state()))
    return theirs, compat.to_torch(ours), their_draw, our_draw


def assert_close_with_nans(theirs, ours, dtype):
    """NaN exactly where torch's is, the other values within the dtype's tolerance."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    nan = torch.isnan(theirs)
    assert torch.equal(torch.isnan(ours), nan)
    tol = TOL[dtype]
    torch.testing.assert_close(ours[~nan], theirs[~nan], atol=tol, rtol=tol)


# (query shape, key/value shape, enable_gqa): torch's flash kernel takes the 4-D ones without
# dropout, its math kernel the others.
SHAPES = {
    "4d": ((1, 2, 4, 8), (1, 2, 4, 8), False),
    "4d L!=S": ((2, 2, 3, 8), (2, 2, 5, 8), False),
    "4d gqa": ((1, 4, 5, 8), (1, 2, 5, 8), True),
    "4d long": ((1, 1, 40, 8), (1, 1, 40, 8), False),
    "3d": ((2, 4, 8), (2, 4, 8), False),
    "4d broadcast batch": ((2, 2, 5, 8), (1, 2, 5, 8), False),
}


@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mask_kind", ["causal", "bool", "bool with a fully masked row"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_nan_key_masked_out_is_torchs_nan(shape, mask_kind, dtype, p):
    # The last key, which each row but the last masks out (torch's flash kernel returns 0, not
    # NaN, for a row whose only key is NaN: not emulated).
    qs, ks, gqa = SHAPES[shape]
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(s, generator=gen).to(dtype) for s in (qs, ks, ks))
    k[..., -1, 0] = math.nan
    kwargs = {"dropout_p": p, "enable_gqa": gqa}
    if mask_kind == "causal":
        kwargs["is_causal"] = True
    else:
        mask = torch.rand(qs[-2], ks[-2], generator=gen) < 0.6
        mask[:, -1] = False  # the last key masked out of every row
        if mask_kind != "bool":
            mask[0] = False
        kwargs["attn_mask"] = mask
    theirs, ours, their_draw, our_draw = attend(1, q, k, v, **kwargs)
    assert_close_with_nans(theirs, ours, dtype)
    assert our_draw == their_draw


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("shape", ["4d", "3d", "4d gqa"])
def test_a_fully_masked_row_times_a_nan_or_inf_value_is_torchs(shape, p, bad):
    qs, ks, gqa = SHAPES[shape]
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(s, generator=gen) for s in (qs, ks, ks))
    v[..., 1, 0] = bad
    mask = torch.ones(qs[-2], ks[-2], dtype=torch.bool)
    mask[0] = False
    mask[1:, 1] = False  # the bad value weighs 0 in every row
    theirs, ours, _, _ = attend(3, q, k, v, attn_mask=mask, dropout_p=p, enable_gqa=gqa)
    assert torch.isnan(theirs[..., 0, 0]).all()
    assert_close_with_nans(theirs, ours, torch.float32)


# (query, key, value, keywords): an empty value, alone or with shapes or a p torch never checks.
EMPTY_VALUES = [
    ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 0), {}),
    ((1, 2, 3, 4), (1, 2, 3, 4), (0, 2, 3, 4), {}),
    ((2, 3, 4), (1, 3, 4), (0, 3, 4), {}),
    ((3, 4), (3, 4), (3, 0), {}),
    ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 6, 0), {}),
    ((1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 3, 0), {}),
    ((1, 3, 3, 4), (1, 2, 3, 4), (1, 2, 3, 0), {}),
    ((1, 2, 3, 4), (1, 1, 3, 4), (1, 1, 3, 0), {"enable_gqa": True}),
    ((1, 0, 3, 4), (1, 0, 3, 4), (1, 0, 3, 4), {"enable_gqa": True}),
    ((1, 4, 3, 4), (1, 0, 3, 4), (1, 0, 3, 4), {"enable_gqa": True}),
    ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 0), {"dropout_p": 1.5}),
    ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 0), {"attn_mask": torch.ones(7, 7, dtype=torch.bool)}),
]


@pytest.mark.parametrize("options", [{}, {"dropout_p": 0.5}, {"is_causal": True}])
@pytest.mark.parametrize("case", range(len(EMPTY_VALUES)))
def test_an_empty_value_gives_torchs_zeros_and_draws_nothing(case, options):
    qs, ks, vs, kwargs = EMPTY_VALUES[case]
    kwargs = {**kwargs, **options}
    if "attn_mask" in kwargs and kwargs.get("is_causal"):
        pytest.skip("torch refuses a mask with is_causal")
    q, k, v = (torch.randn(s) for s in (qs, ks, vs))
    theirs, ours, their_draw, our_draw = attend(4, q, k, v, **kwargs)
    assert not their_draw and not our_draw
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)


def test_zero_heads_with_gqa_and_a_value_are_torchs_empty_output():
    q, k, v = torch.randn(1, 0, 3, 4), torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    theirs, ours, _, _ = attend(5, q, k, v, enable_gqa=True, dropout_p=0.5)
    assert ours.shape == theirs.shape == (1, 0, 3, 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [0.0, -0.0, -1.0, -2.5, 1e-30, math.nan])
@pytest.mark.parametrize("shape", ["4d", "4d L!=S", "4d gqa", "3d"])
def test_degenerate_scales_with_is_causal_follow_torchs_math_kernel(shape, scale, dtype):
    # torch's CPU flash kernel (4-D, no dropout) returns NaN for scale <= 0 and 0 for a NaN
    # scale with is_causal; its math kernel (3-D inputs, dropout) the softmax's value, which
    # flashdrop returns for every shape (docs/differences.md).
    qs, ks, gqa = SHAPES[shape]
    gen = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(s, generator=gen).to(dtype) for s in (qs, ks, ks))
    with sdpa_kernel(SDPBackend.MATH):
        theirs = TF.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=scale, enable_gqa=gqa
        )
    ours = F.scaled_dot_product_attention(
        *map(compat.to_mlx, (q, k, v)), is_causal=True, scale=scale, enable_gqa=gqa
    )
    assert_close_with_nans(theirs, compat.to_torch(ours), dtype)
