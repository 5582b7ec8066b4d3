"""Audio codecs behind one interface (`Codec`); `load_codec(dir)` picks the class from codec.json."""

from __future__ import annotations

import importlib
from pathlib import Path

from tts.codec.base import MANIFEST, Codec, codec_type

# codec.json "type" -> implementing class, imported on first use (xcodec2 pulls in torch)
CODECS: dict[str, str] = {
    "world_vq": "tts.codec.world_vq:WorldVQCodec",
    "xcodec2": "tts.codec.xcodec2.codec:XCodec2Codec",
}
EMBEDDED_CODEC = Path(__file__).resolve().parents[1] / "checkpoints" / "codec-embedded"


def load_codec(directory: str | Path | None = None) -> Codec:
    """Load a codec checkpoint directory (None: the embedded default), verifying its checksum. A codec training
    checkpoint (`checkpoint_*/` holding `codec/`) opens its codec."""
    directory = Path(directory) if directory is not None else EMBEDDED_CODEC
    if not (directory / MANIFEST).is_file() and (directory / "codec" / MANIFEST).is_file():
        directory = directory / "codec"
    kind = codec_type(directory)
    target = CODECS.get(kind)
    if target is None:
        raise ValueError(f"{directory}: unknown codec type {kind!r}; known: {sorted(CODECS)}")
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name).load(directory)


__all__ = ["Codec", "CODECS", "EMBEDDED_CODEC", "load_codec"]
