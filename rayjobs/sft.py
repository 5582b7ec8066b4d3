"""Supervised fine-tuning of a SpeechLM for TTS and voice cloning with Ray Train + DeepSpeed ZeRO (section 3.3).

    python rayjobs/sft.py --config rayjobs/configs/sft_embedded.yaml [key=value ...]
    python rayjobs/sft.py --config rayjobs/configs/sft_embedded.yaml --local   # one process, no Ray
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/sft.py --config ...

TTS prompts with the loss on target audio and <|speech_end|> only, a share of them voice-cloning prompts
(reference = another utterance of the speaker). `start_lr_from` starts at the pre-training run's final
learning rate. Re-running with the same run_dir resumes; --resume DIR continues from another checkpoint.
"""

import os
import sys

# `python rayjobs/<job>.py` puts rayjobs/ first on sys.path, where rayjobs/tokenize.py would shadow the stdlib
# `tokenize` (imported by dataclasses -> inspect); put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from tts.train.config import SFTConfig  # noqa: E402
from tts.train.trainer import main  # noqa: E402

if __name__ == "__main__":
    main(SFTConfig, __doc__.splitlines()[0])
