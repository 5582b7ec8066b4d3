"""Issue 19 probe (an experiment, not the product path): does writing each word's phonemes into the audio stream
(word-interleaved TTS: <speech_start> w1 codes(w1) w2 codes(w2) ...) make the tiny SpeechLM align text and audio
sooner than plain TTS? Plain torch, the embedded SpeechLM's shape, side by side with the plain layout; word starts
from libespeak-ng's phoneme events (IPA, in-process, ~0.2 s per 40 utterances) matched to the phoneme front end's
words by a character alignment (the voices' accents differ from the en-us front end). Held-out WER every
--eval-every steps (24 test-split prompts of the held-out voices, Whisper tiny.en, T=0.8 top-k 50) and, for the
interleaved model, the token error of the words it wrote (alignment itself, independent of audio quality).

    tts-align corpus generate --config rayjobs/configs/corpus_speechlm.yaml
    tts-align speechlm init --out runs/issue19/init_ph8k --manifest data/corpus_speechlm/manifest.jsonl \
        --codec tts/checkpoints/codec-speechlm front_end.kind=phonemes
    python scripts/probe_word_interleave.py prep --n 7000          # word starts + codes, ~12 min on 2 cores
    python scripts/probe_word_interleave.py train --variant interleaved --threads 1 --max-tokens 3000000 &
    python scripts/probe_word_interleave.py train --variant plain --threads 1 --max-tokens 3000000
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts.corpus import timing
from tts.corpus.timing import char_times, word_starts

OUT = Path("runs/issue19")
CORPUS = Path("data/corpus_speechlm")
# the model shape and codec of a probe, and its prepared data (environment, so the encoding processes see them)
INIT = Path(os.environ.get("PROBE_INIT", OUT / "init_ph8k"))
CODEC = os.environ.get("PROBE_CODEC", "tts/checkpoints/codec-speechlm")
DATA = OUT / os.environ.get("PROBE_DATA", "probe_data.pt")
FPS = 50


def phoneme_events(rows: list[dict]) -> list[list[tuple[str, float]] | None]:
    """tts.corpus.timing.phoneme_events of manifest rows given as dicts."""
    from tts.base.manifest import Utterance

    fields = Utterance.__dataclass_fields__
    return timing.phoneme_events([Utterance(**{k: v for k, v in r.items() if k in fields}) for r in rows])


def token_starts(tok, words: list[str], events: list[tuple[str, float]]) -> tuple[list[int], list[float]] | None:
    """Every text token of the phonemised words with the start time of its first character, never decreasing."""
    times = char_times("".join(words), events)
    if times is None:
        return None
    ids, starts, base = [], [], 0
    for i, w in enumerate(words):
        lead = 1 if i else 0
        enc = tok((" " if i else "") + w, add_special_tokens=False, return_offsets_mapping=True)
        for t, (a, _) in zip(enc["input_ids"], enc["offset_mapping"]):
            ids.append(t)
            starts.append(times[min(base + max(a - lead, 0), len(times) - 1)])
        base += len(w)
    return ids, list(np.maximum.accumulate(starts))


def prep_tokens() -> None:
    """Token-level interleaving data (every text token followed by its frames, as ELLA-V does with phones) from
    the prepared word-level data: the same rows and codes, the token starts from espeak-ng's phoneme events."""
    from tts.front_end import FrontEnd

    data = torch.load(DATA, weights_only=False)
    tok, _ = _tok_layout()
    rows = {r["id"]: r for r in map(json.loads, (CORPUS / "manifest.jsonl").read_text().splitlines())}
    fe = FrontEnd("phonemes")
    for name, items in data.items():
        t0 = time.time()
        events = phoneme_events([rows[it["id"]] for it in items])
        phones = fe.apply_batch([it["text"] for it in items])
        kept = []
        for it, ev, ph in zip(items, events, phones):
            got = None if ev is None else token_starts(tok, ph.split(), ev)
            if got is not None and got[0] == [t for w in it["words"] for t in w]:  # the text the model reads
                it["tokens"], it["token_starts"] = got
                kept.append(it)
        data[name] = kept
        print(f"{name}: {len(kept)}/{len(items)} rows with token starts ({time.time() - t0:.1f} s)", flush=True)
    torch.save(data, DATA.with_name(DATA.stem + "_tok.pt"))


_codec = None
_speaker = None


def _encode(path: str) -> np.ndarray:
    global _codec
    if _codec is None:
        from tts.codec import load_codec

        _codec = load_codec(CODEC)
    return _codec.encode_file(path).astype(np.int16)


def prep(n: int) -> None:
    from tts.front_end import FrontEnd

    rows = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(0)
    train = [r for r in rows if r["split"] == "train"]
    train = [train[i] for i in sorted(rng.choice(len(train), min(n, len(train)), replace=False))]
    test = [r for r in rows if r["split"] == "test" and r["speaker"] in ("en_08", "en_09") and "_open" not in r["id"]]
    test = test[:24]
    tok, layout = _tok_layout()
    fe = FrontEnd("phonemes")
    out = {}
    for name, part in (("train", train), ("test", test)):
        t0 = time.time()
        times = phoneme_events(part)
        phones = fe.apply_batch([r["text"] for r in part])
        items = []
        for r, ev, ph in zip(part, times, phones):
            words = ph.split()
            ws = None if ev is None else word_starts(words, ev)
            if ws is None:
                continue
            toks = [tok((" " if i else "") + w, add_special_tokens=False)["input_ids"] for i, w in enumerate(words)]
            items.append(
                {
                    "id": r["id"],
                    "text": r["text"],
                    "speaker": r["speaker"],
                    "wav": r["wav"],
                    "starts": ws,
                    "words": toks,
                }
            )
        print(f"{name}: {len(items)}/{len(part)} rows with matching word counts ({time.time() - t0:.1f} s)")
        t0 = time.time()
        with mp.Pool(2) as pool:
            codes = pool.map(_encode, [str(CORPUS / it["wav"]) for it in items], chunksize=16)
        for it, c in zip(items, codes):
            it["codes"] = c
        print(f"{name}: encoded in {time.time() - t0:.1f} s")
        out[name] = items
    torch.save(out, DATA)


def _tok_layout():
    from transformers import AutoTokenizer

    from tts.base.layout import TokenLayout

    return AutoTokenizer.from_pretrained(INIT), TokenLayout.load(INIT)


def sequence(it: dict, layout, variant: str, ref: dict | None = None) -> tuple[list[int], list[int]]:
    """The training sequence of one row; with `ref` (another row of the same voice) a voice-cloning one: the
    reference's text before the target's, its codes (plain, not in the loss) before the target's words."""
    text = [t for w in it["words"] for t in w]
    ref_text = [t for w in ref["words"] for t in w] if ref else []
    ref_audio = layout.codes_to_ids(np.asarray(ref["codes"], dtype=np.int64)).tolist() if ref else []
    head = [layout.text_start_id, *ref_text, *text, layout.text_end_id, layout.speech_start_id, *ref_audio]
    codes = np.asarray(it["codes"], dtype=np.int64)
    audio = layout.codes_to_ids(codes).tolist()
    if variant == "plain":
        tail, labels = audio, list(audio)
    elif variant == "tokensync":  # every text token, then its frames; the engine writes the tokens
        b = [min(len(codes), max(0, round(s * FPS))) for s in it["token_starts"]]
        b[0] = 0
        b = list(np.maximum.accumulate(b)) + [len(codes)]
        tail, labels = [], []
        for k, t in enumerate(it["tokens"]):
            tail += [t] + audio[b[k] : b[k + 1]]
            labels += [-100 if k == 0 else t] + audio[b[k] : b[k + 1]]  # token 0 is in the prompt
    else:
        b = [min(len(codes), max(0, round(s * FPS))) for s in it["starts"]]
        b[0] = 0
        b = list(np.maximum.accumulate(b)) + [len(codes)]
        tail, labels = [], []
        for k, w in enumerate(it["words"]):
            tail += list(w) + audio[b[k] : b[k + 1]]
            if variant == "wordsync":  # the engine writes the words: learn only where each starts (its 1st token)
                forced = list(w) if k == 0 else [w[0]] + [-100] * (len(w) - 1)
                labels += [-100] * len(w) if k == 0 else forced
            else:
                labels += list(w)
            labels += audio[b[k] : b[k + 1]]
    tail.append(layout.speech_end_id)
    labels.append(layout.speech_end_id)
    return head + tail, [-100] * len(head) + labels


def batches(items, layout, variant, max_len, rng, clone_share: float = 0.0):
    from tts.prompts import Prompt
    from tts.train.data import collate, pack

    by_speaker: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_speaker.setdefault(it["speaker"], []).append(i)
    while True:
        order = rng.permutation(len(items))

        def ref_of(i):
            if rng.random() >= clone_share:
                return None
            pool = by_speaker[items[i]["speaker"]]
            j = pool[int(rng.integers(len(pool)))]
            return items[j] if j != i and len(items[j]["codes"]) <= 300 else None  # references up to 6 s

        seqs = [sequence(items[i], layout, variant, ref_of(i)) for i in order]
        seqs = [s for s in seqs if len(s[0]) <= max_len]
        for group in pack([len(s[0]) for s in seqs], max_len):
            yield collate([[Prompt(*seqs[i]) for i in group]], 0)


@torch.no_grad()
def evaluate(model, layout, items, variant, codec, asr, seed=0, clone=False):
    """Held-out WER (and with `clone`, voice cloning from another row of the voice: SIM to that reference)."""
    from rewards.asr import error_rate

    model.eval()
    wers, empty, lens, token_errs, sims = [], 0, [], [], []
    for k, it in enumerate(items):
        ref = None
        if clone:
            same = [x for x in items if x["speaker"] == it["speaker"] and x["id"] != it["id"]]
            ref = same[k % len(same)]
        ids, _ = sequence(it, layout, variant, ref)
        n_head = 3 + sum(len(w) for w in it["words"])  # <text_start> text <text_end> <speech_start>
        if ref:
            n_head += sum(len(w) for w in ref["words"]) + len(ref["codes"])
        if variant in ("wordsync", "tokensync"):  # synchronous decoding: the engine writes the text
            units = it["words"] if variant == "wordsync" else [[t] for t in it["tokens"]]
            gen, _ = generate_forced(model, layout, units, ids[:n_head], seed=seed + k)
        else:
            torch.manual_seed(seed + k)
            prompt = torch.tensor([ids[:n_head]])
            out = model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=700,
                do_sample=True,
                temperature=0.8,
                top_k=50,
                eos_token_id=layout.speech_end_id,
                pad_token_id=layout.speech_end_id,
            )
            gen = np.asarray(out[0, n_head:].tolist())
        audio = gen[layout.is_audio(gen)]
        if variant == "interleaved":  # alignment itself: did it write the text's tokens, in order?
            import jiwer

            written = [str(t) for t in gen if not layout.is_audio(t) and t != layout.speech_end_id]
            wanted = [str(t) for w in it["words"] for t in w]
            token_errs.append(jiwer.wer(" ".join(wanted), " ".join(written)) if written else 1.0)
        if len(audio) == 0:
            empty += 1
            wers.append(1.0)
            continue
        wave = codec.decode(layout.ids_to_codes(audio))
        hyp = asr.transcribe(wave)
        wers.append(min(error_rate(it["text"], hyp), 1.5))
        lens.append(len(audio) / len(it["codes"]))
        if ref:
            from rewards.speaker import ResemblyzerEncoder, similarity
            from tts.base.audio import load_audio

            global _speaker
            _speaker = _speaker or ResemblyzerEncoder()
            ref_wave = load_audio(str(CORPUS / ref["wav"]), target_sr=16000)[0]
            sims.append(similarity(_speaker, wave, codec.sample_rate, ref_wave, 16000))
        if k < 3:
            print(f"   {it['text']!r} -> {hyp!r}")
    model.train()
    out = {"wer": float(np.mean(wers)), "empty": empty, "len_ratio": float(np.mean(lens)) if lens else 0.0}
    out |= {"sim": float(np.mean(sims))} if sims else {}
    return out | ({"text_token_error": float(np.mean(token_errs))} if token_errs else {})


@torch.no_grad()
def generate_forced(model, layout, words: list[list[int]], head: list[int], seed: int, max_new: int = 700):
    """Word-synchronous decoding (ELLA-V's inference): the engine writes each word's tokens itself; the model writes
    audio and decides where a word ends (any text token it samples starts the next word, which is then forced).
    speech_end is masked until every word is written; after the last word only audio or speech_end."""
    torch.manual_seed(seed)
    vocab = model.config.vocab_size
    ids = torch.arange(vocab)
    audio_mask = torch.as_tensor(layout.is_audio(ids.numpy()))
    text_mask = ~audio_mask
    text_mask[layout.speech_end_id] = False
    inp, past, audio, w = torch.tensor([head + words[0]]), None, [], 1
    for _ in range(max_new):
        o = model(input_ids=inp, past_key_values=past, use_cache=True)
        past = o.past_key_values
        logits = o.logits[0, -1, :vocab].float() / 0.8
        allowed = audio_mask.clone()
        if w < len(words):
            allowed |= text_mask
        else:
            allowed[layout.speech_end_id] = True
        logits[~allowed] = -float("inf")
        top = torch.topk(logits, 50)
        t = int(top.indices[torch.multinomial(torch.softmax(top.values, -1), 1)])
        if t == layout.speech_end_id:
            break
        if audio_mask[t]:
            audio.append(t)
            inp = torch.tensor([[t]])
        else:
            inp = torch.tensor([words[w]])
            w += 1
    return np.asarray(audio, dtype=np.int64), w


def forced(model_dir: str) -> None:
    """Held-out WER of an interleaved model decoded freely vs word-synchronously (same prompts, seeds, ASR)."""
    from transformers import AutoModelForCausalLM

    from rewards.asr import FasterWhisperASR, error_rate
    from tts.codec import load_codec

    torch.set_num_threads(2)
    data = torch.load(DATA, weights_only=False)
    _, layout = _tok_layout()
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    codec, asr = load_codec(CODEC), FasterWhisperASR()
    wers, lens = [], []
    for k, it in enumerate(data["test"]):
        ids, labels = sequence(it, layout, "interleaved")
        n_head = sum(1 for x in labels if x == -100)
        audio, written = generate_forced(model, layout, it["words"], ids[:n_head], seed=k)
        hyp = asr.transcribe(codec.decode(layout.ids_to_codes(audio))) if len(audio) else ""
        wers.append(min(error_rate(it["text"], hyp), 1.5) if hyp else 1.0)
        lens.append(len(audio) / len(it["codes"]))
        print(f"{k}: {wers[-1]:.2f} words {written}/{len(it['words'])} {it['text']!r} -> {hyp!r}", flush=True)
    print(json.dumps({"model": model_dir, "forced_wer": float(np.mean(wers)), "len_ratio": float(np.mean(lens))}))


def assemble(model: str, out: str) -> None:
    """A SpeechLM directory from a probe model (weights and config only): PROBE_INIT's tokenizer and layout, the
    layout word-synchronous; `tts-align speechlm export --from OUT` then makes the checked, bf16 copy."""
    import dataclasses
    import shutil

    from tts.base.layout import TokenLayout
    from tts.codec import codec_ref
    from tts.speechlm import with_codec

    dst = Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "speechlm.json"):
        if (INIT / name).is_file():
            shutil.copy(INIT / name, dst / name)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(model) / name, dst / name)
    layout = dataclasses.replace(TokenLayout.load(INIT), interleave="words")
    with_codec(layout, codec_ref(os.environ.get("PROBE_COMMITTED_CODEC", CODEC))).save(dst)
    print(f"assembled {dst}")


def train(
    variant: str,
    minutes: float,
    threads: int,
    lr: float,
    eval_every: int,
    tag: str,
    max_tokens: int,
    autocast: bool,
    init: str | None = None,
    clone_share: float = 0.0,
    stop_step: int | None = None,
) -> None:
    from transformers import AutoModelForCausalLM

    from rewards.asr import FasterWhisperASR
    from tts.codec import load_codec

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = torch.load(DATA, weights_only=False)
    tok, layout = _tok_layout()
    saved, state = OUT / f"probe_{tag}_model", OUT / f"probe_{tag}_state.pt"
    resume = state.exists()  # a killed run goes on from its last evaluation (weights, optimiser, step, tokens)
    src = saved if resume else (init or INIT)
    model = AutoModelForCausalLM.from_pretrained(src, torch_dtype=torch.float32, attn_implementation="sdpa")
    codec, asr = load_codec(CODEC), FasterWhisperASR()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95)
    )
    est_steps = max_tokens // 3900  # packed 2 x 2048-token sequences per step
    warm = 50

    def lr_at(s):
        if s < warm:
            return lr * (s + 1) / warm
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / est_steps))))

    step, tokens = 0, 0
    if resume:
        st = torch.load(state, weights_only=False)
        opt.load_state_dict(st["opt"])
        step, tokens = st["step"], st["tokens"]
        print(f"{tag}: resumed at step {step}, {tokens} tokens", flush=True)
    gen = batches(data["train"], layout, variant, 2048, np.random.default_rng(step), clone_share)
    log = open(OUT / f"probe_{tag}.jsonl", "a")
    start, tokens0 = time.time(), tokens
    while True:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss_sum = 0.0
        for _ in range(2):
            b = next(gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = model(**b.inputs, use_cache=False).loss / 2
            loss.backward()
            loss_sum += loss.item()
            tokens += b.tokens
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        elapsed = time.time() - start
        done = elapsed > minutes * 60 or tokens >= max_tokens or step == stop_step
        if step % 20 == 0:
            rate = (tokens - tokens0) / elapsed
            print(f"{tag} step {step} loss {loss_sum:.3f} tok {tokens} {rate:.0f} tok/s", flush=True)
        if step % eval_every == 0 or done:
            t0 = time.time()
            ev = evaluate(model, layout, data["test"], variant, codec, asr)
            if clone_share:
                ev |= {
                    f"clone_{k}": v
                    for k, v in evaluate(model, layout, data["test"], variant, codec, asr, clone=True).items()
                }
            row = {
                "step": step,
                "tokens": tokens,
                "loss": loss_sum,
                "minutes": elapsed / 60,
                **ev,
                "eval_s": time.time() - t0,
            }
            print(tag, row, flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
            model.save_pretrained(saved)  # the latest evaluated weights survive a kill
            torch.save({"opt": opt.state_dict(), "step": step, "tokens": tokens}, state)
            start += time.time() - t0  # evaluation time does not count
        if done:
            break


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--variant", default="interleaved")
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=150)
    p.add_argument("--tag", default=None)
    p.add_argument("--max-tokens", type=int, default=3_000_000)
    p.add_argument("--model", default=str(OUT / "probe_interleaved_long_model"))
    p.add_argument("--out", default=str(OUT / "wordsync_speechlm"))
    p.add_argument("--init", default=None, help="model to start from (default: PROBE_INIT)")
    p.add_argument("--clone-share", type=float, default=0.0, help="share of voice-cloning sequences")
    p.add_argument("--autocast", action="store_true", help="bf16 matmuls under torch.autocast, fp32 weights")
    p.add_argument("--stop-step", type=int, default=None, help="stop (saved) at this step; the schedule stays")
    a = p.parse_args()
    if a.cmd == "prep":
        prep(a.n)
    elif a.cmd == "prep-tokens":
        prep_tokens()
    elif a.cmd == "assemble":
        assemble(a.model, a.out)
    elif a.cmd == "forced":
        forced(a.model)
    else:
        tag = a.tag or a.variant
        train(
            a.variant, a.minutes, a.threads, a.lr, a.eval_every, tag, a.max_tokens, a.autocast, a.init, a.clone_share,
            a.stop_step,
        )  # fmt: skip
