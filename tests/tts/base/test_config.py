"""Tests for YAML + dotted-override dataclass configs (tts/base/config.py)."""

from __future__ import annotations

from dataclasses import asdict as to_dict
from dataclasses import dataclass, field

import pytest

from tts.base.config import load_config
from tts.corpus.generate import CorpusConfig


@dataclass
class Optim:
    lr: float = 0.1
    steps: int = 10


@dataclass
class Job:
    name: str = "default"
    optim: Optim = field(default_factory=Optim)
    tags: list[str] = field(default_factory=list)


def write(tmp_path, text: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_overrides():
    assert load_config(Job) == Job()
    assert load_config(CorpusConfig) == CorpusConfig()


def test_yaml_and_dotted_overrides_into_nested_dataclass(tmp_path):
    path = write(tmp_path, "name: run1\noptim:\n  lr: 0.5\n")
    cfg = load_config(Job, path, ["optim.steps=20", "tags=[a, b]"])
    assert cfg == Job(name="run1", optim=Optim(lr=0.5, steps=20), tags=["a", "b"])
    assert isinstance(cfg.optim, Optim)


def test_override_beats_yaml_and_values_are_yaml_typed(tmp_path):
    path = write(tmp_path, "name: run1\noptim: {lr: 0.5, steps: 3}\n")
    cfg = load_config(Job, path, ["optim.lr=0.001", "name='007'"])
    assert cfg.optim.lr == 0.001 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.steps == 3
    assert cfg.name == "007"  # quoted: a string, not the int 7


def test_exponent_float_override_is_a_float():
    # PyYAML (YAML 1.1) reads 1e-3 as the string '1e-3'; float fields are coerced
    assert load_config(Job, None, ["optim.lr=1e-3"]).optim.lr == 0.001
    with pytest.raises(ValueError, match="expected a number"):
        load_config(Job, None, ["optim.lr=fast"])


def test_dotted_dict_override_without_yaml_merges_into_defaults():
    cfg = load_config(CorpusConfig, None, ["sentences.en=5"])
    assert cfg.sentences["en"] == 5
    assert cfg.sentences["de"] == CorpusConfig().sentences["de"]  # other languages kept


def test_dotted_override_without_yaml_keeps_nested_defaults():
    cfg = load_config(Job, None, ["optim.steps=42"])
    assert cfg.optim == Optim(lr=0.1, steps=42)


def test_corpus_config_from_yaml_and_overrides(tmp_path):
    path = write(tmp_path, "out_dir: /tmp/x\nsentences:\n  en: 4\n  de: 2\nval_fraction: 0.1\n")
    cfg = load_config(CorpusConfig, path, ["seed=7", "workers=1", "sentences.zh=3"])
    assert cfg.out_dir == "/tmp/x"
    assert cfg.sentences == {"en": 4, "de": 2, "zh": 3}
    assert (cfg.val_fraction, cfg.test_fraction, cfg.seed, cfg.workers) == (0.1, 0.05, 7, 1)
    assert cfg.sample_rate == 16000


def test_corpus_config_whole_dict_override():
    cfg = load_config(CorpusConfig, None, ["out_dir=out", "sentences={en: 4}"])
    assert cfg.out_dir == "out" and cfg.sentences == {"en": 4}
    assert to_dict(cfg)["sentences"] == {"en": 4}


def test_unknown_key_lists_known_keys(tmp_path):
    path = write(tmp_path, "name: x\nbogus: 1\n")
    with pytest.raises(ValueError) as err:
        load_config(Job, path)
    msg = str(err.value)
    assert str(path) in msg
    assert "unknown key(s) ['bogus']" in msg
    assert "known: ['name', 'optim', 'tags']" in msg


def test_unknown_nested_key_names_the_section():
    with pytest.raises(ValueError, match=r"config\.optim: unknown key\(s\) \['momentum'\]; known: \['lr', 'steps'\]"):
        load_config(Job, None, ["optim.momentum=0.9"])


def test_unknown_corpus_key_lists_corpus_fields():
    with pytest.raises(ValueError) as err:
        load_config(CorpusConfig, None, ["sentence=3"])
    assert "['sentence']" in str(err.value)
    for name in ("out_dir", "sentences", "sample_rate", "seed", "workers"):
        assert repr(name) in str(err.value)


@pytest.mark.parametrize("bad", ["seed", "seed 7", ""])
def test_bad_override_syntax(bad):
    with pytest.raises(ValueError, match="is not of the form key=value"):
        load_config(CorpusConfig, None, [bad])


def test_override_value_may_contain_equals():
    assert load_config(Job, None, ["name=a=b"]).name == "a=b"


def test_missing_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(FileNotFoundError, match="missing.yaml not found"):
        load_config(CorpusConfig, path)


def test_non_mapping_yaml(tmp_path):
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping, got list"):
        load_config(Job, path)


def test_empty_yaml_gives_defaults(tmp_path):
    assert load_config(Job, write(tmp_path, ""), ["name=z"]) == Job(name="z")


def test_to_dict_is_nested_plain_data():
    assert to_dict(Job(optim=Optim(lr=2.0))) == {"name": "default", "optim": {"lr": 2.0, "steps": 10}, "tags": []}


def test_string_field_refuses_a_yaml_boolean_and_keeps_numbers_as_text():
    """`name=on` would silently become True (YAML 1.1); numbers are fine as text."""
    with pytest.raises(ValueError, match=r"config\.name: expected a string, got True; quote it"):
        load_config(Job, overrides=["name=on"])
    assert load_config(Job, overrides=["name=2024"]).name == "2024"
    assert load_config(Job, overrides=["name='on'"]).name == "on"


@dataclass
class Inner:
    a: int = 1


@dataclass
class Outer:
    maybe: Inner | None = None
    many: list[Inner] = field(default_factory=list)


def test_optional_and_list_sections_are_built_as_their_dataclasses():
    """`X | None` of a dataclass is built from a mapping; `list[X]` from a list of mappings (not taken for an
    optional X)."""
    cfg = load_config(Outer, None, ["maybe.a=3", "many=[{a: 4}, {a: 5}]"])
    assert cfg.maybe == Inner(3) and cfg.many == [Inner(4), Inner(5)]
    assert load_config(Outer).maybe is None
