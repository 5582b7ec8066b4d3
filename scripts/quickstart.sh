#!/usr/bin/env bash
# README command 1: install everything (idempotent), then run the main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python rayjobs/embedded.py --config rayjobs/configs/embedded.yaml "$@"
