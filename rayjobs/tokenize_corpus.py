"""Tokenise a speech corpus into DNSMOS-annotated, filtered codec shards with Ray Data.

    python rayjobs/tokenize_corpus.py --manifest data/corpus/manifest.jsonl --out runs/tokens \
        [--config C] [key=value ...]
    python rayjobs/tokenize_corpus.py --manifest seed-tts-eval/en/meta.lst --language en --out runs/tokens-seed
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/tokenize_corpus.py ...

Re-running with the same --out skips finished shards and reuses the DNSMOS annotations of unchanged files.
"""

import argparse

from tts.base.cluster import init_ray
from tts.base.config import load_config
from tts.tokenize.config import TokenizeConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", required=True, help="our JSONL manifest, or a seed-tts-eval meta.lst")
    p.add_argument("--out", required=True, help="output directory (shards/, summary.json, bad_files.jsonl, ...)")
    p.add_argument("--config", default=None, help="YAML with TokenizeConfig fields")
    p.add_argument("--language", default=None, help="language of meta.lst rows (overrides the config's)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. shard_size=512 dnsmos_drop_fraction=0.1")
    args = p.parse_args()
    overrides = args.overrides + ([f"language={args.language}"] if args.language else [])
    cfg = load_config(TokenizeConfig, args.config, overrides)

    from tts.tokenize.pipeline import run

    init_ray(include_dashboard=False)
    run(args.manifest, args.out, cfg)


if __name__ == "__main__":
    main()
