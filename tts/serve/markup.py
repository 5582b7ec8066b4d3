"""Audio markup tags inside a request's `input` ("[happy] Hello! [laugh]", paper section 3.6).

The SpeechLM's tokenizer maps each known tag to its own special token (tts.base.layout.MARKUP_TAGS), so a tag reaches
the prompt as one id. A bracketed lower-case word that is not a known tag would be read as plain characters and
silently do nothing: such input is refused with the list of tags, as is any tag for a model without tag tokens.
"""

from __future__ import annotations

import re

from tts.base.layout import MARKUP_TAGS, TokenLayout

TAG = re.compile(r"\[[a-z][a-z_]*\]")


def model_tags(layout: TokenLayout) -> list[str]:
    """The markup tags this model can render: those its training recorded as learned, else every tag its
    vocabulary has (none for Llasa-style layouts). A tag token the model never saw in training would be noise."""
    known = [t for t in MARKUP_TAGS if t[1:-1] in layout.special_ids]
    return known if layout.learned_tags is None else [t for t in known if t in layout.learned_tags]


def check_markup(layout: TokenLayout, text: str) -> list[str]:
    """The tags used in `text`, in order; ValueError naming the first tag the model does not know."""
    known = model_tags(layout)
    used = TAG.findall(text)
    for tag in used:
        if tag not in known:
            have = f"supported tags: {' '.join(known)}" if known else "this model has learned no markup tags"
            raise ValueError(f"unknown markup tag {tag}; {have}")
    return used
