import pickle

import pytest
import torch

from tts.base.weights import FlatWeights


def flat_state() -> dict[str, torch.Tensor]:
    """Parameters as views into one flat buffer, as DeepSpeed ZeRO-1/2 holds them."""
    flat = torch.arange(60, dtype=torch.float32)
    return {"a.weight": flat[:24].view(4, 6), "b.bias": flat[24:30], "c.weight": flat[30:].view(5, 6)}


def test_round_trip_keeps_names_shapes_and_values():
    state = flat_state()
    packed = FlatWeights.from_state_dict(state, torch.float32)
    out = packed.state_dict()
    assert list(out) == list(state)
    for k, v in state.items():
        assert torch.equal(out[k], v), k
    assert packed.nbytes == 60 * 4


def test_pickles_each_value_once_not_the_storage_it_views():
    """A learner's state dict pickled as 1.2 GB for 28 MB of weights (each view took its whole storage along);
    the packed form carries every value once."""
    packed = FlatWeights.from_state_dict(flat_state(), torch.float32)
    assert packed.nbytes < len(pickle.dumps(packed)) < packed.nbytes + 1000


def test_converts_dtype_and_accepts_tensors_in_any_order():
    state = flat_state()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    packed = FlatWeights.pack(shapes, reversed(list(state.items())), torch.bfloat16)
    out = packed.state_dict()
    assert [v.dtype for v in out.values()] == [torch.bfloat16] * 3
    assert torch.equal(out["c.weight"], state["c.weight"].to(torch.bfloat16))
    assert packed.nbytes == 60 * 2


def test_missing_or_unknown_tensors_are_errors():
    state = flat_state()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    with pytest.raises(ValueError, match="1 tensor"):
        FlatWeights.pack(shapes, list(state.items())[:2], torch.float32)
    with pytest.raises(KeyError, match="d.weight"):
        FlatWeights.pack(shapes, [*state.items(), ("d.weight", torch.zeros(2))], torch.float32)


def test_views_of_a_read_only_buffer_load_without_copying():
    packed = FlatWeights.from_state_dict(flat_state(), torch.float32)
    packed.buffer.setflags(write=False)  # as Ray maps it from the object store
    target = torch.zeros(5, 6)
    target.copy_(packed.state_dict()["c.weight"])
    assert target[0, 0].item() == 30.0
