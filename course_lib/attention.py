"""MHA / GQA / MQA for TinySeek: one module, a KV cache, and the cache's size.

* MHA (every head has its own K/V), GQA (``n_kv_heads`` groups share K/V; Ainslie et al., arXiv
  2305.13245) and MQA (one K/V head) are one module with a different ``n_kv_heads``. Their KV
  cache per token is ``2 * n_kv_heads * head_dim`` per layer ([V2] Table 1).
* RoPE, the mask and the norm come from :mod:`course_lib.layers`; MLA ([V2] §2.1) lives in
  :mod:`course_lib.mla` with the same interface, and :mod:`course_lib.model` picks one by config.

Every attention module of the course has the same interface, so the model treats the cache as
opaque: ``forward(x, positions, past=None, key_mask=None) -> (y, present)`` where ``present`` is
the cache to pass as ``past`` at the next decoding step.

Simplified: no dropout, no sliding window, no flash kernels (PyTorch's
``scaled_dot_product_attention`` picks a kernel by itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.layers import apply_rope, attention_mask, rope_cos_sin

Cache = tuple[torch.Tensor, ...]


def cache_nbytes(cache) -> int:
    """Bytes held by a cache (a tensor, or any nesting of tuples/lists of tensors), measured from the
    tensors themselves: numel x element size, summed."""
    if isinstance(cache, torch.Tensor):
        return cache.numel() * cache.element_size()
    if isinstance(cache, (tuple, list)):
        return sum(cache_nbytes(c) for c in cache)
    if cache is None:
        return 0
    raise TypeError(f"cache_nbytes expects tensors in tuples/lists, got {type(cache).__name__}.")


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
