"""The floor every TinySeek module stands on: RMSNorm, RoPE, the SwiGLU feed-forward, the mask.

Nothing here knows about TinySeek's config; ``attention``, ``mla`` and ``moe`` import these pieces,
and ``model`` composes all of them (imports flow one way: layers -> attention/mla/moe -> model).

* RMSNorm (Zhang & Sennrich, arXiv 1910.07467): ``x / rms(x) * weight``, as in Llama and DeepSeek.
* RoPE (Su et al., RoFormer, arXiv 2104.09864) in the "rotate-half" layout of transformers'
  Llama/Qwen2: the head dimension splits into halves ``x1, x2``, rotated as
  ``x * cos + (-x2, x1) * sin``. DeepSeek's own checkpoints rotate interleaved pairs instead
  (a fixed permutation, see :func:`course_lib.mla.deinterleave_rope_rows`).
* SwiGLU (Shazeer, arXiv 2002.05202): ``down(silu(gate(x)) * up(x))``, the dense FFN of
  Llama/Qwen/DeepSeek and the shape of every DeepSeekMoE expert.
* The attention mask: causal, and blind to left padding.

Simplified: no YaRN context extension, no interleaved RoPE layout, float32 by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(
    positions: torch.Tensor, dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for the given positions, rotate-half layout.

    positions: (T,) or (B, T) integer positions. Returns cos, sin of shape ``positions.shape + (dim,)``
    where frequency ``i`` (``theta ** (-2i / dim)``) sits at columns ``i`` and ``i + dim/2``.
    """
    if dim % 2:
        raise ValueError(f"RoPE needs an even dimension, got dim={dim}; make head_dim even.")
    steps = torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
    inv_freq = 1.0 / (theta ** (steps / dim))  # (dim/2,)
    freqs = positions.to(torch.float32)[..., None] * inv_freq  # (..., T, dim/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (..., T, dim)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., T, dim) by the angles in cos/sin (T, dim) (or any shape that broadcasts).

    For x laid out as (B, n_heads, T, head_dim), pass cos/sin of shape (T, head_dim) or
    (B, 1, T, head_dim).
    """
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)


class SwiGLU(nn.Module):
    """``down_proj(silu(gate_proj(x)) * up_proj(x))``: (..., d_model) -> (..., d_model)."""

    def __init__(self, d_model: int, d_hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_hidden, bias=False)
        self.up_proj = nn.Linear(d_model, d_hidden, bias=False)
        self.down_proj = nn.Linear(d_hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def attention_mask(
    q_positions: torch.Tensor, kv_len: int, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask, True where a query may attend: causal, and only to real (non-pad) keys.

    q_positions: (T,) index of each query in the cached sequence (the i-th query sits at
    ``kv_len - T + i``). key_mask: (B, kv_len) with True for real tokens, or None.
    Returns (T, kv_len) or (B, 1, T, kv_len).
    """
    k_pos = torch.arange(kv_len, device=q_positions.device)
    mask = k_pos[None, :] <= q_positions[:, None]  # (T, S)
    if key_mask is not None:
        mask = mask[None, None] & key_mask[:, None, None, :].bool()  # (B, 1, T, S)
    return mask
