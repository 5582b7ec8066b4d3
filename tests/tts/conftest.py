"""Session-wide tiny GRPO inputs (tiny_setup.py): built once, read-only for the tests."""

from __future__ import annotations

import pytest

from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def codec_dir(tmp_path_factory):
    return tiny_codec(tmp_path_factory.mktemp("codec"))


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory, corpus):
    return tiny_policy(tmp_path_factory.mktemp("policy"), corpus)
