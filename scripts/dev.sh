#!/usr/bin/env bash
# One entry point for a fresh checkout: creates .venv on first use (flashdrop, mlx, torch 2.13.0,
# pytest), then runs what you ask for.
#   bash scripts/dev.sh parity [args]  the main job: the parity report, its verdict first and one
#                                      line per op (--all: every row, --quick: a small grid)
#   bash scripts/dev.sh test [args]    lint (ruff), then the test suite (pytest args pass through);
#                                      the suite builds the docs site (--strict) and runs every
#                                      Python block of README.md and docs/ (Sybil)
#   bash scripts/dev.sh docs [args]    build the documentation site into site/ (mkdocs build
#                                      --strict; `docs serve` serves it at http://127.0.0.1:8000)
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[test]"
    touch "$stamp"
fi

job=${1:-}
shift || true
case "$job" in
    parity) exec .venv/bin/python -m flashdrop.parity "$@" ;;
    docs)
        export NO_MKDOCS_2_WARNING=1  # Material's notice about MkDocs 2, printed on every build
        if [ "${1:-}" = serve ]; then
            shift
            exec .venv/bin/mkdocs serve "$@"
        fi
        .venv/bin/mkdocs build --strict "$@"
        echo "docs: open $(pwd)/site/index.html" ;;
    test)
        .venv/bin/ruff check --quiet .
        .venv/bin/ruff format --check --quiet flashdrop compat tests scripts examples conftest.py
        exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: bash scripts/dev.sh parity|test|docs [args...]" >&2; exit 2 ;;
esac
