"""Dataclass configs from YAML plus `key=value` overrides: defaults live only in the dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `X | None` of a dataclass X
            optional = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(optional) == 1 and dataclasses.is_dataclass(optional[0]):
                hint = optional[0]
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is list and typing.get_args(hint) else None
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _build(hint, value, f"{where}.{name}")
        elif dataclasses.is_dataclass(item) and isinstance(value, list):
            value = [_build(item, v, f"{where}.{name}[{k}]") if isinstance(v, dict) else v for k, v in enumerate(value)]
        elif hint is str and isinstance(value, bool):  # YAML 1.1 reads name=on / yes / off as booleans
            raise ValueError(f"{where}.{name}: expected a string, got {value!r}; quote it, e.g. {name}='\"on\"'")
        elif hint is str and isinstance(value, (int, float)):
            value = str(value)
        elif hint is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            try:  # YAML 1.1 reads "1e-3" as a string
                value = float(value)
            except ValueError:
                raise ValueError(f"{where}.{name}: expected a number, got {value!r}") from None
        kwargs[name] = value
    return cls(**kwargs)


def _set(data: dict, dotted: str, raw: str, defaults: dict) -> None:
    """Set a dotted key; a mapping the YAML did not give starts from the dataclass defaults, so
    `sentences.en=500` changes one entry instead of replacing the whole mapping."""
    *parents, leaf = dotted.split(".")
    for key in parents:
        if key not in data:
            data[key] = copy.deepcopy(defaults.get(key, {})) if isinstance(defaults.get(key), dict) else {}
        data, defaults = data[key], defaults.get(key) if isinstance(defaults.get(key), dict) else {}
    data[leaf] = yaml.safe_load(raw)


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build `cls` from a YAML file (optional) and `a.b=value` overrides (values parsed as YAML)."""
    data: dict = {}
    defaults = dataclasses.asdict(cls()) if overrides else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found")
        data = yaml.safe_load(path.read_text()) or {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        _set(data, key.strip(), raw, defaults)
    return _build(cls, data, str(path) if path else "config")
