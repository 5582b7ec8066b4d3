#!/usr/bin/env bash
# The embedded SpeechLM pipeline (issue 19), on 2 CPU cores: a word-synchronous tiny LLaMA (docs/layout.md)
#   corpus (10.6 h, 24 voices) -> phoneme timings -> codec (WORLD-VQ 4 x 4,096) -> untrained SpeechLM (phoneme
#   front end) -> plain-torch word-synchronous TTS (750 steps) -> the same with half voice cloning (600 steps)
#   -> tokenize (Ray Data) -> SFT through Ray Train (1,500 steps, decaying lr) -> 5 h of random English word
#   sequences (new vocabulary) -> 1,000 more SFT steps on both -> export to tts/checkpoints/speechlm-embedded
#   (bf16 + checksum) -> held-out evaluation.
# The two plain-torch stages are scripts/probe_word_interleave.py, which found the layout (docs/results.md); the
# SFT stages are the product path. Budget on our 2-core machines: corpus 20 min, timings 1 min, prep 12 min,
# stages 35 + 32 min, tokenize 12 min, SFT 65 min, word sequences 1 + 4 min, SFT 55 min, eval 10 min. Every
# step skips what is already done or resumes, so re-running continues. Usage: bash scripts/train_embedded_speechlm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
CORPUS=data/corpus_speechlm/manifest.jsonl
CODEC=tts/checkpoints/codec-wordsync
PROBE=runs/issue19

step "corpus and its phoneme timings"
[ -f $CORPUS ] || tts-align corpus generate --config rayjobs/configs/corpus_speechlm.yaml
tts-align corpus timings --manifest $CORPUS --asr off

step "codec (the committed copy is $CODEC)"
[ -f $CODEC/codec.json ] || {
    tts-align codec fit --manifest $CORPUS --out runs/codec/wordsync f0_bins=4 env_clusters=4096
    mkdir -p $CODEC && cp runs/codec/wordsync/* $CODEC/
}

step "untrained SpeechLM: phoneme front end, 16,384 codes, 7.85 M parameters"
[ -f $PROBE/init_f4e4096/config.json ] || tts-align speechlm init --out $PROBE/init_f4e4096 --manifest $CORPUS \
    --codec $CODEC front_end.kind=phonemes intermediate_size=512

step "plain-torch word-synchronous training: TTS, then half voice cloning"
export PROBE_INIT=$PROBE/init_f4e4096 PROBE_CODEC=$CODEC PROBE_DATA=probe_data_f4.pt
[ -f $PROBE/probe_data_f4.pt ] || python scripts/probe_word_interleave.py prep --n 10010
[ -f $PROBE/wordsync_f4_step750_model/config.json ] || {
    python scripts/probe_word_interleave.py train --variant wordsync --tag wordsync_f4 --threads 2 --autocast \
        --max-tokens 12000000 --minutes 150 --eval-every 150 --lr 1e-3 --stop-step 750
    cp -r $PROBE/probe_wordsync_f4_model $PROBE/wordsync_f4_step750_model
}
[ -f $PROBE/wordsync_clone_speechlm/export.json ] || {
    python scripts/probe_word_interleave.py train --variant wordsync --tag wordsync_clone_f4 --threads 2 \
        --autocast --init $PROBE/wordsync_f4_step750_model --clone-share 0.5 --max-tokens 8000000 --minutes 90 \
        --eval-every 200 --lr 1e-3 --stop-step 600
    python scripts/probe_word_interleave.py assemble --model $PROBE/probe_wordsync_clone_f4_model \
        --out $PROBE/wordsync_clone_assembled
    tts-align speechlm export --from $PROBE/wordsync_clone_assembled --out $PROBE/wordsync_clone_speechlm \
        --notes '{"made_by": "scripts/train_embedded_speechlm.sh: the two plain-torch stages"}'
}

step "tokenize (the timings go into the shards)"
[ -f runs/tokens_wordsync/summary.json ] || python rayjobs/tokenize_corpus.py --manifest $CORPUS \
    --out runs/tokens_wordsync codec_dir=$CODEC dnsmos=false

step "SFT through Ray Train (resumes from runs/sft_wordsync)"
python rayjobs/sft.py --config rayjobs/configs/sft_wordsync.yaml

step "word sequences: vocabulary for reading new words (rendered with their timings, then tokenised)"
[ -f data/corpus_words/manifest.jsonl ] || tts-align corpus generate --config rayjobs/configs/corpus_words.yaml
[ -f runs/tokens_words/summary.json ] || python rayjobs/tokenize_corpus.py \
    --manifest data/corpus_words/manifest.jsonl --out runs/tokens_words codec_dir=$CODEC dnsmos=false

step "SFT on the corpus and the word sequences (resumes from runs/sft_words)"
[ -f runs/speechlm_wordsync/export.json ] ||
    tts-align speechlm export --from runs/sft_wordsync --out runs/speechlm_wordsync
python rayjobs/sft.py --config rayjobs/configs/sft_words.yaml

step "export"
tts-align speechlm export --from runs/sft_words --out tts/checkpoints/speechlm-embedded \
    --notes '{"made_by": "bash scripts/train_embedded_speechlm.sh", "codec": "tts/checkpoints/codec-wordsync"}'

step "held-out evaluation: voice cloning (grammar sentences) and open-vocabulary sentences, unseen voices"
[ -f data/evalsets_speechlm/sets.json ] || tts-align eval make-sets --manifest $CORPUS \
    --out data/evalsets_speechlm markup_prompts=0
for set in cloning open; do
    python rayjobs/eval.py --config rayjobs/configs/eval_embedded.yaml \
        --meta data/evalsets_speechlm/$set/en/meta.lst --limit 32 \
        --checkpoint tts/checkpoints/speechlm-embedded --out runs/eval/speechlm_$set
done
