#!/usr/bin/env bash
# README command 1: install everything (idempotent), build the embedded default (corpus, codec check), then run
# the main job on it: GRPO of the embedded SpeechLM (rayjobs/configs/grpo_embedded.yaml; about 20 min on 2 cores).
# Extra arguments go to rayjobs/grpo.py, e.g. `bash scripts/quickstart.sh steps=2`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python rayjobs/embedded.py --config rayjobs/configs/embedded.yaml
exec .venv/bin/python rayjobs/grpo.py name="grpo_embedded_$(date +%Y%m%d_%H%M%S)" "$@"
