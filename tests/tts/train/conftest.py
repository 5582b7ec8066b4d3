"""Session-wide tiny inputs: built once, read-only for the tests (each run writes into its own tmp dir)."""

from __future__ import annotations

import pytest

from tests.tts.train.tiny_setup import small_codec, tiny_speechlm, write_corpus


@pytest.fixture(scope="session")
def codec_dir(tmp_path_factory):
    return small_codec(tmp_path_factory.mktemp("codec"))


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory):
    return tiny_speechlm(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="session")
def tokens_dir(tmp_path_factory, codec_dir):
    return write_corpus(tmp_path_factory.mktemp("tokens"), codec_dir)
