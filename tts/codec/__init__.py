"""Audio codecs behind one interface (`Codec`); `load_codec(dir)` picks the class from codec.json."""

from __future__ import annotations

from pathlib import Path

from tts.codec.base import Codec, read_manifest
from tts.codec.world_vq import WorldVQCodec

CODECS: dict[str, type] = {"world_vq": WorldVQCodec}
EMBEDDED_CODEC = Path(__file__).resolve().parents[1] / "checkpoints" / "codec-embedded"


def load_codec(directory: str | Path | None = None) -> Codec:
    """Load a codec checkpoint directory (None: the embedded default), verifying its checksum."""
    directory = Path(directory) if directory is not None else EMBEDDED_CODEC
    manifest, _ = read_manifest(directory)
    cls = CODECS.get(manifest["type"])
    if cls is None:
        raise ValueError(f"{directory}: unknown codec type {manifest['type']!r}; known: {sorted(CODECS)}")
    return cls.load(directory)


__all__ = ["Codec", "CODECS", "EMBEDDED_CODEC", "load_codec"]
