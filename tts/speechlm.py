"""The embedded SpeechLM: a tiny LLaMA built through the same token layout as Llasa/LLaMA-3 checkpoints.

A byte-level BPE text tokenizer is trained on the corpus texts, or on their espeak-ng phonemes with
`front_end.kind: phonemes` (tts.front_end; any input tokenizes either way, every language included), a randomly
initialised `LlamaForCausalLM` is created for it, and `tts.base.layout.expand` adds the special and audio tokens.
The result is saved with `save_pretrained` so transformers, vLLM and the training jobs load it like any hub
checkpoint.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from tts.base import checkpoint
from tts.base.checksum import sha256
from tts.base.layout import TokenLayout, audio_token, expand, from_tokenizer
from tts.codec import CodecRef, codec_ref
from tts.front_end import FrontEnd

BASE_SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>"]
log = logging.getLogger(__name__)
EMBEDDED_SPEECHLM = "tts/checkpoints/speechlm-embedded"  # the committed default policy (relative to the repo root)


@dataclass
class TinySpeechLMConfig:
    text_vocab_size: int = 384
    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 768
    max_positions: int = 2048  # 40 s of codes at 50/s plus the text
    rope_theta: float = 10000.0
    tie_embeddings: bool = True
    seed: int = 0
    front_end: FrontEnd = field(default_factory=FrontEnd)  # what the tokenizer reads: raw text or phonemes
    interleave: str | None = None  # "words": word-synchronous sequences (docs/layout.md); trained on timed corpora


def train_text_tokenizer(texts: Iterable[str], vocab_size: int):
    """Deterministic byte-level BPE over `texts`, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BASE_SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(sorted(set(texts)), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|bos|>", eos_token="<|eos|>")


def _corpus_texts(manifest: str | Path | None, language: str | None = None) -> list[str]:
    """Train-split texts of `manifest` (default: generated sentences), of one language (e.g. "en") if given."""
    if manifest is not None:
        from tts.base.manifest import read_manifest

        rows = read_manifest(manifest, split="train", check_files=False)
        texts = [r.text for r in rows if language is None or r.language == language]
        if not texts:
            raise ValueError(
                f"{manifest}: no train-split texts{f' in {language}' if language else ''} to build the tokenizer from"
            )
        return texts
    from tts.base.languages import LANGUAGES
    from tts.corpus.text import generate_sentences

    langs = [language] if language else LANGUAGES
    return [s for lang in langs for s in generate_sentences(lang, 200 if lang != "en" else 2000)]


def stop_at_speech_end(model, layout: TokenLayout) -> None:
    """Generation stops at the end of speech; text-only generation is not what a SpeechLM is for."""
    model.generation_config.eos_token_id = layout.speech_end_id
    model.config.eos_token_id = layout.speech_end_id


def create_tiny_speechlm(
    out: str | Path,
    cfg: TinySpeechLMConfig = TinySpeechLMConfig(),
    manifest: str | Path | None = None,
    codec_dir: str | Path | None = None,
    codebook_size: int | None = None,
) -> dict:
    """Create, expand and save the untrained embedded SpeechLM; returns a summary dict."""
    from transformers import LlamaConfig, LlamaForCausalLM

    # the codec the audio tokens are recorded for: the given (or embedded) one, unless only a size was asked for
    codec = codec_ref(codec_dir) if codebook_size is None or codec_dir is not None else None
    if codebook_size is None:
        codebook_size = codec.codebook_size
    torch.manual_seed(cfg.seed)
    # phonemes are of one language: the tokenizer learns that language's texts
    language = cfg.front_end.language.split("-")[0] if cfg.front_end.kind == "phonemes" else None
    texts = cfg.front_end.apply_batch(_corpus_texts(manifest, language))
    tokenizer = train_text_tokenizer(texts, cfg.text_vocab_size)
    if len(tokenizer) < cfg.text_vocab_size:  # BPE ran out of merges (e.g. LLaMA-3's 128,256 for a 1B-shaped model)
        reserved = [f"<|reserved_text_{k}|>" for k in range(cfg.text_vocab_size - len(tokenizer))]
        tokenizer.add_special_tokens({"additional_special_tokens": reserved})
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_positions,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    layout = expand(model, tokenizer, codebook_size=codebook_size, seed=cfg.seed)
    if codec is not None:
        layout = with_codec(layout, codec)
    layout = replace(layout, front_end=cfg.front_end.record(), interleave=cfg.interleave)
    stop_at_speech_end(model, layout)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    layout.save(out)
    info = {
        "out": str(out),
        "params": sum(p.numel() for p in model.parameters()),
        "vocab_size": layout.vocab_size,
        "text_vocab_size": layout.text_vocab_size,
        "audio_offset": layout.audio_offset,
        "codebook_size": layout.codebook_size,
        "config": asdict(cfg),
    }
    (out / "speechlm.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def load_layout(directory: str | Path, tokenizer=None) -> TokenLayout:
    """The token layout of a SpeechLM directory: its layout.json, or read from a Llasa-style vocabulary."""
    directory = Path(directory)
    if (directory / "layout.json").is_file():
        return TokenLayout.load(directory)
    if tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(directory)
    return from_tokenizer(tokenizer)


def load_speechlm(directory: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer, layout) of a saved SpeechLM directory (ours or Llasa-style)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"{directory}: not a model checkpoint (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    layout = load_layout(directory, tokenizer)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
    if model.get_input_embeddings().num_embeddings < layout.vocab_size:
        raise ValueError(f"{directory}: model has fewer embedding rows than the layout's {layout.vocab_size}")
    return model, tokenizer, layout


EXPORT = "export.json"


def export_speechlm(source: str | Path, out: str | Path, dtype: str = "bfloat16", notes: dict | None = None) -> dict:
    """Copy a trained SpeechLM (a checkpoint or run directory) to `out` as a plain HF directory in `dtype`, with
    `export.json` = {source, dtype, params, sha256 of the weights, notes}: what the committed embedded
    checkpoint is, how it was made and that it is unaltered (`verify_export`)."""
    model, tokenizer, layout = load_speechlm(model_dir(source))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    if getattr(tokenizer, "backend_tokenizer", None) is not None:
        # without indentation: a third smaller for the embedded model, whose 16,384 audio tokens are each an
        # added-token entry (the committed checkpoints share 20 MB)
        tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"), pretty=False)
    layout.save(out)
    info = {
        "source": str(source),
        "dtype": dtype,
        "params": sum(p.numel() for p in model.parameters()),
        "sha256": sha256(out / "model.safetensors"),
        "notes": notes or {},
    }
    (out / EXPORT).write_text(json.dumps(info, indent=2) + "\n")
    return info


def verify_export(directory: str | Path) -> dict:
    """export.json of `directory`, after checking its weights' checksum (a clear error when altered)."""
    directory = Path(directory)
    path = directory / EXPORT
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not an exported SpeechLM (no {EXPORT})")
    info = json.loads(path.read_text())
    got = sha256(directory / "model.safetensors")
    if got != info["sha256"]:
        raise ValueError(f"{directory}/model.safetensors: checksum {got} does not match {EXPORT} ({info['sha256']})")
    return info


def model_dir(init_from: str | Path) -> Path:
    """The model directory `init_from` names: itself, or a run directory's latest checkpoint."""
    path = Path(init_from)
    if not path.exists():
        raise FileNotFoundError(f"init_from {path} does not exist")
    if (path / "config.json").is_file():
        return path
    found = checkpoint.latest(path)
    if found is None:
        raise FileNotFoundError(f"init_from {path} is neither a model checkpoint (no config.json) nor a run directory")
    return found


def speech_layout(directory: Path, codebook_size: int) -> TokenLayout | None:
    """The token layout of a SpeechLM checkpoint, None for a plain LM (to be expanded); raises when the
    checkpoint's audio vocabulary does not match the codec."""
    from transformers import AutoTokenizer

    if (directory / "layout.json").is_file():
        layout = TokenLayout.load(directory)
    else:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if audio_token(0) not in tokenizer.get_vocab():
            return None
        layout = from_tokenizer(tokenizer)
    if layout.codebook_size != codebook_size:
        raise ValueError(
            f"{directory} was built for a codebook of {layout.codebook_size} codes but the codec has "
            f"{codebook_size}: train with the codec_dir it was built for, or start from a matching checkpoint"
        )
    return layout


# Paths inside the installed package (the committed checkpoints) are recorded relative to its root, so a policy
# still finds its codec in another checkout or on another host.
_ROOT = Path(__file__).resolve().parents[1]


def codec_record(codec: CodecRef) -> dict[str, str]:
    """What a SpeechLM records of its codec: path (package-relative for committed ones) and weights' checksum."""
    path = codec.directory.resolve()
    recorded = str(path.relative_to(_ROOT)) if path.is_relative_to(_ROOT) else str(path)
    return {"path": recorded, "sha256": codec.sha256}


def with_codec(layout: TokenLayout, codec: CodecRef) -> TokenLayout:
    """`layout` recording `codec`: what the SpeechLM's audio tokens mean."""
    return replace(layout, codec=codec_record(codec))


def recorded_codec(directory: Path, layout: TokenLayout) -> CodecRef:
    """The codec a SpeechLM records in its layout.json, found and checked against the recorded checksum."""
    if not layout.codec:
        raise ValueError(
            f"{directory} records no codec (layout.json has no 'codec'; e.g. a public Llasa checkpoint): "
            "give the codec directory it was trained with in the config (codec_dir / codec)"
        )
    path = Path(layout.codec["path"])
    found = next((p for p in (path, _ROOT / path) if p.is_dir()), None)
    if found is None:
        raise FileNotFoundError(f"{directory} was trained with codec {path}, which does not exist here")
    ref = codec_ref(found)
    if ref.sha256 != layout.codec["sha256"]:
        raise ValueError(
            f"{directory} was trained with codec {path} of weights sha256 {layout.codec['sha256'][:12]}..., but "
            f"{found} now holds weights {ref.sha256[:12]}...: restore that codec or give codec_dir explicitly"
        )
    return ref


@dataclass
class SpeechLM:
    """An opened SpeechLM: where its weights are, how its text and audio tokens are laid out, and its codec."""

    directory: Path
    tokenizer: Any
    layout: TokenLayout
    codec: CodecRef  # described, not loaded: decoder actors load it where it runs


def open_speechlm(path: str | Path, codec_dir: str | Path | None = None) -> SpeechLM:
    """The one door to a SpeechLM for GRPO, evaluation, Serve and the CLI. `path`: a model directory, or a run
    directory (its latest checkpoint); `codec_dir` None: the codec the model records. Checks, on the driver and
    in seconds: an exported model's checksum, and that the codec's codebook is the model's audio vocabulary."""
    from transformers import AutoTokenizer

    directory = model_dir(path)
    if (directory / EXPORT).is_file():
        verify_export(directory)  # a committed/exported policy must be the one its checksum names
    tokenizer = AutoTokenizer.from_pretrained(directory)
    layout = load_layout(directory, tokenizer)
    codec = codec_ref(codec_dir) if codec_dir is not None else recorded_codec(directory, layout)
    if codec.codebook_size != layout.codebook_size:
        raise ValueError(
            f"SpeechLM {directory} expects a codebook of {layout.codebook_size} codes but codec {codec.directory} "
            f"has {codec.codebook_size}: use the codec the SpeechLM was trained with"
        )
    if codec_dir is not None and layout.codec and layout.codec.get("sha256") != codec.sha256:
        log.warning(
            "SpeechLM %s was trained with codec %s (weights %s...); serving it with codec %s (weights %s...), whose "
            "codes must mean the same (e.g. a retrained decoder on the same quantiser)",
            directory, layout.codec.get("path"), layout.codec.get("sha256", "")[:12],
            codec.directory, codec.sha256[:12],
        )  # fmt: skip
    return SpeechLM(directory, tokenizer, layout, codec)
