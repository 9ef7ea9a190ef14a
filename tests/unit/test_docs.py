"""The documentation site builds with ``mkdocs build --strict``: every page in the nav, every
link between pages and every API reference entry resolves, with no warning.

The code blocks of README.md and docs/ run as tests of their own (conftest.py, through Sybil).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "WARNING" not in done.stderr, done.stderr[-5000:]
    for page in ["index", "getting-started", "porting", "verifying", "differences", "performance"]:
        assert (tmp_path / ("" if page == "index" else page) / "index.html").exists()
    compat = (tmp_path / "reference" / "compat" / "index.html").read_text()
    assert 'id="flashdrop.compat.tensors.to_mlx"' in compat  # the API reference was generated
