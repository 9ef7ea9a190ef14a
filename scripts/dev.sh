#!/usr/bin/env bash
# One entry point for a fresh checkout: creates .venv on first use (flashdrop, mlx, torch 2.13.0,
# pytest), then runs what you ask for.
#   bash scripts/dev.sh demo [args]    the main job
#   bash scripts/dev.sh test [args]    the test suite (pytest args pass through)
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
    demo) exec .venv/bin/python -m flashdrop.demo "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: bash scripts/dev.sh demo|test [args...]" >&2; exit 2 ;;
esac
