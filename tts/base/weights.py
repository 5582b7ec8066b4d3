"""Weights in transit: a state dict packed into one contiguous byte buffer plus an index.

The learner -> rollout-engine sync ships this instead of a dict of tensors. Pickling a tensor pickles its
whole storage, and under DeepSpeed ZeRO-1/2 every parameter is a view into one flat buffer, so a float32
state dict of the embedded policy (57 tensors, 28 MB) became 57 copies of that buffer: 1.5 s to gather and
3-5 s to load, for a reload vLLM does in 0.1 s. One numpy buffer is written once into Ray's object store and
read zero-copy by every engine on the node; the index rebuilds views without copying.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class FlatWeights:
    buffer: np.ndarray  # uint8, every tensor back to back
    index: list[tuple[str, int, str, tuple[int, ...]]]  # (name, byte offset, dtype name, shape)

    @classmethod
    def pack(
        cls, shapes: dict[str, tuple[int, ...]], tensors: Iterable[tuple[str, torch.Tensor]], dtype: torch.dtype
    ) -> FlatWeights:
        """Copy `tensors` (named as in `shapes`, in any order, each visited once: a ZeRO-3 learner gathers one
        parameter at a time) into a buffer of `dtype` laid out from `shapes`."""
        size = dtype.itemsize
        offsets, index, total = {}, [], 0
        for name, shape in shapes.items():
            offsets[name] = total
            index.append((name, total, str(dtype).removeprefix("torch."), tuple(shape)))
            total += int(np.prod(shape, dtype=np.int64)) * size
        buffer = torch.empty(total, dtype=torch.uint8)
        seen = set()
        for name, t in tensors:
            if name not in offsets:
                raise KeyError(f"weight {name!r} is not in the packed layout")
            n = t.numel() * size
            target = buffer[offsets[name] : offsets[name] + n].view(dtype).view(t.shape)
            target.copy_(t.detach())
            seen.add(name)
        if missing := set(offsets) - seen:
            raise ValueError(f"packing weights: {len(missing)} tensor(s) never given, e.g. {sorted(missing)[:3]}")
        return cls(buffer.numpy(), index)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], dtype: torch.dtype) -> FlatWeights:
        return cls.pack({k: tuple(v.shape) for k, v in state.items()}, state.items(), dtype)

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) views into the buffer, no copy; read-only when Ray mapped the buffer from its store."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # non-writable buffer: the loaders only read it
            flat = torch.from_numpy(self.buffer)
        for name, offset, dtype, shape in self.index:
            dt = getattr(torch, dtype)
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            yield name, flat[offset : offset + n].view(dt).view(shape)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.tensors())
