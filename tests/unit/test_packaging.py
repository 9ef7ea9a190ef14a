"""What ``pip install .`` gives: one top-level package, ``flashdrop``, with ``flashdrop.compat``
inside it and ``py.typed``, built without a warning; and it imports from the installed copy.

The wheel is built with the build backend of this environment (setuptools), with every warning
an error, and installed into a folder of its own with ``pip install --no-deps --target``; a fresh
interpreter then imports flashdrop from that folder only, away from the repository.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import flashdrop

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin"}
    if env_path is not None:
        env["PYTHONPATH"] = str(env_path)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the source (links kept as links), so that the build's own files
    # (build/, flashdrop.egg-info/) never land in the repository.
    source = tmp_path_factory.mktemp("source") / "flashdrop"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "site", ".*cache")
    shutil.copytree(ROOT, source, symlinks=True, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    code = (
        "import sys\n"
        "from setuptools import build_meta\n"
        "print(build_meta.build_wheel(sys.argv[1]))\n"
    )
    # -W error: setuptools' deprecation warnings (the license table, for one) fail the build.
    done = run("-W", "error", "-c", code, str(out), cwd=source)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "warning" not in done.stderr.lower(), done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_holds_one_top_level_package_with_compat_and_py_typed(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"flashdrop"}
    for module in ["__init__", "tensors", "random_state", "porting", "lazy_torch"]:
        assert f"flashdrop/compat/{module}.py" in names
    assert "flashdrop/py.typed" in names
    metadata = zipfile.ZipFile(wheel).read(f"flashdrop-{flashdrop.__version__}.dist-info/METADATA")
    text = metadata.decode()
    assert "License-Expression: MIT" in text
    assert f"Version: {flashdrop.__version__}" in text


def test_the_installed_wheel_imports_from_where_it_was_installed(wheel, tmp_path):
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    done = subprocess.run(
        [*pip, "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    code = (
        "import sys\n"
        "import flashdrop\n"
        "from flashdrop import compat\n"
        "from flashdrop.compat import tensors, random_state, porting\n"
        "print(flashdrop.__file__)\n"
        "print(compat.__file__)\n"
        "print(callable(compat.to_mlx), 'compat' in sys.modules)\n"
    )
    done = run("-c", code, cwd=tmp_path, env_path=target)
    assert done.returncode == 0, done.stderr[-3000:]
    package, compat_init, checks = done.stdout.splitlines()
    assert package == str(target / "flashdrop" / "__init__.py")
    assert compat_init == str(target / "flashdrop" / "compat" / "__init__.py")
    assert checks == "True False"  # no top-level module named compat was imported
