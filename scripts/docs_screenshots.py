"""Screenshots of every page of the documentation site, in headless Chromium, to look at.

    .venv/bin/python scripts/docs_screenshots.py [--site site] [--out screenshots] [--only NAME]

Builds the site (``mkdocs build --strict``) into ``--site``, then opens each page's
``index.html`` from disk in a window ``--width`` by ``--height`` pixels (the page's first
``--height`` pixels) and writes them as tiles ``OUT/<page>-1.png``, ``-2.png``, ... of
``--tile`` pixels each, small enough to read. The site needs no network: the maths is typeset
by the KaTeX the docs ship (docs/assets/katex/). Not part of the test suite: it needs Chromium
(``apt-get install -y chromium``), which CI does not have; tests/unit/test_docs.py checks the
built HTML itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=5000",  # lets the page's scripts (search, KaTeX) run first
)


def build(site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def screenshot(browser: str, page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=8000)
    parser.add_argument("--tile", type=int, default=1500)
    parser.add_argument("--only", help="only the pages whose path contains this")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("docs_screenshots: needs Chromium (apt-get install -y chromium)", file=sys.stderr)
        return 2
    build(args.site)
    args.out.mkdir(parents=True, exist_ok=True)
    pages = sorted(args.site.rglob("index.html"))
    for page in pages:
        name = str(page.parent.relative_to(args.site)).replace(os.sep, "-")
        name = "home" if name == "." else name
        if args.only and args.only not in name:
            continue
        png = args.out / f"{name}.png"
        screenshot(browser, page, png, args.width, args.height)
        for tile in cut(png, args.tile):
            print(tile)
    return 0


def cut(png: Path, height: int) -> list[Path]:
    """``png`` as tiles ``height`` pixels tall, without the blank ones below the page's end."""
    from PIL import Image, ImageChops  # matplotlib's dependency, in the test environment

    tiles = []
    with Image.open(png) as image:
        image = image.convert("RGB")
        blank = Image.new("RGB", (image.width, height), image.getpixel((0, image.height - 1)))
        for k, top in enumerate(range(0, image.height, height), start=1):
            tile = image.crop((0, top, image.width, min(top + height, image.height)))
            if ImageChops.difference(tile, blank.crop((0, 0, *tile.size))).getbbox() is None:
                break  # below the page's end
            tiles.append(png.with_name(f"{png.stem}-{k}.png"))
            tile.save(tiles[-1])
    png.unlink()
    return tiles


if __name__ == "__main__":
    raise SystemExit(main())
