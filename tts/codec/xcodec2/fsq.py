"""Finite scalar quantisation: 8 bounded, rounded digits per token, code = their mixed-radix number."""

from __future__ import annotations

import math

import torch
from torch import nn


class FSQ(nn.Module):
    """`dim` features -> one code in [0, prod(levels)) and back, with no learned codebook.

    Key names (`project_in`, `project_out`) match the public checkpoint's `generator.quantizer.*`.
    """

    def __init__(self, levels: tuple[int, ...], dim: int, eps: float = 1e-3):
        super().__init__()
        self.project_in = nn.Linear(dim, len(levels))
        self.project_out = nn.Linear(len(levels), dim)
        lv = torch.tensor(levels, dtype=torch.long)
        self.register_buffer("levels", lv, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor([1, *levels[:-1]]), 0), persistent=False)
        self.eps = eps
        self.codebook_size = math.prod(levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """tanh squashing so that rounding lands on exactly `levels` values per digit."""
        half_l = (self.levels - 1) * (1 + self.eps) / 2
        offset = (self.levels % 2 == 0).to(z.dtype) * 0.5
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [..., dim] -> (digits in [-1, 1) [..., n], codes [...]); rounding is straight-through.

        Bounded twice, as the public model's ResidualFSQ bounds before its inner FSQ bounds again: the same
        codes for the same weights.
        """
        z = self.bound(self.bound(self.project_in(z)))
        half_width = self.levels // 2
        digits = (z + (z.round() - z).detach()) / half_width
        level_idx = (digits * half_width + half_width).round().long()
        return digits, (level_idx * self.basis).sum(-1)

    def indices_to_digits(self, codes: torch.Tensor) -> torch.Tensor:
        half_width = self.levels // 2
        return ((codes.unsqueeze(-1) // self.basis) % self.levels - half_width) / half_width

    def indices_to_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [...] -> quantised features [..., dim]."""
        return self.project_out(self.indices_to_digits(codes).to(self.project_out.weight.dtype))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        digits, codes = self.quantize(z)
        return self.project_out(digits), codes
