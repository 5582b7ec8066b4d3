"""Pre-train a SpeechLM on codec shards with Ray Train + DeepSpeed ZeRO (paper section 3.1).

    python rayjobs/pretrain.py --config rayjobs/configs/pretrain_embedded.yaml [key=value ...]
    python rayjobs/pretrain.py --config rayjobs/configs/pretrain_embedded.yaml --local   # one process, no Ray
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/pretrain.py --config ...

Speech segments up to 40 s in <|speech_start|> ... <|speech_end|> with ~10% text-only transcripts, packed to
2,048 tokens. Re-running with the same run_dir resumes from its latest checkpoint; --resume DIR continues
from another run's checkpoint.
"""

import os
import sys

# `python rayjobs/<job>.py` puts rayjobs/ first on sys.path, where rayjobs/tokenize.py would shadow the stdlib
# `tokenize` (imported by dataclasses -> inspect); put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from tts.train.config import PretrainConfig  # noqa: E402
from tts.train.trainer import main  # noqa: E402

if __name__ == "__main__":
    main(PretrainConfig, __doc__.splitlines()[0])
