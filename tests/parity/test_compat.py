"""compat: tensor conversion bit for bit both ways, clear errors, and the random-state hand-over.

Values are compared as bits (viewed as integers of the same width), so NaN payloads, -0.0,
infinities and subnormals must all survive. The expected dtypes and the bit views below are
written out independently of compat's own table.
"""

import os
import struct
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat
from flashdrop._random import get_torch_state

# torch dtype, the MLX dtype it must become, and the integers of the same width to compare bits.
DTYPES = [
    (torch.bool, mx.bool_, torch.uint8, mx.uint8),
    (torch.uint8, mx.uint8, torch.uint8, mx.uint8),
    (torch.uint16, mx.uint16, torch.int16, mx.int16),
    (torch.uint32, mx.uint32, torch.int32, mx.int32),
    (torch.uint64, mx.uint64, torch.int64, mx.int64),
    (torch.int8, mx.int8, torch.int8, mx.int8),
    (torch.int16, mx.int16, torch.int16, mx.int16),
    (torch.int32, mx.int32, torch.int32, mx.int32),
    (torch.int64, mx.int64, torch.int64, mx.int64),
    (torch.float16, mx.float16, torch.int16, mx.int16),
    (torch.bfloat16, mx.bfloat16, torch.int16, mx.int16),
    (torch.float32, mx.float32, torch.int32, mx.int32),
    (torch.float64, mx.float64, torch.int64, mx.int64),
    (torch.complex64, mx.complex64, torch.int64, mx.int64),
]
DTYPE_IDS = [str(row[0]).removeprefix("torch.") for row in DTYPES]
SHAPES = [(), (0,), (3, 0, 2), (5,), (4, 7), (2, 3, 4, 5)]

# Bit patterns (hex) planted first in every sample, per width: float specials, which for the
# integer types of that width are just more bit patterns. In float order: NaN with a payload,
# negative NaN with a payload, signalling NaN, -0.0, inf, -inf, smallest and largest subnormal,
# then extras.
SPECIAL_BITS = {
    1: "80 7F FF 00",
    2: "7FC1 FF81 7F81 8000 7F80 FF80 0001 007F"  # bfloat16
    " 7E01 FC01 7C01 8000 7C00 FC00 0001 03FF",  # float16
    4: "7FC00001 FFC12345 7F800001 80000000 7F800000 FF800000 00000001 007FFFFF 80000001 7F7FFFFF",
    8: "7FF8000000000001 FFF8DEADBEEF0001 7FF0000000000001 8000000000000000"
    " 7FF0000000000000 FFF0000000000000 0000000000000001 000FFFFFFFFFFFFF"
    # complex64 (imaginary, real): (-0.0, NaN payload), (-inf, subnormal), (inf, signalling NaN)
    " 800000007FC00001 FF80000000000001 7F8000007F800001",
}


def sample_bits(dtype: torch.dtype, shape: tuple, seed: int = 0) -> torch.Tensor:
    """A tensor of `dtype` and `shape`: the special patterns first, then random bits."""
    numel = int(np.prod(shape))
    if dtype == torch.bool:
        return torch.from_numpy(np.random.default_rng(seed).random(numel) < 0.5).reshape(shape)
    width = torch.empty((), dtype=dtype).element_size()
    ints = np.dtype(f"i{width}")
    info = np.iinfo(ints)
    raw = np.random.default_rng(seed).integers(info.min, info.max, numel, ints, endpoint=True)
    patterns = [int(word, 16) for word in SPECIAL_BITS[width].split()]
    specials = np.array(patterns, dtype=f"u{width}").view(ints)[:numel]
    raw[: len(specials)] = specials
    return torch.from_numpy(raw).view(dtype).reshape(shape)


def torch_bits(t: torch.Tensor, int_dtype: torch.dtype) -> np.ndarray:
    return t.contiguous().view(int_dtype).numpy()


def mlx_bits(a: mx.array, int_dtype: mx.Dtype) -> np.ndarray:
    return np.array(a.view(int_dtype))


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("tdtype", "mdtype", "tint", "mint"), DTYPES, ids=DTYPE_IDS)
def test_torch_to_mlx_to_torch_keeps_every_bit(tdtype, mdtype, tint, mint, shape):
    t = sample_bits(tdtype, shape)
    a = compat.to_mlx(t)
    assert a.dtype == mdtype and a.shape == tuple(shape)
    assert np.array_equal(mlx_bits(a, mint), torch_bits(t, tint))
    back = compat.to_torch(a)
    assert back.dtype == tdtype and back.shape == t.shape and back.device.type == "cpu"
    assert np.array_equal(torch_bits(back, tint), torch_bits(t, tint))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("tdtype", "mdtype", "tint", "mint"), DTYPES, ids=DTYPE_IDS)
def test_mlx_to_torch_to_mlx_keeps_every_bit(tdtype, mdtype, tint, mint, shape):
    bits = torch_bits(sample_bits(tdtype, shape, seed=1), tint)
    a = mx.array(bits, dtype=mint).view(mdtype)  # built without compat
    t = compat.to_torch(a)
    assert t.dtype == tdtype and t.shape == tuple(shape)
    assert np.array_equal(torch_bits(t, tint), bits)
    back = compat.to_mlx(t)
    assert back.dtype == mdtype and back.shape == a.shape
    assert np.array_equal(mlx_bits(back, mint), bits)


def test_float64_stays_float64_and_specials_keep_their_meaning():
    t = torch.tensor([-0.0, float("inf"), float("-inf"), 5e-324, 0.1], dtype=torch.float64)
    a = compat.to_mlx(t)
    assert a.dtype == mx.float64
    values = np.array(a)
    assert np.signbit(values[0]) and values[0] == 0
    assert values[1] == np.inf and values[2] == -np.inf
    assert values[3] == 5e-324 and values[4] == 0.1  # the smallest subnormal; 0.1 unrounded


# ---------------------------------------------------------------------------------------------
# Layouts and tensors that are not plain


def _noncontiguous(kind: str, dtype: torch.dtype) -> torch.Tensor:
    if kind == "channels_last":
        return sample_bits(dtype, (2, 3, 4, 5)).contiguous(memory_format=torch.channels_last)
    base = sample_bits(dtype, (4, 6, 5))
    if kind == "transposed":
        return base.transpose(0, 2)
    if kind == "sliced_with_step":
        return base[::2, 1::3, 1:]
    return base[:1].expand(3, 6, 5)  # "expanded": stride 0


@pytest.mark.parametrize("kind", ["transposed", "sliced_with_step", "channels_last", "expanded"])
@pytest.mark.parametrize(("tdtype", "mdtype", "tint", "mint"), DTYPES, ids=DTYPE_IDS)
def test_noncontiguous_tensors_convert_in_logical_order(tdtype, mdtype, tint, mint, kind):
    t = _noncontiguous(kind, tdtype)
    assert not t.is_contiguous()
    a = compat.to_mlx(t)
    assert a.dtype == mdtype and a.shape == tuple(t.shape)
    assert np.array_equal(mlx_bits(a, mint), torch_bits(t, tint))
    assert np.array_equal(torch_bits(compat.to_torch(a), tint), torch_bits(t, tint))


@pytest.mark.parametrize(("tdtype", "mdtype", "tint", "mint"), DTYPES, ids=DTYPE_IDS)
def test_noncontiguous_mlx_arrays_convert_in_logical_order(tdtype, mdtype, tint, mint):
    bits = torch_bits(sample_bits(tdtype, (4, 6, 5), seed=2), tint)
    base = mx.array(bits, dtype=mint).view(mdtype)
    for a, expected in [
        (mx.transpose(base, (2, 0, 1)), bits.transpose(2, 0, 1)),
        (base[::2, 1::3], bits[::2, 1::3]),
        (mx.broadcast_to(base[:1], (3, 6, 5)), np.broadcast_to(bits[:1], (3, 6, 5))),
    ]:
        t = compat.to_torch(a)
        assert t.dtype == tdtype and tuple(t.shape) == expected.shape
        assert np.array_equal(torch_bits(t, tint), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA build of torch and a GPU")
def test_tensor_on_another_device_is_brought_to_the_cpu():
    t = sample_bits(torch.bfloat16, (3, 4)).cuda()
    a = compat.to_mlx(t)
    assert np.array_equal(mlx_bits(a, mx.int16), torch_bits(t.cpu(), torch.int16))


def test_conjugate_view_is_materialised():
    z = torch.tensor([1 + 2j, -3.5 - 0.25j], dtype=torch.complex64)
    lazy = z.conj()
    assert lazy.is_conj()
    assert np.array_equal(np.array(compat.to_mlx(lazy)), np.conj(z.numpy()))


def test_requires_grad_tensor_converts_from_its_data():
    leaf = torch.randn(3, 4, requires_grad=True)
    for t in [leaf, leaf * 2, torch.nn.Parameter(torch.randn(5))]:
        assert t.requires_grad
        assert np.array_equal(np.array(compat.to_mlx(t)), t.detach().numpy())
    assert leaf.grad is None and leaf.requires_grad


def test_to_mlx_owns_its_data():
    t = torch.arange(6, dtype=torch.float32)
    a = compat.to_mlx(t)
    t.add_(100)
    assert np.array_equal(np.array(a), np.arange(6, dtype=np.float32))


def test_to_torch_gives_a_writable_tensor_that_does_not_alias_mlx():
    a = mx.arange(6, dtype=mx.float32)
    t = compat.to_torch(a)
    assert not t.requires_grad
    t.add_(100)  # would warn (an error here) on a read-only buffer
    assert np.array_equal(np.array(a), np.arange(6, dtype=np.float32))
    assert np.array_equal(t.numpy(), np.arange(6, dtype=np.float32) + 100)


def test_lazy_mlx_result_is_evaluated():
    a = mx.arange(4, dtype=mx.bfloat16) * 2 + 1
    t = compat.to_torch(a)
    assert t.dtype == torch.bfloat16
    assert t.tolist() == [1.0, 3.0, 5.0, 7.0]


# ---------------------------------------------------------------------------------------------
# Errors


def test_meta_tensor_is_refused():
    with pytest.raises(ValueError, match="meta"):
        compat.to_mlx(torch.empty(3, 4, device="meta"))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("to_sparse", ["to_sparse", "to_sparse_csr"])
def test_sparse_tensor_is_refused(to_sparse):
    s = getattr(torch.eye(3), to_sparse)()
    with pytest.raises(TypeError, match=r"dense.*layout torch\.sparse"):
        compat.to_mlx(s)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_quantized_tensor_is_refused():
    q = torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.quint8)
    with pytest.raises(TypeError, match=r"quantized.*torch\.quint8.*dequantize"):
        compat.to_mlx(q)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_nested_tensor_is_refused():
    n = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(TypeError, match="nested"):
        compat.to_mlx(n)


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize(
    "dtype",
    [torch.complex128, torch.complex32, torch.float8_e4m3fn, torch.float8_e5m2],
    ids=str,
)
def test_dtype_mlx_lacks_is_refused_by_name(dtype):
    t = torch.zeros(3, dtype=dtype)
    with pytest.raises(TypeError, match=rf"{dtype}.*accepted.*bfloat16"):
        compat.to_mlx(t)


@pytest.mark.parametrize("thing", [np.zeros(3), [1.0, 2.0], 3.0, mx.zeros(3), None], ids=repr)
def test_to_mlx_wants_a_tensor(thing):
    with pytest.raises(TypeError, match=r"expects a torch\.Tensor"):
        compat.to_mlx(thing)


@pytest.mark.parametrize("thing", [torch.zeros(3), np.zeros(3), [1.0], 3.0, None], ids=repr)
def test_to_torch_wants_an_mlx_array(thing):
    with pytest.raises(TypeError, match=r"expects an mlx\.core\.array"):
        compat.to_torch(thing)


# ---------------------------------------------------------------------------------------------
# Random state hand-over


def test_state_copied_from_torch_is_torchs_byte_for_byte():
    torch.manual_seed(2024)
    torch.rand(7)
    flashdrop.manual_seed(1)
    compat.copy_rng_from_torch()
    assert get_torch_state() == torch.get_rng_state().numpy().tobytes()


@pytest.mark.parametrize(
    ("field", "offset", "fmt", "value", "outcome"),
    [
        ("left", 8, "<i", 0, "torch refuses"),
        ("left", 8, "<i", 625, "torch refuses"),
        ("seeded", 12, "<i", 0, "torch refuses"),
        ("next", 16, "<Q", 625, "torch refuses"),
        ("seeded", 12, "<i", 256, "accepted"),
        ("next", 16, "<Q", 624, "accepted"),  # with left 1: the table used up
        ("left", 8, "<i", 624, "not torch's own"),  # with next 0: counters out of step
    ],
)
def test_corrupt_torch_states(field, offset, fmt, value, outcome):
    """flashdrop.set_rng_state refuses what torch.set_rng_state refuses, with torch's text, and
    a state torch accepts but never produces with a ValueError; what both accept draws alike."""
    torch.manual_seed(5)
    flashdrop.manual_seed(5)  # left 1, next 0: the state right after seeding
    state = bytearray(np.array(flashdrop.get_rng_state()).tobytes())
    struct.pack_into(fmt, state, offset, value)
    ours = mx.array(np.frombuffer(bytes(state), dtype=np.uint8))
    theirs = torch.frombuffer(bytearray(state[:5056]), dtype=torch.uint8)
    if outcome == "torch refuses":
        with pytest.raises(RuntimeError) as refusal:
            torch.set_rng_state(theirs)
        with pytest.raises(RuntimeError, match=f"^{refusal.value}; .*{field}={value}"):
            flashdrop.set_rng_state(ours)
        return
    torch.set_rng_state(theirs)
    if outcome == "not torch's own":
        with pytest.raises(ValueError, match=f"{field}={value}.* cannot continue it"):
            flashdrop.set_rng_state(ours)
        return
    flashdrop.set_rng_state(ours)
    assert get_torch_state() == torch.get_rng_state().numpy().tobytes()
    with flashdrop.rng_mode("torch"):
        mask = np.array(F.dropout(mx.ones((1000,)), 0.5)) != 0
    assert np.array_equal(mask, TF.dropout(torch.ones(1000), 0.5).numpy() != 0)


@pytest.mark.parametrize("shape", [(5, 3), (1000,)], ids=str)
def test_copy_rng_from_torch_then_flashdrop_draws_torchs_next_mask(shape):
    x = torch.randn(shape)
    torch.manual_seed(31)
    torch.rand(7)  # an odd number of words into the mt19937 table
    flashdrop.manual_seed(99)  # somewhere else entirely
    compat.copy_rng_from_torch()
    with flashdrop.rng_mode("torch"):
        ours = compat.to_torch(F.dropout(compat.to_mlx(x), 0.5))
    theirs = TF.dropout(x, 0.5)
    assert (theirs == 0).any() and (theirs != 0).any()
    assert torch.equal(ours.view(torch.int32), theirs.view(torch.int32))


def test_copy_rng_to_torch_lets_torch_continue_in_step():
    x = torch.randn(40, 30)
    torch.manual_seed(8)
    reference = [TF.dropout(x, 0.3) for _ in range(3)]
    reference_state = torch.get_rng_state()

    torch.manual_seed(8)
    first = TF.dropout(x, 0.3)
    compat.copy_rng_from_torch()
    with flashdrop.rng_mode("torch"):
        second = compat.to_torch(F.dropout(compat.to_mlx(x), 0.3))
    compat.copy_rng_to_torch()
    third = TF.dropout(x, 0.3)

    for got, want in zip([first, second, third], reference, strict=True):
        assert torch.equal(got.view(torch.int32), want.view(torch.int32))
    assert not torch.equal(reference[1], reference[2])  # the calls really draw new masks
    assert torch.equal(torch.get_rng_state(), reference_state)


def test_copy_rng_to_torch_after_flashdrop_seeds():
    x = torch.randn(17, 9)
    torch.manual_seed(123)
    reference = [TF.alpha_dropout(x, 0.4, True) for _ in range(2)]

    torch.manual_seed(0)  # torch is elsewhere
    flashdrop.manual_seed(123)
    with flashdrop.rng_mode("torch"):
        first = compat.to_torch(F.alpha_dropout(compat.to_mlx(x), 0.4, True))
    compat.copy_rng_to_torch()
    second = TF.alpha_dropout(x, 0.4, True)

    assert torch.equal(first.view(torch.int32), reference[0].view(torch.int32))
    assert torch.equal(second.view(torch.int32), reference[1].view(torch.int32))
    assert torch.initial_seed() == 123


def test_copy_rng_to_torch_and_later_torch_draws_leave_flashdrop_alone():
    flashdrop.manual_seed(5)
    before = get_torch_state()
    compat.copy_rng_to_torch()
    torch.rand(100)
    assert get_torch_state() == before


# ---------------------------------------------------------------------------------------------
# torch stays optional


@pytest.mark.parametrize(
    "code",
    [
        # torch unimportable: importing works, and using compat says what is missing.
        "import sys; sys.modules['torch'] = None\n"
        "import flashdrop, compat; import flashdrop.nn.functional\n"
        "try:\n    compat.copy_rng_from_torch()\n"
        "except ImportError as e:\n    assert 'torch' in str(e), e; print('ok')\n",
        # torch importable: importing flashdrop and compat still does not load it.
        "import sys; import flashdrop, compat; import flashdrop.nn.functional, flashdrop.nn\n"
        "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')\n",
    ],
    ids=["torch_blocked", "torch_available"],
)
def test_importing_flashdrop_and_compat_does_not_import_torch(code):
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_users_own_compat_module_changes_nothing_in_flashdrop(tmp_path):
    # A project with its own compat.py, first on sys.path (the script's folder and PYTHONPATH).
    (tmp_path / "compat.py").write_text("WHOSE = 'the user'\n")
    code = (
        "import torch\n"
        "import compat\n"
        "import flashdrop.nn\n"
        "from flashdrop import compat as flashdrop_compat\n"
        "from flashdrop.testing import assert_same_as_torch\n"
        "assert compat.WHOSE == 'the user'\n"
        "assert flashdrop_compat.__name__ == 'flashdrop.compat'\n"
        "x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))\n"
        "assert_same_as_torch(torch.nn.Dropout(0.5), flashdrop.nn.Dropout(0.5), x)\n"
        "print('ok')\n"
    )
    script = tmp_path / "check.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "ok\n"
