"""Attention for TinySeek: RoPE, and multi-head / grouped-query / multi-query attention with a KV cache.

* RoPE (Su et al., RoFormer, arXiv 2104.09864) in the "rotate-half" convention used by
  transformers' Llama/Qwen2 (and DeepSeek's MLA rope part): the head dimension is split into two
  halves ``x1, x2`` and rotated as ``x * cos + (-x2, x1) * sin``.
* MHA (every head has its own K/V), GQA (``n_kv_heads`` groups share K/V; Ainslie et al., arXiv
  2305.13245) and MQA (one K/V head) are one module with a different ``n_kv_heads``. Their KV
  cache per token is ``2 * n_kv_heads * head_dim`` per layer ([V2] Table 1).
* MLA ([V2] §2.1) plugs in through :func:`build_attention` (``attention="mla"``).

Every attention module here has the same interface, so the model treats the cache as opaque:
``forward(x, positions, past=None, key_mask=None) -> (y, present)`` where ``present`` is the
cache to pass as ``past`` at the next decoding step.

Simplified: no dropout, no sliding window, no flash kernels (PyTorch's
``scaled_dot_product_attention`` picks a kernel by itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from course_lib.model import TinySeekConfig

Cache = tuple[torch.Tensor, ...]


# --------------------------------------------------------------------------------------------
# RoPE
# --------------------------------------------------------------------------------------------
def rope_cos_sin(
    positions: torch.Tensor, dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for the given positions, rotate-half layout.

    positions: (T,) or (B, T) integer positions. Returns cos, sin of shape ``positions.shape + (dim,)``
    where frequency ``i`` sits at columns ``i`` and ``i + dim/2``.
    """
    if dim % 2:
        raise ValueError(f"RoPE needs an even dimension, got dim={dim}; make head_dim even.")
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))  # (dim/2,)
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


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# MHA / GQA / MQA
# --------------------------------------------------------------------------------------------
class GroupedQueryAttention(nn.Module):
    """Causal self-attention with ``n_kv_heads`` K/V heads shared by ``n_heads`` query heads.

    ``n_kv_heads == n_heads`` is MHA, ``n_kv_heads == 1`` is MQA, anything between is GQA.
    The cache holds (k, v), each (B, n_kv_heads, S, head_dim), with RoPE already applied to k.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        rope_theta: float = 10000.0,
    ):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_heads % n_kv_heads:
            raise ValueError(
                f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}; "
                "pick n_kv_heads that divides n_heads (1 = MQA, n_heads = MHA)."
            )
        if head_dim is None:
            if d_model % n_heads:
                raise ValueError(
                    f"d_model={d_model} is not divisible by n_heads={n_heads}; "
                    "change one of them or set head_dim explicitly."
                )
            head_dim = d_model // n_heads
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.rope_theta = rope_theta
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=False)

    def cache_elements_per_token(self) -> int:
        """K and V elements cached per token in this layer: 2 * n_kv_heads * head_dim."""
        return 2 * self.n_kv_heads * self.head_dim

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        past: Cache | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Cache]:
        """x: (B, T, d_model); positions: (T,) absolute positions of the new tokens.

        past: cached (k, v) of the earlier tokens or None. key_mask: (B, S) True for real tokens
        over the whole sequence so far (cache + new), or None when nothing is padded.
        """
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = (
            self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        )  # (B, Hkv, T, hd)
        v = (
            self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        )  # (B, Hkv, T, hd)
        cos, sin = rope_cos_sin(positions, self.head_dim, self.rope_theta)  # (T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, Hkv, S, hd)
            v = torch.cat([past[1], v], dim=2)
        present = (k, v)
        S = k.shape[2]
        rep = self.n_heads // self.n_kv_heads
        if rep > 1:  # each K/V head serves `rep` query heads
            k = k.repeat_interleave(rep, dim=1)  # (B, H, S, hd)
            v = v.repeat_interleave(rep, dim=1)
        q_idx = torch.arange(S - T, S, device=x.device)  # where the new queries sit in the cache
        mask = attention_mask(q_idx, S, key_mask)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.o_proj(y), present


def build_attention(config: TinySeekConfig, layer_idx: int = 0) -> nn.Module:
    """The one place attention modules are made: ``config.attention`` picks the mechanism."""
    kind = config.attention
    if kind in ("mha", "gqa", "mqa"):
        return GroupedQueryAttention(
            config.d_model, config.n_heads, config.n_kv_heads, config.head_dim, config.rope_theta
        )
    raise ValueError(
        f"attention={kind!r} is not available here; use 'mha', 'gqa' or 'mqa'"
        + (" (MLA arrives with notebook 02's module)." if kind == "mla" else ".")
    )
