"""Pre-train a SpeechLM on codec shards with Ray Train + DeepSpeed ZeRO (paper section 3.1).

    python rayjobs/pretrain.py --config rayjobs/configs/pretrain_embedded.yaml [key=value ...]
    python rayjobs/pretrain.py --config rayjobs/configs/pretrain_embedded.yaml --local   # one process, no Ray
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/pretrain.py --config ...

Speech segments up to 40 s in <|speech_start|> ... <|speech_end|> with ~10% text-only transcripts, packed to
2,048 tokens. Re-running with the same run_dir resumes from its latest checkpoint; --resume DIR continues
from another run's checkpoint.
"""

from tts.train.config import PretrainConfig
from tts.train.trainer import main

if __name__ == "__main__":
    main(PretrainConfig, __doc__.splitlines()[0])
