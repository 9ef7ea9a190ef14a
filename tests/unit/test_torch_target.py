"""The torch target: which torch build torch mode reproduces, and the MKL draw it selects."""

import importlib.metadata
import threading
import warnings

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn
from flashdrop._random import target as _torch_target
from flashdrop._random.torch_cpu import mkl as _mkl_bernoulli


@pytest.fixture(autouse=True)
def automatic_target():
    yield
    flashdrop.set_torch_target()


def first_word(seed: int) -> int:
    """The first 32-bit word of torch's mt19937 after ``manual_seed(seed)``."""
    bits = np.random.MT19937()
    bits._legacy_seeding(seed)
    return int(bits.random_raw(1)[0])


def test_automatic_target_is_the_installed_torch_on_this_cpu():
    target = flashdrop.get_torch_target()
    assert target.version == importlib.metadata.version("torch").split("+")[0]
    assert target.cpu == _torch_target.this_cpu() in _torch_target.CPUS


def test_set_and_reset():
    flashdrop.set_torch_target("2.4.1", cpu="amd")
    assert flashdrop.get_torch_target() == flashdrop.TorchTarget("2.4.1", "amd")
    assert flashdrop.get_torch_target().mkl_bernoulli
    flashdrop.set_torch_target(cpu="arm")  # unset parts go back to automatic
    target = flashdrop.get_torch_target()
    assert (
        target.cpu == "arm"
        and target.version
        == flashdrop.TorchTarget(
            _torch_target.nearest_verified(_torch_target.installed_torch())[0], "arm"
        ).version
    )
    flashdrop.set_torch_target()
    assert flashdrop.get_torch_target().cpu == _torch_target.this_cpu()


@pytest.mark.parametrize(
    ("version", "cpu", "mkl"),
    [
        ("2.1", "intel", True),
        ("2.6.0", "amd", True),
        ("2.6", "arm", False),  # arm64 builds have no MKL
        ("2.7.0", "intel", False),
        ("2.15", "amd", False),
    ],
)
def test_which_builds_draw_from_mkl(version, cpu, mkl):
    assert flashdrop.TorchTarget(version, cpu).mkl_bernoulli is mkl


def test_context_manager_restores_and_stays_in_its_thread():
    flashdrop.set_torch_target("2.13")
    seen = []
    with flashdrop.torch_target("2.2", cpu="intel") as target:
        assert target == flashdrop.get_torch_target() == flashdrop.TorchTarget("2.2", "intel")
        thread = threading.Thread(target=lambda: seen.append(flashdrop.get_torch_target()))
        thread.start()
        thread.join()
    assert seen[0].version == "2.13"
    assert flashdrop.get_torch_target().version == "2.13"


@pytest.mark.parametrize("version", ["2.0", "2.0.1", "1.13", "2.16", "3.0"])
def test_unverified_versions_raise_naming_the_verified(version):
    with pytest.raises(ValueError, match=r"not a verified torch target.*2\.1 to 2\.15.*2\.4, "):
        flashdrop.set_torch_target(version)
    with pytest.raises(ValueError, match="not a verified"), flashdrop.torch_target(version):
        pass


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"such as '2\.4' or '2\.4\.1', got 'latest'"):
        flashdrop.set_torch_target("latest")
    with pytest.raises(TypeError, match="must be a str"):
        flashdrop.set_torch_target(2.4)
    with pytest.raises(ValueError, match="cpu must be one of 'intel', 'amd', 'arm', got 'x86'"):
        flashdrop.set_torch_target(cpu="x86")


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (None, ("2.15", False)),  # no torch: the newest verified
        ("2.13.0+cpu", ("2.13.0", False)),
        ("2.4.1", ("2.4.1", False)),
        ("2.0.1", ("2.1", True)),
        ("2.16.0.dev20270101", ("2.15", True)),
    ],
)
def test_nearest_verified(installed, expected):
    assert _torch_target.nearest_verified(installed) == expected


def test_an_unverified_installed_torch_warns_once(monkeypatch):
    monkeypatch.setattr(_torch_target, "installed_torch", lambda: "2.0.1")
    _torch_target._automatic_version.cache_clear()
    try:
        with pytest.warns(UserWarning, match="installed torch 2.0.1 was not verified.*torch 2.1"):
            assert flashdrop.get_torch_target().version == "2.1"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert flashdrop.get_torch_target().version == "2.1"
    finally:
        _torch_target._automatic_version.cache_clear()


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 7])
def test_mkl_target_draws_mkl_mask_from_one_word(seed):
    """torch 2.1-2.6 on x86-64: the mask is MKL's MCG31 stream seeded with the generator's next
    word, and the generator moves on by that one word (a float32 rand(1) takes one too)."""
    x = mx.ones((3, 1000))
    with flashdrop.rng_mode("torch"):
        with flashdrop.torch_target("2.6", cpu="intel"):
            flashdrop.manual_seed(seed)
            out = F.dropout(x, 0.3)
            after_mkl = np.array(flashdrop.get_rng_state())
        with flashdrop.torch_target("2.13", cpu="intel"):
            flashdrop.manual_seed(seed)
            flashdrop.rand(1)
            after_one_word = np.array(flashdrop.get_rng_state())
            mt_mask = np.array(F.dropout(x, 0.3)) != 0
    keep = _mkl_bernoulli.bernoulli(first_word(seed % 2**32), 3000, 1 - 0.3).reshape(3, 1000)
    assert np.array_equal(np.array(out) != 0, keep)
    assert np.array_equal(after_mkl, after_one_word)
    assert not np.array_equal(keep, mt_mask)


def test_mkl_target_in_a_model():
    """A model's dropout layers follow the target: each draw one word, MKL's mask."""
    model = mlx.nn.Sequential(mlx.nn.Linear(8, 900), nn.Dropout(0.25), nn.Dropout(0.5))
    x = mx.ones((2, 8))
    with flashdrop.rng_mode("torch"), flashdrop.torch_target("2.3.1", cpu="amd"):
        flashdrop.manual_seed(3)
        hidden = model.layers[0](x)
        out = model(x)
    words = np.random.MT19937()
    words._legacy_seeding(3)
    first, second = (int(w) for w in words.random_raw(2))
    keep = _mkl_bernoulli.bernoulli(first, 1800, 0.75) & _mkl_bernoulli.bernoulli(second, 1800, 0.5)
    assert np.array_equal(
        np.array(out).reshape(-1) != 0, keep & (np.array(hidden).reshape(-1) != 0)
    )


def test_arm_targets_refuse_the_float32_normals_they_cannot_reproduce():
    """arm64 builds compute randn/normal of 16+ floats with the C library's logf/cosf/sinf:
    refused, with the way out; fewer elements, float64, and an x86-64 target draw."""
    with flashdrop.rng_mode("torch"), flashdrop.torch_target("2.13", cpu="arm"):
        state = np.array(flashdrop.get_rng_state())
        with pytest.raises(NotImplementedError, match=r"arm64 CPU's float32 randn.*cpu='amd'"):
            flashdrop.randn(4, 4)
        with pytest.raises(NotImplementedError, match="bfloat16 randn/normal"):
            flashdrop.normal(0.0, 1.0, (16,), dtype=mx.bfloat16)
        assert np.array_equal(np.array(flashdrop.get_rng_state()), state)  # nothing drawn
        assert flashdrop.randn(15).shape == (15,)
        assert flashdrop.randn(16, dtype=mx.float64).shape == (16,)
        with flashdrop.torch_target("2.6", cpu="arm"):  # half: the scalar path, reproduced
            assert flashdrop.randn(16, dtype=mx.float16).dtype == mx.float16
    with flashdrop.rng_mode("torch"), flashdrop.torch_target("2.13", cpu="amd"):
        assert flashdrop.randn(4, 4).shape == (4, 4)


def test_float16_dropout_on_mkl_targets():
    """torch 2.1's MKL kernel has no float16 (it raises its own error after taking its word);
    2.2 and later draw MKL's mask for float16 as for float32; arm64 builds draw mt19937's."""
    x = mx.ones((4, 8), dtype=mx.float16)
    with flashdrop.rng_mode("torch"):
        no_kernel = pytest.raises(RuntimeError, match='"bernoulli_scalar_cpu_" not implemented')
        with flashdrop.torch_target("2.1", cpu="intel"), no_kernel:
            F.dropout(x, 0.5)
        masks = []
        for version, cpu in (("2.2", "intel"), ("2.2", "arm")):
            with flashdrop.torch_target(version, cpu=cpu):
                flashdrop.manual_seed(5)
                masks.append(np.array(F.dropout(x, 0.5)) != 0)
    assert np.array_equal(masks[0].reshape(-1), _mkl_bernoulli.bernoulli(first_word(5), 32, 0.5))
    assert not np.array_equal(masks[0], masks[1])
