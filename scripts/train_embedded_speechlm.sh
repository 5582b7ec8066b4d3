#!/usr/bin/env bash
# The embedded SpeechLM pipeline (issue 4 item 4), on 2 CPU cores:
#   corpus -> English train+val manifest -> codec (WORLD-VQ 16 x 512) -> tokenize (Ray Data) -> pretrain -> SFT
#   -> SFT from scratch (the pre-training ablation, concurrently, one core each) -> held-out evaluation
#   -> export to tts/checkpoints/speechlm-embedded (bf16 + checksum).
# Budget on our 2-core machines: about 25 min tokenize, 25 min pretrain, 45 min for the two SFT runs, 10 min eval.
# Every step skips what is already done, so re-running continues. Usage: bash scripts/train_embedded_speechlm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "corpus"
[ -f data/corpus/manifest.jsonl ] || tts-align corpus generate
tts-align corpus select --manifest data/corpus/manifest.jsonl --out data/corpus/manifest_en_trainval.jsonl \
    --languages en --splits train val

step "codec (fit on the corpus train split; the committed copy is tts/checkpoints/codec-speechlm)"
[ -f tts/checkpoints/codec-speechlm/codec.json ] || {
    tts-align codec fit --manifest data/corpus/manifest.jsonl --out runs/codec/speechlm \
        --warps 0 --max-frames 150000 f0_bins=16 env_clusters=512 f0_error_diffusion=false f0_smoothing=1
    mkdir -p tts/checkpoints/codec-speechlm && cp runs/codec/speechlm/* tts/checkpoints/codec-speechlm/
}

step "tokenize"
python rayjobs/tokenize_corpus.py --manifest data/corpus/manifest_en_trainval.jsonl --out runs/tokens_speechlm \
    codec_dir=tts/checkpoints/codec-speechlm

step "pretrain"
python rayjobs/pretrain.py --config rayjobs/configs/pretrain_embedded.yaml

step "SFT from the pre-trained model, and from scratch (ablation), side by side"
python rayjobs/sft.py --config rayjobs/configs/sft_embedded.yaml > runs/sft_embedded.log 2>&1 &
main=$!
python rayjobs/sft.py --config rayjobs/configs/sft_embedded.yaml run_dir=runs/sft_embedded_scratch \
    init_from=null start_lr_from=null lr=5.0e-4 > runs/sft_embedded_scratch.log 2>&1 &
scratch=$!
wait $main || { tail -50 runs/sft_embedded.log; exit 1; }
wait $scratch || { tail -50 runs/sft_embedded_scratch.log; exit 1; }

step "held-out evaluation (voice cloning of test-split speakers and sentences: WER, SIM, DNSMOS)"
for run in sft_embedded sft_embedded_scratch; do
    python rayjobs/grpo.py --eval-only name=eval_$run policy=runs/$run
done

step "export"
python - <<'EOF'
import json
from pathlib import Path

from tts.speechlm import export_speechlm

runs = Path("runs")
notes = {
    "made_by": "bash scripts/train_embedded_speechlm.sh",
    "codec": "tts/checkpoints/codec-speechlm",
    "pretrain": [json.loads(l) for l in (runs / "pretrain_embedded/metrics.jsonl").read_text().splitlines()][-1],
    "sft": [json.loads(l) for l in (runs / "sft_embedded/metrics.jsonl").read_text().splitlines()][-1],
    "sft_from_scratch": [json.loads(l) for l in (runs / "sft_embedded_scratch/metrics.jsonl").read_text().splitlines()][-1],
    "held_out": {r: json.loads((runs / f"eval_{r}/eval_only.json").read_text())["summary"]
                 for r in ("sft_embedded", "sft_embedded_scratch")},
}
print(json.dumps(export_speechlm("runs/sft_embedded", "tts/checkpoints/speechlm-embedded", "bfloat16", notes), indent=2))
EOF
