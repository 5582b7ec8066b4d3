#!/usr/bin/env bash
# README command 2: install everything if needed (idempotent), then run the whole test suite (slow tests
# included). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest "$@"
