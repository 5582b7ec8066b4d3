"""Train the X-codec2 decoder (48 kHz super-resolution) with Ray Train (paper section 3.2).

    python rayjobs/codec.py --config rayjobs/configs/codec_production.yaml [key=value ...]
    python rayjobs/codec.py --config rayjobs/configs/codec_embedded.yaml --local   # one process, no Ray
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/codec.py --config ...

Mel (x15), RMS loudness (eq. 3-4), adversarial and feature-matching losses against a multi-period and a
multi-scale STFT discriminator; progressive stages select training rows by the manifest's sample_rate.
Re-running with the same run_dir resumes from its latest checkpoint; --resume DIR continues from another
run's checkpoint. A checkpoint's codec/ directory is a codec `load_codec` opens.
"""

from __future__ import annotations

import argparse
import json

from tts.base.config import load_config
from tts.train.codec.config import CodecTrainConfig
from tts.train.codec.job import prepare, run_local


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="YAML with CodecTrainConfig fields")
    p.add_argument("--resume", default=None, help="checkpoint (or run directory) to continue from")
    p.add_argument("--local", action="store_true", help="run in this process without Ray (one worker)")
    p.add_argument(
        "overrides",
        nargs="*",
        help='key=value, e.g. batch_size=8 model.hidden=256 "stages=[{min_sample_rate: 16000, steps: 100}]"',
    )
    args = p.parse_args()
    try:
        cfg, resume = prepare(load_config(CodecTrainConfig, args.config, args.overrides), args.resume)
    except (FileNotFoundError, ValueError) as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    if args.local:
        result = run_local(cfg, resume)
    else:
        from tts.train.codec.loop import train_worker
        from tts.train.trainer import fit_with

        result = fit_with(train_worker, cfg, resume)
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
