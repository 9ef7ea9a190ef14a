#!/usr/bin/env bash
# One entry point for a fresh checkout: creates .venv on first use (flashdrop, mlx, torch 2.13.0,
# pytest), then runs what you ask for.
#   bash scripts/dev.sh parity [args]  the main job: the parity report
#   bash scripts/dev.sh test [args]    lint (ruff), then the test suite (pytest args pass through)
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
    test)
        .venv/bin/ruff check --quiet .
        .venv/bin/ruff format --check --quiet flashdrop compat tests scripts examples
        exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: bash scripts/dev.sh parity|test [args...]" >&2; exit 2 ;;
esac
