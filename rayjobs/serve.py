"""Streaming speech synthesis on Ray Serve (paper section 5): an OpenAI-compatible HTTP API.

    python rayjobs/serve.py [--config rayjobs/configs/serve_embedded.yaml] [--port 8000] [key=value ...]
    serve run rayjobs/configs/serve_deploy.yaml        # or: serve deploy, against a running cluster

Standalone it starts a local Ray, serves on 127.0.0.1:<port> and blocks until interrupted (Ctrl-C); under
`ray job submit` it joins the job's cluster. Docs at http://127.0.0.1:<port>/docs.
"""

import argparse
import logging
import time

DEFAULT_CONFIG = "rayjobs/configs/serve_embedded.yaml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML with ServeConfig fields ({DEFAULT_CONFIG})")
    parser.add_argument("--port", type=int, help="HTTP port (default: the config's, 8000)")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. generation.backend=hf api_key=secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from ray import serve

    from tts.base.config import load_config
    from tts.serve.app import start
    from tts.serve.config import ServeConfig

    cfg = load_config(ServeConfig, args.config, args.overrides)
    if args.port is not None:
        cfg.port = args.port
    url = start(cfg)
    print(f"serving on {url} (playground: /, arena: /arena, docs: /docs); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()


if __name__ == "__main__":
    main()
