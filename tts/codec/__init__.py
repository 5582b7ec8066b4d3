"""Audio codecs behind one interface (`Codec`); `load_codec(dir)` picks the class from codec.json, `codec_ref(dir)`
describes a checkpoint (type, codebook size, weights' checksum) without loading its weights."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from tts.codec.base import MANIFEST, Codec, codec_manifest

# codec.json "type" -> implementing class, imported on first use (xcodec2 pulls in torch)
CODECS: dict[str, str] = {
    "world_vq": "tts.codec.world_vq:WorldVQCodec",
    "xcodec2": "tts.codec.xcodec2.codec:XCodec2Codec",
}
# The one embedded-default codec, the embedded SpeechLM's: what a SpeechLM created from scratch is built for. A
# trained SpeechLM records its own codec (tts.speechlm.open_speechlm), which jobs use when no codec is configured.
EMBEDDED_CODEC = Path(__file__).resolve().parents[1] / "checkpoints" / "codec-wordsync"


def _directory(directory: str | Path | None) -> Path:
    directory = Path(directory) if directory is not None else EMBEDDED_CODEC
    if not (directory / MANIFEST).is_file() and (directory / "codec" / MANIFEST).is_file():
        directory = directory / "codec"  # a codec training checkpoint (checkpoint_*/codec)
    return directory


def _codec_class(directory: Path, kind: str) -> type[Codec]:
    target = CODECS.get(kind)
    if target is None:
        raise ValueError(f"{directory}: unknown codec type {kind!r}; known: {sorted(CODECS)}")
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def load_codec(directory: str | Path | None = None) -> Codec:
    """Load a codec checkpoint directory (None: the embedded default), verifying its checksum. A codec training
    checkpoint (`checkpoint_*/` holding `codec/`) opens its codec."""
    directory = _directory(directory)
    return _codec_class(directory, codec_manifest(directory)["type"]).load(directory)


@dataclass(frozen=True)
class CodecRef:
    """A codec checkpoint as described by its codec.json: enough to check it against a SpeechLM on a driver that
    never runs the codec itself (the decoder actors load it)."""

    directory: Path
    kind: str
    sha256: str  # of the weights, as recorded in codec.json (`load_codec` verifies it)
    codebook_size: int

    def load(self) -> Codec:
        return load_codec(self.directory)


def codec_ref(directory: str | Path | None = None) -> CodecRef:
    directory = _directory(directory)
    manifest = codec_manifest(directory)
    size = _codec_class(directory, manifest["type"]).codebook_size_of(manifest["config"])
    return CodecRef(directory, manifest["type"], manifest["sha256"], size)


__all__ = ["Codec", "CODECS", "CodecRef", "EMBEDDED_CODEC", "codec_ref", "load_codec"]
