"""Build and check the embedded default end to end: corpus -> codec -> round trip -> tiny SpeechLM.

    python rayjobs/embedded.py [--config rayjobs/configs/embedded.yaml] [key=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/embedded.py

The pipeline is `evals.embedded.run`.
"""

from __future__ import annotations

import argparse

from evals.embedded import EmbeddedJobConfig, run
from tts.base.config import load_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="YAML with EmbeddedJobConfig fields")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. corpus.sentences.en=200 check_utterances=4")
    args = p.parse_args()
    run(load_config(EmbeddedJobConfig, args.config, args.overrides))


if __name__ == "__main__":
    main()
