"""The embedded SpeechLM: a tiny LLaMA built through the same token layout as Llasa/LLaMA-3 checkpoints.

A byte-level BPE text tokenizer is trained on the corpus texts (so any input text tokenizes, every
language included), a randomly initialised `LlamaForCausalLM` is created for it, and `tts.layout.expand`
adds the special and audio tokens. The result is saved with `save_pretrained` so transformers, vLLM and
the training jobs load it like any hub checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tts.layout import TokenLayout, expand, from_tokenizer

BASE_SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>"]


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


def _corpus_texts(manifest: str | Path | None) -> list[str]:
    if manifest is not None:
        from tts.corpus.manifest import read_manifest

        texts = [r.text for r in read_manifest(manifest, split="train", check_files=False)]
        if not texts:
            raise ValueError(f"{manifest}: no train-split texts to build the tokenizer from")
        return texts
    from tts.corpus.text import LANGUAGES, generate_sentences

    return [s for lang in LANGUAGES for s in generate_sentences(lang, 200 if lang != "en" else 2000)]


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

    if codebook_size is None:
        from tts.codec import load_codec

        codebook_size = load_codec(codec_dir).codebook_size
    torch.manual_seed(cfg.seed)
    tokenizer = train_text_tokenizer(_corpus_texts(manifest), cfg.text_vocab_size)
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
    from tts.codec.base import sha256
    from tts.train.model import model_dir

    model, tokenizer, layout = load_speechlm(model_dir(source))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tokenizer.save_pretrained(out)
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
    from tts.codec.base import sha256

    directory = Path(directory)
    path = directory / EXPORT
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not an exported SpeechLM (no {EXPORT})")
    info = json.loads(path.read_text())
    got = sha256(directory / "model.safetensors")
    if got != info["sha256"]:
        raise ValueError(f"{directory}/model.safetensors: checksum {got} does not match {EXPORT} ({info['sha256']})")
    return info
