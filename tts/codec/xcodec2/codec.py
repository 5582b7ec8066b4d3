"""`XCodec2Codec`: the XCodec2 network behind the project's `Codec` interface (codec.json + sha256)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tts.codec.base import Codec, read_codec_manifest, write_manifest
from tts.codec.xcodec2.config import ENCODER_SAMPLE_RATE, XCodec2Config
from tts.codec.xcodec2.encoder import W2VBertFeatures
from tts.codec.xcodec2.model import XCodec2

KIND = "xcodec2"
WEIGHTS = "xcodec2.safetensors"


class XCodec2Codec(Codec):
    def __init__(self, model: XCodec2):
        self.model = model.eval()
        self.cfg = model.cfg
        self.device = torch.device("cpu")
        self._semantic: W2VBertFeatures | None = None

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def encoder_sample_rate(self) -> int:
        return ENCODER_SAMPLE_RATE

    @property
    def codebook_size(self) -> int:
        return self.cfg.codebook_size

    def _encode(self, wave: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        hidden = None
        if self.cfg.semantic:
            if not self.cfg.semantic_model_path:
                raise ValueError("this XCodec2 config needs semantic_model_path (a local w2v-BERT 2.0 directory)")
            if self._semantic is None:
                self._semantic = W2VBertFeatures(self.cfg.semantic_model_path, self.cfg.semantic_layer)
            hidden = self._semantic(x)
        hidden = None if hidden is None else hidden.to(self.device)
        return self.model.encode(x.to(self.device), hidden)[0].cpu().numpy()

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self.decode_batch([codes])[0]

    def decode_batch(self, codes) -> list[np.ndarray]:
        checked = [torch.from_numpy(self.check_codes(c).astype(np.int64)).to(self.device) for c in codes]
        return [w.float().cpu().numpy() for w in self.model.decode_batch(checked)]

    def to(self, device: str) -> XCodec2Codec:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        write_manifest(directory, KIND, WEIGHTS, self.cfg.to_dict())
        return directory

    @classmethod
    def codebook_size_of(cls, config: dict) -> int:
        return XCodec2Config.from_dict(config).codebook_size

    @classmethod
    def load(cls, directory: str | Path) -> XCodec2Codec:
        manifest, weights = read_codec_manifest(directory, KIND)
        model = XCodec2(XCodec2Config.from_dict(manifest["config"]))
        model.load_state_dict(load_file(str(weights)), strict=True)
        return cls(model)
