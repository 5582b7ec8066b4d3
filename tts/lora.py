"""LoRA for the markup fine-tune (paper Table 6): peft adapters on attention and MLP, optionally the tag rows.

The markup tags are new special tokens, so plain LoRA would leave their (freshly drawn) embeddings untrained.
`train_embeddings` uses peft's `trainable_token_indices`, which trains just the 15 tag rows of the input
embedding (and of a tied lm_head) instead of the whole vocabulary that `modules_to_save=["embed_tokens",
"lm_head"]` would copy and train: for a 193,856-token LLaMA-3 layout that is 15 rows instead of 2 x 194k.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

from tts.base.layout import MARKUP_TAGS, TokenLayout

ADAPTER = "adapter"  # a LoRA run's checkpoint keeps its adapter here, beside the merged model
LLAMA_QKVO_MLP = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.2
    target_modules: list[str] = field(default_factory=lambda: list(LLAMA_QKVO_MLP))
    train_embeddings: bool = False  # also train the markup-tag embedding rows (needs the token layout)

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora needs rank >= 1, alpha > 0, 0 <= dropout < 1; got {self}")
        if not self.target_modules:
            raise ValueError("lora.target_modules is empty: LoRA would train nothing")


def lora_config(settings: LoraSettings, layout: TokenLayout | None = None) -> LoraConfig:
    tokens = None
    if settings.train_embeddings:
        if layout is None:
            raise ValueError("train_embeddings needs the token layout to find the markup-tag ids")
        tokens = [layout.tag_id(t) for t in MARKUP_TAGS]
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        trainable_token_indices=tokens,
        bias="none",
        task_type="CAUSAL_LM",
    )


def add_lora(model: PreTrainedModel, settings: LoraSettings, layout: TokenLayout | None = None) -> PeftModel:
    """Wrap `model` (modified in place) with fresh adapters; only adapter (and tag-row) parameters train."""
    return get_peft_model(model, lora_config(settings, layout))


def merged_parameters(model: PeftModel) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of every parameter of the merged model, named as in the base model (what a rollout engine
    loads): each adapted weight plus its adapter's delta, computed apart, so the trained weights are not touched
    (merge/unmerge in place would let the frozen base drift by rounding at every weight sync)."""
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    adapted = {name: m for name, m in base.named_modules() if isinstance(m, LoraLayer)}
    for name, p in base.named_parameters():
        if ".lora_" in name:
            continue
        owner = name.rpartition(".base_layer.")[0]
        if owner in adapted and name.endswith(".base_layer.weight"):
            layer = adapted[owner]
            yield name.replace(".base_layer.", "."), p.detach() + layer.get_delta_weight(layer.active_adapters[0])
        else:
            yield name.replace(".base_layer.", "."), p.detach()


def merge(model: PeftModel) -> PreTrainedModel:
    """Fold the adapters into the base weights in place and return the base model; `unmerge` undoes it (weight
    sync uses `merged_parameters`, which leaves the weights alone). For a plain checkpoint without LoRA modules
    use `merge_and_unload()`."""
    model.merge_adapter()
    return model.get_base_model()


def unmerge(model: PeftModel) -> PeftModel:
    """Subtract the adapters from the base weights again, so training continues on the original base."""
    model.unmerge_adapter()
    return model


def save_merged(model: PeftModel, directory: str | Path, state_dict: dict | None = None) -> None:
    """A LoRA run's checkpoint: the merged SpeechLM in `directory` (what every loader, vLLM included, opens)
    and the adapter alone in `directory/adapter` (served as a LoRA voice on the unchanged base). The merge runs
    on a copy, so the frozen base never drifts by merge/unmerge rounding."""
    import copy

    directory = Path(directory)
    model.save_pretrained(directory / ADAPTER)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(directory, state_dict=state_dict)


def save_adapter(model: PeftModel, directory: str | Path) -> Path:
    """Write only the adapter (weights + adapter_config.json), not the base model."""
    model.save_pretrained(directory)
    return Path(directory)


def load_adapter(base: PreTrainedModel, directory: str | Path, trainable: bool = False) -> PeftModel:
    directory = Path(directory)
    if not (directory / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{directory}: not a LoRA adapter directory (no adapter_config.json)")
    return PeftModel.from_pretrained(base, directory, is_trainable=trainable)
