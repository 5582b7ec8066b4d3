"""Supervised fine-tuning of a SpeechLM for TTS and voice cloning with Ray Train + DeepSpeed ZeRO (section 3.3).

    python rayjobs/sft.py --config rayjobs/configs/sft_embedded.yaml [key=value ...]
    python rayjobs/sft.py --config rayjobs/configs/sft_embedded.yaml --local   # one process, no Ray
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/sft.py --config ...

TTS prompts with the loss on target audio and <|speech_end|> only, a share of them voice-cloning prompts
(reference = another utterance of the speaker). `start_lr_from` starts at the pre-training run's final
learning rate. Re-running with the same run_dir resumes; --resume DIR continues from another checkpoint.
"""

from tts.train.config import SFTConfig
from tts.train.trainer import main

if __name__ == "__main__":
    main(SFTConfig, __doc__.splitlines()[0])
