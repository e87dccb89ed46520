"""The floor every TinySeek module stands on: RMSNorm, RoPE, the SwiGLU feed-forward, the mask.

Nothing here knows about TinySeek's config; ``attention``, ``mla`` and ``moe`` import these pieces,
and ``model`` composes all of them (imports flow one way: layers -> attention/mla/moe -> model).

* RMSNorm (Zhang & Sennrich, arXiv 1910.07467): ``x / rms(x) * weight``, as in Llama and DeepSeek.
* RoPE (Su et al., RoFormer, arXiv 2104.09864) in the "rotate-half" layout of transformers'
  Llama/Qwen2: the head dimension splits into halves ``x1, x2``, rotated as
  ``x * cos + (-x2, x1) * sin``; frequency i turns the pair (i, i + dim/2). DeepSeek's reference
  code rotates *interleaved* pairs (2i, 2i + 1) as complex numbers (:func:`apply_rope_interleaved`).
  The two are one fixed permutation apart (:func:`interleaved_to_half`): permute the rows of the
  projections that make q and k, and every attention score stays the same.
* YaRN (Peng et al., arXiv 2309.00071), the context extension DeepSeek-V2/V3 train and run with
  ([V3] §4.3: scale s = 40, beta 32 and 1, from 4K to 128K tokens): :class:`YaRN` divides the
  low frequencies by s, keeps the high ones and ramps in between, and multiplies the softmax
  scale by ``(0.1 * mscale * ln s + 1)**2`` (the reference ``MLA``'s ``mscale``).
* SwiGLU (Shazeer, arXiv 2002.05202): ``down(silu(gate(x)) * up(x))``, the dense FFN of
  Llama/Qwen/DeepSeek and the shape of every DeepSeekMoE expert.
* The attention mask: causal, and blind to left padding.

Simplified: float32 by default; RoPE tables are computed per call, not cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def rope_inv_freq(dim: int, theta: float = 10000.0) -> torch.Tensor:
    """RoPE's frequencies ``theta ** (-2i / dim)`` for i < dim/2: (dim/2,), fastest first."""
    if dim % 2:
        raise ValueError(f"RoPE needs an even dimension, got dim={dim}; make head_dim even.")
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


@dataclass(frozen=True)
class YaRN:
    """YaRN context extension as DeepSeek-V2/V3 use it ([ref] ``precompute_freqs_cis`` and
    ``MLA.softmax_scale``; transformers' ``rope_type="yarn"``).

    ``factor`` (s): how much longer the context gets; ``original_max_position``: the pre-training
    context (V3: 4096); ``beta_fast``/``beta_slow``: frequencies turning more than ``beta_fast``
    times over the original context are kept, fewer than ``beta_slow`` times divided by s, and a
    linear ramp over the frequency index in between; ``mscale``: the attention-temperature term
    (V3 1.0, V2 0.707). V3's config: ``YaRN(40, 4096, 32, 1, 1.0)``.
    """

    factor: float
    original_max_position: int
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0

    def __post_init__(self):
        if self.factor < 1 or self.original_max_position < 1 or self.beta_fast <= self.beta_slow:
            raise ValueError(
                "YaRN needs factor >= 1, original_max_position >= 1 and beta_fast > beta_slow; "
                "DeepSeek-V3 uses YaRN(factor=40, original_max_position=4096, beta_fast=32, beta_slow=1)."
            )

    def inv_freq(self, dim: int, theta: float = 10000.0) -> torch.Tensor:
        """The rescaled frequencies (dim/2,): ``f / s * (1 - keep) + f * keep``, with ``keep`` 1 for
        the fast frequencies, 0 for the slow ones and a ramp between."""
        freq = rope_inv_freq(dim, theta)

        def index_turning(turns: float) -> float:  # frequency index that turns `turns` times
            return (
                dim
                * math.log(self.original_max_position / (turns * 2 * math.pi))
                / (2 * math.log(theta))
            )

        low = max(math.floor(index_turning(self.beta_fast)), 0)
        high = min(math.ceil(index_turning(self.beta_slow)), dim - 1)
        ramp = (torch.arange(dim // 2, dtype=torch.float32) - low) / max(high - low, 1e-3)
        keep = 1 - ramp.clamp(0, 1)  # 1: extrapolate (keep), 0: interpolate (divide by s)
        return freq / self.factor * (1 - keep) + freq * keep

    @property
    def softmax_factor(self) -> float:
        """What the softmax scale is multiplied by: ``(0.1 * mscale * ln s + 1) ** 2``."""
        if self.factor <= 1:
            return 1.0
        return (0.1 * self.mscale * math.log(self.factor) + 1.0) ** 2


def rope_cos_sin(
    positions: torch.Tensor,
    dim: int,
    theta: float = 10000.0,
    yarn: YaRN | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for the given positions, rotate-half layout.

    positions: (T,) or (B, T) integer positions. Returns cos, sin of shape ``positions.shape + (dim,)``
    where frequency ``i`` (``theta ** (-2i / dim)``, or YaRN's rescaled one) sits at columns ``i``
    and ``i + dim/2``.
    """
    inv_freq = rope_inv_freq(dim, theta) if yarn is None else yarn.inv_freq(dim, theta)
    freqs = positions.to(torch.float32)[..., None] * inv_freq.to(
        positions.device
    )  # (..., T, dim/2)
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


def apply_rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """DeepSeek's layout: rotate the pairs (x[2i], x[2i+1]) by frequency i, as the reference's
    complex multiply does. Takes the same cos/sin tables as :func:`apply_rope` (rotate-half
    layout, whose first half holds one angle per pair) and returns x in the interleaved layout."""
    c, s = cos[..., : cos.shape[-1] // 2].to(x.dtype), sin[..., : sin.shape[-1] // 2].to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., dim/2) each
    return torch.stack([even * c - odd * s, odd * c + even * s], dim=-1).flatten(-2)


def interleaved_to_half(dim: int) -> torch.Tensor:
    """The permutation that takes an interleaved RoPE vector to the rotate-half layout:
    ``x_half = x_interleaved[..., perm]`` with ``perm = [0, 2, 4, ..., 1, 3, 5, ...]`` (the first
    member of every pair, then the second). For any x, position and angles,
    ``apply_rope_interleaved(x)[..., perm] == apply_rope(x[..., perm])``, so permuting the rows of
    the RoPE parts of ``wq``/``wkv_a`` turns a DeepSeek checkpoint into rotate-half weights with
    the same attention scores. :func:`half_to_interleaved` undoes it."""
    if dim % 2:
        raise ValueError(f"RoPE needs an even dimension, got dim={dim}.")
    return torch.cat([torch.arange(0, dim, 2), torch.arange(1, dim, 2)])


def half_to_interleaved(dim: int) -> torch.Tensor:
    """The inverse of :func:`interleaved_to_half`: ``x_interleaved = x_half[..., perm]``."""
    return torch.argsort(interleaved_to_half(dim))


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
