"""scaled_dot_product_attention against real torch 2.13 (CPU).

In torch mode the dropout of the attention weights is torch's bit for bit: with ``value`` the
identity, the output is the dropped weights themselves, so its zeros are the mask; the output is
torch's within float tolerance, and the generator ends where torch's does. Errors are torch's
(type and text; ours may add '; ' and a hint) except where this file says otherwise. Gradients
through ``mx.grad`` match torch autograd's.
"""

import fractions
import inspect
import math
import re
import zlib

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
from flashdrop import compat
from flashdrop.nn import functional as F
from tests._support.outcome import assert_same_outcome, outcome
from tests._support.stats import hoeffding_halfwidth, two_sample_halfwidth

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# Output tolerance per dtype (atol = rtol): float16 and bfloat16 results are rounded once to the
# dtype after a float32 computation, which may round a last bit differently; float64 is
# float64-accurate (MLX's own float64 exp, float32-accurate on the CPU, is not used).
TOL = {torch.float32: 1e-5, torch.float64: 1e-13, torch.float16: 1e-3, torch.bfloat16: 8e-3}
PS = [0.0, 0.1, 0.5, 0.9]


def mx_(t):
    return None if t is None else compat.to_mlx(t)


def state_bytes() -> bytes:
    return bytes(np.array(flashdrop.get_rng_state())[: torch.get_rng_state().numel()])


def both(seed, q, k, v, mask=None, p=0.0, causal=False, **kw):
    """(torch's output, ours, torch's generator state after, ours) after the same seed."""
    torch.manual_seed(seed)
    theirs = TF.scaled_dot_product_attention(q, k, v, mask, p, causal, **kw)
    their_state = torch.get_rng_state().numpy().tobytes()
    flashdrop.manual_seed(seed)
    with flashdrop.rng_mode("torch"):
        ours = F.scaled_dot_product_attention(mx_(q), mx_(k), mx_(v), mx_(mask), p, causal, **kw)
        mx.eval(ours)
        our_state = state_bytes()
    return theirs, compat.to_torch(ours), their_state, our_state


# (query, key heads, L, S, batch axes): heads and GQA groups, ranks 2 to 5.
SHAPES = {
    "4d": ((2, 3), 3, 5, 7),
    "4d L==S": ((2, 3), 3, 6, 6),
    "5d": ((2, 2, 2), 2, 4, 6),
    "3d": ((3,), 3, 5, 5),
    "2d": ((), None, 4, 6),
    "gqa": ((2, 6), 2, 5, 7),
}


def inputs(shape, dtype, mask_kind, gen):
    batch, kv_heads, length, source = SHAPES[shape]
    e = 8
    kv_batch = batch if kv_heads is None else (*batch[:-1], kv_heads)
    q = torch.randn(*batch, length, e, generator=gen).to(dtype)
    k = torch.randn(*kv_batch, source, e, generator=gen).to(dtype)
    # value = the identity: the output is the (dropped) attention weights.
    v = torch.eye(source).expand(*kv_batch, source, source).to(dtype).contiguous()
    if mask_kind == "bool":
        mask = torch.rand(length, source, generator=gen) < 0.7
        mask[1] = False  # a fully masked row: torch gives 0 there
    elif mask_kind == "float":
        mask = torch.randn(length, source, generator=gen).to(dtype)
        mask[0, ::2] = -math.inf
    else:
        mask = None
    return q, k, v, mask


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool", "float"])
def test_weights_mask_bit_exact_and_output_within_tolerance(p, dtype, shape, mask_kind):
    gen = torch.Generator().manual_seed(zlib.crc32(f"{shape} {mask_kind}".encode()))
    q, k, v, mask = inputs(shape, dtype, mask_kind, gen)
    kw = {"enable_gqa": shape == "gqa", "scale": 0.3 if mask_kind == "float" else None}
    theirs, ours, their_state, our_state = both(7, q, k, v, mask, p, mask_kind == "causal", **kw)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert torch.equal(ours == 0, theirs == 0)  # the mask, and fully masked rows
    if 0 < p < 1:
        assert (theirs == 0).any()  # the comparison is not vacuous
    torch.testing.assert_close(ours, theirs, atol=TOL[dtype], rtol=TOL[dtype])
    assert our_state == their_state


@pytest.mark.parametrize("p", PS)
def test_output_of_random_values_and_broadcast_batch(p):
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(4, 2, 5, 8, generator=gen)
    k = torch.randn(1, 2, 9, 8, generator=gen)
    v = torch.randn(1, 2, 9, 3, generator=gen)
    mask = torch.randn(2, 1, 9, generator=gen)
    theirs, ours, their_state, our_state = both(1, q, k, v, mask, p, scale=-0.7)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert our_state == their_state


def test_dropout_changes_the_generator_as_torch_even_after_several_calls():
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 2, 6, 4, generator=gen) for _ in range(3))
    torch.manual_seed(11)
    theirs = [TF.scaled_dot_product_attention(q, k, v, dropout_p=0.3) for _ in range(3)]
    flashdrop.manual_seed(11)
    with flashdrop.rng_mode("torch"):
        ours = [
            F.scaled_dot_product_attention(*map(mx_, (q, k, v)), dropout_p=0.3) for _ in range(3)
        ]
    for t, o in zip(theirs, ours, strict=True):
        torch.testing.assert_close(compat.to_torch(o), t, atol=1e-5, rtol=1e-5)


def test_signature_is_torchs():
    first = TF.scaled_dot_product_attention.__doc__.strip().splitlines()[:2]
    theirs = re.sub(r"\s+", " ", " ".join(first)).split(" -> ")[0]
    names = [
        f"{n}={p.default}" if p.default is not inspect.Parameter.empty else n
        for n, p in inspect.signature(F.scaled_dot_product_attention).parameters.items()
    ]
    assert theirs == f"scaled_dot_product_attention({', '.join(names)})"
    # scale and enable_gqa are keyword only in both
    args = (torch.ones(2, 2),) * 3 + (None, 0.0, False, None)
    assert_same_outcome(
        outcome(TF.scaled_dot_product_attention, *args),
        outcome(
            F.scaled_dot_product_attention, *(mx_(a) if torch.is_tensor(a) else a for a in args)
        ),
    )


FOUR = ((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6))  # (N, H, L, E), (N, H, S, E), (N, H, S, Ev)
THREE = ((2, 4, 8), (2, 5, 8), (2, 5, 6))


def call(shapes=FOUR, mask=None, dtype=torch.float32, mask_dtype=torch.bool, **kwargs):
    """(args, kwargs) of a call: random inputs of ``shapes``, a mask of ones of shape ``mask``."""
    args = tuple(torch.randn(*shape).to(dtype) for shape in shapes)
    if mask is not None:
        args += (torch.ones(mask, dtype=mask_dtype),)
    return args, kwargs


# Calls torch and flashdrop must answer alike (both succeed, or the same error).
SAME = {
    "mask int64": call(mask=(4, 5), mask_dtype=torch.int64),
    "mask float64": call(mask=(4, 5), mask_dtype=torch.float64, dropout_p=0.1),
    "mask f16 for bf16": call(THREE, (4, 5), torch.bfloat16, torch.float16),
    "mask f32 for f16": call(THREE, (4, 5), torch.float16, torch.float32, dropout_p=0.2),
    "mask shape": call(mask=(4, 6), dropout_p=0.1),
    "mask enlarges": call(mask=(7, 2, 3, 4, 5)),
    "mask broadcast": call(mask=(3, 1, 5), dropout_p=0.5),
    "causal and mask": call(mask=(4, 5), is_causal=True),
    "dropout_p > 1": call(dropout_p=1.5),
    "dropout_p 1": call(dropout_p=1.0),
    "dropout_p str": call(THREE, dropout_p="0.1"),
    "dropout_p Fraction": call(THREE, dropout_p=fractions.Fraction(1, 10)),
    "dropout_p np.float32": call(THREE, dropout_p=np.float32(0.1)),
    "dropout_p int": call(THREE, dropout_p=0),
    "dropout_p 0-d tensor": call(THREE, dropout_p=torch.tensor(0.1)),
    "dropout_p 1-element tensor": call(THREE, dropout_p=torch.tensor([0.1])),
    "dropout_p 0-d numpy array": call(THREE, dropout_p=np.array(0.1)),
    "is_causal int": call(THREE, is_causal=1),
    "enable_gqa None": call(THREE, enable_gqa=None),
    "scale str": call(THREE, scale="1"),
    "scale int": call(THREE, scale=2),
    "dtypes differ": (call(THREE)[0][:1] + call(THREE[1:], dtype=torch.float64)[0], {}),
    "1-D": call(((8,), (8,), (8,))),
    "gqa indivisible": call(((2, 4, 4, 8), *FOUR[1:]), enable_gqa=True, dropout_p=0.1),
    "heads without gqa": call(((2, 6, 4, 8), *FOUR[1:]), dropout_p=0.1),
    "gqa 2-D": call(((4, 8), (5, 8), (5, 6)), enable_gqa=True),
    "gqa k and v heads": call(((2, 6, 4, 8), (2, 3, 5, 8), (2, 2, 5, 6)), enable_gqa=True),
    "batch mismatch": call((FOUR[0], (3, 3, 5, 8), (3, 3, 5, 6)), dropout_p=0.1),
    "value batch mismatch": call((*FOUR[:2], (1, 2, 5, 6)), dropout_p=0.1),
    "ranks differ": call((FOUR[0], (3, 5, 8), FOUR[2]), dropout_p=0.1),
    "p > 1 then S mismatch": call((*FOUR[:2], (2, 3, 4, 6)), dropout_p=1.5),
    "empty L": call(((2, 0, 8), *THREE[1:]), dropout_p=0.5),
    "empty S": call(((2, 4, 8), (2, 0, 8), (2, 0, 6)), dropout_p=0.5),
    "complex": call(THREE, dtype=torch.complex64),
    # Without dropout, torch's choice of its flash kernel (4-D inputs of one batch size and head
    # count, S > 0, a non-empty output) reads attn_mask.size(-2): a 0-d or 1-D mask fails there.
    "mask 1-D": call(mask=(5,)),
    "mask 1-D float": call(mask=(5,), mask_dtype=torch.float32),
    "mask 0-d": call(mask=()),
    "mask 1-D of one": call(mask=(1,)),
    "mask 1-D causal": call(mask=(5,), is_causal=True),
    "mask 0-d E mismatch": call((FOUR[0], (2, 3, 5, 7), FOUR[2]), ()),
    "mask 1-D S mismatch": call((*FOUR[:2], (2, 3, 6, 6)), (5,)),
    "mask 1-D E 0": call(((2, 3, 4, 0), (2, 3, 5, 0), FOUR[2]), (5,)),
    "mask 1-D gqa": call(((2, 6, 4, 8), *FOUR[1:]), (5,), enable_gqa=True),
    "mask 1-D heads of one gqa": call(
        ((2, 6, 4, 8), (2, 1, 5, 8), (2, 1, 5, 6)), (5,), enable_gqa=True
    ),
    "mask 1-D heads of one": call(((2, 6, 4, 8), (2, 1, 5, 8), (2, 1, 5, 6)), (5,)),
    "mask 1-D gqa k and v heads": call(
        ((2, 6, 4, 8), (2, 3, 5, 8), (2, 2, 5, 6)), (5,), enable_gqa=True
    ),
    "mask 1-D dropout": call(mask=(5,), dropout_p=0.1),
    "mask 0-d dropout": call(mask=(), dropout_p=0.1),
    "mask 1-D 3-D": call(THREE, (5,)),
    "mask 1-D 5-D": call(((2, 2, 3, 4, 8), (2, 2, 3, 5, 8), (2, 2, 3, 5, 6)), (5,)),
    "mask 1-D broadcast batch": call((FOUR[0], (1, 3, 5, 8), (1, 3, 5, 6)), (5,)),
    "mask 1-D value batch": call((*FOUR[:2], (1, 3, 5, 6)), (5,)),
    "mask 1-D empty L": call(((2, 3, 0, 8), *FOUR[1:]), (5,)),
    "mask 1-D empty S": call(((2, 3, 4, 8), (2, 3, 0, 8), (2, 3, 0, 6)), (0,)),
    "mask 1-D empty batch": call(((0, 3, 4, 8), (0, 3, 5, 8), (0, 3, 5, 6)), (5,)),
    "mask 1-D empty Ev": call((*FOUR[:2], (2, 3, 5, 0)), (5,)),
    "mask 1-D int64 inputs": call(mask=(5,), dtype=torch.int64, mask_dtype=torch.float32),
    "E 0": call(((2, 3, 4, 0), (2, 3, 5, 0), FOUR[2])),
    "query heads of one": call(((2, 1, 4, 8), *FOUR[1:])),
}


@pytest.mark.parametrize("case", list(SAME))
def test_errors_and_results_as_torchs(case):
    args, kwargs = SAME[case]
    theirs_ = outcome(lambda: TF.scaled_dot_product_attention(*args, **kwargs))
    with flashdrop.rng_mode("torch"):
        ours_ = outcome(
            lambda: mx.eval(F.scaled_dot_product_attention(*(mx_(a) for a in args), **kwargs))
        )
    assert_same_outcome(theirs_, ours_)


# torch's type, a message of ours: torch's texts there are internal matmul ones.
OURS = {
    "E mismatch": (
        call((FOUR[0], (2, 3, 5, 7), FOUR[2]))[0],
        "one embedding size E; got 8 and 7 (query (2, 3, 4, 8), key (2, 3, 5, 7))",
    ),
    "S mismatch": (
        call((*FOUR[:2], (2, 3, 6, 6)))[0],
        "one sequence length S; got 5 and 6 (key (2, 3, 5, 8), value (2, 3, 6, 6))",
    ),
    "int64": (call(dtype=torch.int64)[0], "floating-point"),
    "bool": (call(dtype=torch.bool)[0], "floating-point"),
}


@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("case", list(OURS))
def test_shape_and_dtype_errors_have_torchs_type_and_draw_as_torch(case, p):
    args, words = OURS[case]
    torch.manual_seed(2)
    theirs_ = outcome(lambda: TF.scaled_dot_product_attention(*args, dropout_p=p))
    their_state = torch.get_rng_state().numpy().tobytes()
    flashdrop.manual_seed(2)
    with flashdrop.rng_mode("torch"):
        ours_ = outcome(lambda: F.scaled_dot_product_attention(*map(mx_, args), dropout_p=p))
        our_state = state_bytes()
    assert theirs_[0][0] is ours_[0][0] is RuntimeError
    assert words in ours_[0][1]
    assert our_state == their_state  # torch draws the mask before the failing product


@pytest.mark.parametrize("p", [-0.1, -1e-300, math.nan])
def test_negative_or_nan_dropout_p_is_refused_where_torch_ignores_it(p):
    q = torch.randn(2, 4, 8)
    TF.scaled_dot_product_attention(q, q, q, dropout_p=p)  # torch: no error, no dropout
    with pytest.raises(ValueError, match="dropout_p has to be between 0 and 1"):
        F.scaled_dot_product_attention(mx_(q), mx_(q), mx_(q), dropout_p=p)


def test_not_an_mlx_array_says_how_to_convert():
    q = torch.randn(2, 4, 8)
    with pytest.raises(TypeError, match=r"compat.to_mlx"):
        F.scaled_dot_product_attention(q, mx_(q), mx_(q))
    with pytest.raises(TypeError, match=r"attn_mask.*mlx.core.array"):
        F.scaled_dot_product_attention(mx_(q), mx_(q), mx_(q), attn_mask=np.ones((4, 4), bool))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("kind", ["causal", "bool", "gqa"])
def test_gradients_match_torch_autograd(dtype, p, kind):
    gen = torch.Generator().manual_seed(9)
    heads_kv = 2 if kind == "gqa" else 4
    q = torch.randn(2, 4, 5, 8, generator=gen, dtype=dtype, requires_grad=True)
    k = torch.randn(2, heads_kv, 5, 8, generator=gen, dtype=dtype, requires_grad=True)
    v = torch.randn(2, heads_kv, 5, 3, generator=gen, dtype=dtype, requires_grad=True)
    mask = torch.rand(5, 5, generator=gen) < 0.6 if kind == "bool" else None
    if mask is not None:
        mask[2] = False
    kw = {"is_causal": kind == "causal", "enable_gqa": kind == "gqa", "dropout_p": p}
    w = torch.randn(2, 4, 5, 3, generator=gen, dtype=dtype)
    torch.manual_seed(4)
    (TF.scaled_dot_product_attention(q, k, v, mask, **kw) * w).sum().backward()

    def loss(q_, k_, v_):
        out = F.scaled_dot_product_attention(q_, k_, v_, mx_(mask), **kw)
        return (out * mx_(w)).sum()

    flashdrop.manual_seed(4)
    with flashdrop.rng_mode("torch"):
        grads = mx.grad(loss, argnums=(0, 1, 2))(mx_(q.detach()), mx_(k.detach()), mx_(v.detach()))
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    for ours, t in zip(grads, (q, k, v), strict=True):
        torch.testing.assert_close(compat.to_torch(ours), t.grad, atol=tol, rtol=tol)


def test_compiled_mlx_mode_draws_afresh_and_keeps_the_rate():
    q = mx.random.normal((4, 4, 32, 16), key=mx.random.key(0))
    step = flashdrop.compile(
        lambda q: F.scaled_dot_product_attention(
            q, q, mx.broadcast_to(mx.eye(32), (4, 4, 32, 32)), dropout_p=0.5
        )
    )
    a, b = step(q), step(q)
    dropped = [(np.array(x) == 0).mean() for x in (a, b)]
    assert not mx.array_equal(a, b).item()
    n = a.size
    for rate in dropped:  # each weight dropped with probability 0.5
        assert abs(rate - 0.5) <= hoeffding_halfwidth(n)


def test_torch_mode_inside_compile_is_refused():
    q = mx.ones((2, 4, 4))
    step = flashdrop.compile(lambda q: F.scaled_dot_product_attention(q, q, q, dropout_p=0.5))
    with flashdrop.rng_mode("torch"), pytest.raises(RuntimeError, match="cannot be compiled"):
        step(q)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mlx_mode_drops_as_torch_does_statistically(p):
    """Weights dropped at rate p on both sides, and the kept ones are torch's own values.

    With ``value`` the identity, each output is a weight, dropped or scaled by 1/(1-p); bounds
    are Hoeffding's at 1e-9 per assertion."""
    gen = torch.Generator().manual_seed(13)
    q = torch.randn(50, 4, 20, 8, generator=gen)
    k = torch.randn(50, 4, 20, 8, generator=gen)
    v = torch.eye(20).expand(50, 4, 20, 20).contiguous()
    theirs = TF.scaled_dot_product_attention(q, k, v, dropout_p=p).numpy()
    ours = np.array(F.scaled_dot_product_attention(mx_(q), mx_(k), mx_(v), dropout_p=p))
    reference = TF.scaled_dot_product_attention(q, k, v).numpy() / (1 - p)
    n = ours.size
    our_rate, their_rate = (ours == 0).mean(), (theirs == 0).mean()
    assert abs(our_rate - p) <= hoeffding_halfwidth(n)
    assert abs(our_rate - their_rate) <= two_sample_halfwidth(n, n)
    kept = ours != 0
    np.testing.assert_allclose(ours[kept], reference[kept], rtol=1e-5, atol=1e-6)


def test_messages_name_the_callers_shapes():
    """torch's texts, then ours: the shapes the caller passed (not the key transposed, the
    weights, or heads expanded for GQA)."""
    q, k, v = torch.randn(2, 6, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 4, 5, 6)
    theirs_ = outcome(lambda: TF.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    ours_ = outcome(lambda: F.scaled_dot_product_attention(*map(mx_, (q, k, v)), enable_gqa=True))
    assert_same_outcome(theirs_, ours_)
    assert ours_[0][1] == f"{theirs_[0][1]}; the query has 6 heads, the key 3, the value 4"

    q, k, v = torch.randn(2, 6, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(3, 3, 5, 6)
    theirs_ = outcome(lambda: TF.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    ours_ = outcome(lambda: F.scaled_dot_product_attention(*map(mx_, (q, k, v)), enable_gqa=True))
    assert_same_outcome(theirs_, ours_)
    assert ours_[0][1].endswith(
        "; the batch axes (2, 6) of query (2, 6, 4, 8) and key (2, 3, 5, 8) and those of value "
        "(3, 3, 5, 6) do not broadcast"
    )


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_empty_embedding_averages_value_and_draws_as_torch(p):
    """E == 0: torch's default scale is 1 / sqrt(0) = inf, its scores 0 (an empty sum), its
    weights uniform: the output is the mean of ``value`` (dropped, with dropout)."""
    gen = torch.Generator().manual_seed(6)
    q, k = torch.randn(2, 3, 4, 0), torch.randn(2, 3, 5, 0)
    v = torch.randn(2, 3, 5, 6, generator=gen)
    theirs, ours, their_state, our_state = both(3, q, k, v, p=p)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
    assert our_state == their_state


def padding_masks(dtype, fill):
    """(name, q, k, v, mask) of padded batches, the mask ``fill`` where masked: a key padding
    mask (N, 1, 1, S) with the second sample all padding; left padding and causal (N, 1, L, L),
    the rows of the padding queries fully masked."""
    gen = torch.Generator().manual_seed(21)
    n, heads, length = 2, 3, 6
    q, k, v = (torch.randn(n, heads, length, e, generator=gen).to(dtype) for e in (8, 8, 4))
    keep = torch.ones(n, 1, 1, length, dtype=torch.bool)
    keep[0, ..., 4:] = False
    keep[1] = False
    key_padding = torch.zeros(keep.shape, dtype=dtype).masked_fill(~keep, fill)
    real = torch.arange(length) >= torch.tensor([[2], [0]])  # sample 0: two pad tokens first
    allowed = torch.ones(length, length, dtype=torch.bool).tril() & real[:, None, None, :]
    left = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, fill)
    return [("key padding", q, k, v, key_padding), ("left padding, causal", q, k, v, left)]


@pytest.mark.parametrize("case", [0, 1])
def test_gradients_through_fully_masked_float_rows_are_torchs(case):
    """Without dropout, a -inf float mask with fully masked rows (padded samples): torch's
    weights there are 0 and its gradients finite (0 for those rows and for the mask there)."""
    _, q, k, v, mask = padding_masks(torch.float32, -math.inf)[case]
    w = torch.randn(2, 3, 6, 4, generator=torch.Generator().manual_seed(1))
    leaves = [a.clone().requires_grad_() for a in (q, k, v, mask)]
    (TF.scaled_dot_product_attention(*leaves) * w).sum().backward()

    def loss(*arrays):
        return (F.scaled_dot_product_attention(*arrays) * mx_(w)).sum()

    grads = mx.grad(loss, argnums=(0, 1, 2, 3))(*map(mx_, (q, k, v, mask)))
    for ours, leaf in zip(grads, leaves, strict=True):
        assert bool(mx.all(mx.isfinite(ours)).item())
        torch.testing.assert_close(compat.to_torch(ours), leaf.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("fill", ["min", "-inf"])
@pytest.mark.parametrize("case", [0, 1])
def test_half_masks_are_added_in_float32_as_torch(dtype, fill, case):
    """torch adds a float16 mask to float32 scores: a row all finfo(float16).min is the
    unmasked softmax there (in float16 the sum would round to finfo.min: uniform weights)."""
    value = torch.finfo(dtype).min if fill == "min" else -math.inf
    _, q, k, v, mask = padding_masks(dtype, value)[case]
    theirs, ours, _, _ = both(0, q, k, v, mask)
    torch.testing.assert_close(ours, theirs, atol=TOL[dtype], rtol=TOL[dtype])


@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool"])
def test_float16_scores_beyond_its_range_are_torchs(mask_kind):
    """Scores above float16's 65504 (scale=1.0, T5-style; large activations): torch computes
    them in float32, with no overflow to inf (NaN weights)."""
    gen = torch.Generator().manual_seed(2)
    q = (torch.randn(1, 2, 4, 64, generator=gen) * 40).half()
    v = torch.randn(1, 2, 4, 8, generator=gen).half()
    mask = torch.tensor([[True, True, False, True]]) if mask_kind == "bool" else None
    assert (q.float() @ q.float().mT).abs().max() > 65504
    theirs, ours, _, _ = both(0, q, q, v, mask, causal=mask_kind == "causal", scale=1.0)
    assert not ours.isnan().any()
    torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_float64_is_float64_accurate(p):
    """float64 attention and its gradients within 1e-14 of torch's (scores of magnitude up to
    about 30): float64 rounding, not float32's ~1e-8 (MLX's float64 exp on the CPU)."""
    gen = torch.Generator().manual_seed(8)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=gen, dtype=torch.float64) * 2 for _ in range(3))
    mask = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 3, 5, 8, generator=gen, dtype=torch.float64)
    leaves = [a.clone().requires_grad_() for a in (q, k, v, mask)]
    torch.manual_seed(1)
    theirs = TF.scaled_dot_product_attention(*leaves, dropout_p=p)
    (theirs * w).sum().backward()

    def loss(*arrays):
        return (F.scaled_dot_product_attention(*arrays, dropout_p=p) * mx_(w)).sum()

    flashdrop.manual_seed(1)
    with flashdrop.rng_mode("torch"):
        ours = F.scaled_dot_product_attention(*map(mx_, (q, k, v, mask)), dropout_p=p)
        flashdrop.manual_seed(1)
        grads = mx.grad(loss, argnums=(0, 1, 2, 3))(*map(mx_, (q, k, v, mask)))
    assert ours.dtype == mx.float64
    torch.testing.assert_close(compat.to_torch(ours), theirs.detach(), atol=1e-14, rtol=1e-14)
    for g, leaf in zip(grads, leaves, strict=True):
        torch.testing.assert_close(compat.to_torch(g), leaf.grad, atol=1e-13, rtol=1e-13)
