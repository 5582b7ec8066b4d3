"""Corpus tokenisation: manifest -> read -> DNSMOS -> filters -> codec codes in resumable uint16 shards.

Run it with `rayjobs/tokenize_corpus.py` (`tts.tokenize.pipeline.run`); read shards back with `ShardDataset` or
`read_shard`, which need neither Ray nor the codec.
"""

from tts.tokenize.config import TokenizeConfig
from tts.tokenize.shards import ShardDataset, read_shard

__all__ = ["ShardDataset", "TokenizeConfig", "read_shard"]
