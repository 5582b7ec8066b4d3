#!/usr/bin/env bash
# README command 2: install everything if needed (idempotent), then run the whole test suite (slow tests
# included) on TEST_WORKERS pytest-xdist workers (default 2: most of the suite's time is Ray, vLLM and
# DeepSpeed start-up, which overlaps well; a module, or a package sharing fixtures, stays on one worker:
# tests/conftest.py), after the import contracts (`lint-imports`: the layering of pyproject.toml
# [tool.importlinter]). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" "$@"
