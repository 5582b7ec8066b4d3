"""XCodec2-style codec: w2v-BERT-fused encoder, FSQ (65,536 codes at 50/s), Vocos-transformer decoder + iSTFT."""

from tts.codec.xcodec2.codec import KIND, XCodec2Codec
from tts.codec.xcodec2.config import CONFIGS, XCodec2Config, get_config
from tts.codec.xcodec2.model import XCodec2, info

__all__ = ["CONFIGS", "KIND", "XCodec2", "XCodec2Codec", "XCodec2Config", "get_config", "info"]
