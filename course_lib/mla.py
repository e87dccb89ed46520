"""Multi-head Latent Attention (MLA), the attention of DeepSeek-V2 and DeepSeek-V3.

Paper: DeepSeek-V2 §2.1 (arXiv 2405.04434), equations (9)-(19); DeepSeek-V3 §2.1.1
(arXiv 2412.19437). Reference code: deepseek-ai/DeepSeek-V3 ``inference/model.py`` (class ``MLA``),
whose weight names (``wq_a``, ``q_norm``, ``wq_b``, ``wkv_a``, ``kv_norm``, ``wkv_b``, ``wo``) we keep.

The idea in four lines, for one token t (paper symbols in brackets):

1. compress the hidden state to a small latent  ``c_kv = RMSNorm(W_DKV h)``        [c_t^KV, eq. 9]
2. keys and values are up-projections of it      ``k_nope = W_UK c_kv, v = W_UV c_kv`` [eq. 10-11]
3. position goes in a separate, small RoPE key shared by all heads
   ``k_rope = RoPE(W_KR h)`` and a per-head RoPE query part                     [eq. 12-17]
4. ``score = (q_nope . k_nope + q_rope . k_rope) / sqrt(d_nope + d_rope)``       [eq. 18-19]

Because step 2 is linear and carries no position, ``q_nope . (W_UK c) = (W_UK^T q_nope) . c``: the key
up-projection can be folded into the query and the value up-projection into the output, so a decoder
only has to cache ``c_kv`` and ``k_rope`` per token -- (d_c + d_rope) numbers instead of
``n_heads * (d_nope + d_rope + d_v)``. This module implements both decoding paths:

- ``"naive"``: cache the up-projected per-head keys and values (what a plain MHA cache holds);
- ``"absorbed"``: cache only ``c_kv`` and ``k_rope``; W_UK is applied to the query, W_UV after the
  attention-weighted sum of latents (the reference code's ``attn_impl="absorb"``).

Both give the same outputs (to float rounding); ``tests/test_mla.py`` proves it, and proves that the
full path matches transformers' ``DeepseekV3Attention`` with copied weights.

What is simplified, plainly:
- RoPE uses the rotate-half layout (as transformers' Llama/Qwen2). DeepSeek's checkpoints rotate
  interleaved pairs (transformers' ``rope_interleave=True``); that is only a fixed permutation of the
  RoPE rows of ``wq_b``/``wkv_a``, see :func:`deinterleave_rope_rows`.
- No YaRN context extension: V3's long-context RoPE scaling (factor 40) and its softmax ``mscale``
  correction are not implemented; the softmax scale is exactly ``1/sqrt(d_nope + d_rope)``.
- No attention dropout, no padding mask (the toy batches are unpadded), no tensor parallelism, no FP8.
- The decode cache grows by concatenation (readable; a serving engine would preallocate pages).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


# TEMPORARY until course_lib.attention (issue 3) lands: then import its rope_cos_sin/apply_rope.
def rope_cos_sin(
    positions: torch.Tensor, dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]  # (T, dim / 2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, dim)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, T, H, dim); cos/sin (T, dim)
    x1, x2 = x.chunk(2, dim=-1)
    rot = torch.cat([-x2, x1], dim=-1)
    return x * cos[None, :, None, :] + rot * sin[None, :, None, :]


CacheMode = Literal["naive", "absorbed"]
CACHE_MODES: tuple[str, ...] = ("naive", "absorbed")


def deinterleave_rope_rows(
    weight: torch.Tensor, n_heads: int, nope: int, rope: int
) -> torch.Tensor:
    """Reorder the RoPE rows of a projection from interleaved pairs to the rotate-half layout.

    ``weight`` is ``(n_heads * (nope + rope), in)`` (a query projection) or, with ``n_heads=1`` and
    ``nope`` the latent size, ``(kv_lora_rank + rope, in)`` (``wkv_a``). Within each head, RoPE rows
    ``[0, 1, 2, 3, ...]`` become ``[0, 2, 4, ..., 1, 3, 5, ...]``; an interleaved rotation of the old
    rows then equals a rotate-half rotation of the new ones (same scores, same outputs).
    """
    if weight.shape[0] != n_heads * (nope + rope):
        raise ValueError(
            f"weight has {weight.shape[0]} rows but n_heads * (nope + rope) = "
            f"{n_heads * (nope + rope)}; pass the sizes the projection was built with."
        )
    perm = torch.cat([torch.arange(0, rope, 2), torch.arange(1, rope, 2)])
    w = weight.view(n_heads, nope + rope, -1)
    rope_part = w[:, nope:][:, perm]
    return torch.cat([w[:, :nope], rope_part], dim=1).reshape(weight.shape)


class MLACache:
    """One layer's decode cache. Grows by one entry per generated token.

    ``mode="naive"`` holds ``k`` ``(B, n_heads, S, d_nope + d_rope)`` and ``v`` ``(B, n_heads, S, d_v)``.
    ``mode="absorbed"`` holds ``c_kv`` ``(B, S, kv_lora_rank)`` and ``k_rope`` ``(B, S, d_rope)``.
    :meth:`nbytes` is measured from the tensors themselves.
    """

    def __init__(self, mode: CacheMode = "absorbed") -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"mode={mode!r} is not a cache mode; use one of {CACHE_MODES}.")
        self.mode: str = mode
        self.tensors: dict[str, torch.Tensor] = {}

    @property
    def seq_len(self) -> int:
        """How many tokens the cache holds."""
        if not self.tensors:
            return 0
        t = next(iter(self.tensors.values()))
        return t.shape[-2]

    def append(self, **new: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Concatenate the new tokens' entries along the sequence axis; return the full tensors."""
        for name, value in new.items():
            old = self.tensors.get(name)
            self.tensors[name] = value if old is None else torch.cat([old, value], dim=-2)
        return tuple(self.tensors[name] for name in new)

    def nbytes(self) -> int:
        """Bytes held by the cached tensors (numel x element size), measured, not computed."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.tensors.items())
        return f"MLACache(mode={self.mode!r}, {shapes or 'empty'})"


class MultiHeadLatentAttention(nn.Module):
    """MLA as in DeepSeek-V2/V3 (causal self-attention over ``(B, T, d_model)``).

    Args:
        d_model: hidden size (paper: d).
        n_heads: attention heads (n_h).
        kv_lora_rank: size of the joint KV latent c_kv (d_c); V3: 512.
        qk_nope_head_dim: per-head query/key part without position (d_h); V3: 128.
        qk_rope_head_dim: per-head RoPE query part and the shared RoPE key (d_h^R); V3: 64.
        v_head_dim: per-head value size; V3: 128.
        q_lora_rank: if set, queries are low-rank too (d_c'): ``wq_b(q_norm(wq_a(h)))``; V3: 1536.
            ``None`` uses one projection ``wq`` (V2-Lite does this).
        rope_theta: RoPE base.
        norm_eps: epsilon of the two RMSNorms (DeepSeek uses 1e-6).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        kv_lora_rank: int,
        qk_nope_head_dim: int,
        qk_rope_head_dim: int,
        v_head_dim: int,
        q_lora_rank: int | None = None,
        rope_theta: float = 10_000.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        sizes = {
            "d_model": d_model,
            "n_heads": n_heads,
            "kv_lora_rank": kv_lora_rank,
            "qk_nope_head_dim": qk_nope_head_dim,
            "qk_rope_head_dim": qk_rope_head_dim,
            "v_head_dim": v_head_dim,
        }
        if q_lora_rank is not None:
            sizes["q_lora_rank"] = q_lora_rank
        for name, value in sizes.items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if qk_rope_head_dim % 2:
            raise ValueError(
                f"qk_rope_head_dim={qk_rope_head_dim} must be even (RoPE rotates pairs); try "
                f"{qk_rope_head_dim + 1}."
            )
        self.d_model = d_model
        self.n_heads = n_heads
        self.kv_lora_rank = kv_lora_rank
        self.qk_nope_head_dim = qk_nope_head_dim
        self.qk_rope_head_dim = qk_rope_head_dim
        self.qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
        self.v_head_dim = v_head_dim
        self.q_lora_rank = q_lora_rank
        self.rope_theta = rope_theta
        # Softmax scale over the whole query/key width, RoPE part included [V2 eq. 19].
        self.softmax_scale = self.qk_head_dim**-0.5

        h_qk = n_heads * self.qk_head_dim
        if q_lora_rank is None:
            self.wq = nn.Linear(d_model, h_qk, bias=False)  # [W^UQ; W^QR] on h directly
        else:
            self.wq_a = nn.Linear(d_model, q_lora_rank, bias=False)  # W^DQ
            self.q_norm = nn.RMSNorm(q_lora_rank, eps=norm_eps)
            self.wq_b = nn.Linear(q_lora_rank, h_qk, bias=False)  # [W^UQ; W^QR]
        self.wkv_a = nn.Linear(
            d_model, kv_lora_rank + qk_rope_head_dim, bias=False
        )  # [W^DKV; W^KR]
        self.kv_norm = nn.RMSNorm(kv_lora_rank, eps=norm_eps)
        # [W^UK; W^UV] per head: rows of head i are (nope rows, then value rows).
        self.wkv_b = nn.Linear(kv_lora_rank, n_heads * (qk_nope_head_dim + v_head_dim), bias=False)
        self.wo = nn.Linear(n_heads * v_head_dim, d_model, bias=False)  # W^O

    # ----- the weights under their paper names -------------------------------------------------
    @property
    def w_uk(self) -> torch.Tensor:
        """Key up-projection W^UK, ``(n_heads, d_nope, kv_lora_rank)`` (a view of ``wkv_b``)."""
        w = self.wkv_b.weight.view(self.n_heads, self.qk_nope_head_dim + self.v_head_dim, -1)
        return w[:, : self.qk_nope_head_dim]

    @property
    def w_uv(self) -> torch.Tensor:
        """Value up-projection W^UV, ``(n_heads, d_v, kv_lora_rank)`` (a view of ``wkv_b``)."""
        w = self.wkv_b.weight.view(self.n_heads, self.qk_nope_head_dim + self.v_head_dim, -1)
        return w[:, self.qk_nope_head_dim :]

    def new_cache(self, mode: CacheMode = "absorbed") -> MLACache:
        """An empty decode cache for this layer; pass it to :meth:`forward` step after step."""
        return MLACache(mode)

    def cache_elements_per_token(self, mode: CacheMode = "absorbed") -> int:
        """Numbers cached per token by this layer: d_c + d_rope (absorbed) or per-head K and V."""
        if mode == "absorbed":
            return self.kv_lora_rank + self.qk_rope_head_dim
        if mode == "naive":
            return self.n_heads * (self.qk_head_dim + self.v_head_dim)
        raise ValueError(f"mode={mode!r} is not a cache mode; use one of {CACHE_MODES}.")

    # ----- the pieces ---------------------------------------------------------------------------
    def queries(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-head queries split into the no-RoPE part and the rotated RoPE part.

        Returns ``q_nope`` ``(B, T, n_heads, d_nope)`` and ``q_rope`` ``(B, T, n_heads, d_rope)``.
        """
        B, T, _ = x.shape
        q = self.wq(x) if self.q_lora_rank is None else self.wq_b(self.q_norm(self.wq_a(x)))
        q = q.view(B, T, self.n_heads, self.qk_head_dim)  # (B, T, H, d_nope + d_rope)
        q_nope, q_rope = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        return q_nope, apply_rope(q_rope, cos, sin)

    def latents(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the absorbed cache stores: ``c_kv`` ``(B, T, d_c)`` and the rotated ``k_rope`` ``(B, T, d_rope)``."""
        c_kv, k_rope = self.wkv_a(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        c_kv = self.kv_norm(c_kv)
        # One RoPE key shared by every head: rotate it as a single "head".
        k_rope = apply_rope(k_rope.unsqueeze(2), cos, sin).squeeze(2)
        return c_kv, k_rope

    def expand(self, c_kv: torch.Tensor, k_rope: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Up-project latents to per-head keys and values (what the naive cache stores).

        Returns ``k`` ``(B, H, S, d_nope + d_rope)`` and ``v`` ``(B, H, S, d_v)``.
        """
        B, S, _ = c_kv.shape
        kv = self.wkv_b(c_kv).view(B, S, self.n_heads, self.qk_nope_head_dim + self.v_head_dim)
        k_nope, v = kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)
        k_rope = k_rope[:, :, None, :].expand(B, S, self.n_heads, self.qk_rope_head_dim)
        k = torch.cat([k_nope, k_rope], dim=-1)  # (B, S, H, d_nope + d_rope)
        return k.transpose(1, 2), v.transpose(1, 2)

    # ----- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, cache: MLACache | None = None) -> torch.Tensor:
        """Causal MLA over ``x`` ``(B, T, d_model)`` -> ``(B, T, d_model)``.

        Without a cache (training, or a one-shot pass) keys and values are up-projected and all T
        tokens attend causally. With a cache, the new tokens sit at positions ``cache.seq_len ...``;
        they are appended to the cache (in place) and attend to everything cached so far, along the
        naive or the absorbed path depending on ``cache.mode``.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must be (batch, seq, d_model={self.d_model}), got {tuple(x.shape)}; "
                "add a batch axis with x[None] if needed."
            )
        B, T, _ = x.shape
        start = 0 if cache is None else cache.seq_len
        positions = torch.arange(start, start + T, device=x.device)
        cos, sin = rope_cos_sin(positions, self.qk_rope_head_dim, self.rope_theta)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)

        q_nope, q_rope = self.queries(x, cos, sin)  # (B, T, H, d_nope), (B, T, H, d_rope)
        c_kv, k_rope = self.latents(x, cos, sin)  # (B, T, d_c), (B, T, d_rope)
        mask = _causal_mask(T, start + T, start, x.device)  # (T, S) True = may attend

        if cache is not None and cache.mode == "absorbed":
            c_kv, k_rope = cache.append(c_kv=c_kv, k_rope=k_rope)  # (B, S, d_c), (B, S, d_rope)
            out = self._attend_absorbed(q_nope, q_rope, c_kv, k_rope, mask)
        else:
            k, v = self.expand(c_kv, k_rope)  # (B, H, T, d_nope + d_rope), (B, H, T, d_v)
            if cache is not None:
                k, v = cache.append(k=k, v=v)  # (B, H, S, ...)
            q = torch.cat([q_nope, q_rope], dim=-1).transpose(1, 2)  # (B, H, T, d_nope + d_rope)
            scores = (q @ k.transpose(-2, -1)) * self.softmax_scale  # (B, H, T, S)
            probs = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            out = (probs @ v).transpose(1, 2)  # (B, T, H, d_v)
        return self.wo(out.reshape(B, T, self.n_heads * self.v_head_dim))

    def _attend_absorbed(
        self,
        q_nope: torch.Tensor,
        q_rope: torch.Tensor,
        c_kv: torch.Tensor,
        k_rope: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Attention straight on the cached latents; returns ``(B, T, H, d_v)``."""
        # Fold W^UK into the query: q_nope . (W_UK c) == (W_UK^T q_nope) . c
        q_lat = torch.einsum("bthd,hdr->bhtr", q_nope, self.w_uk)  # (B, H, T, d_c)
        scores = q_lat @ c_kv[:, None].transpose(-2, -1)  # (B, H, T, S)
        scores = scores + q_rope.transpose(1, 2) @ k_rope[:, None].transpose(-2, -1)
        probs = (scores * self.softmax_scale).masked_fill(~mask, float("-inf")).softmax(dim=-1)
        o_lat = probs @ c_kv[:, None]  # (B, H, T, d_c): attention-weighted latents
        # Fold W^UV into the output: sum_s p_s (W_UV c_s) == W_UV (sum_s p_s c_s)
        return torch.einsum("bhtr,hvr->bthv", o_lat, self.w_uv)  # (B, T, H, d_v)


def _causal_mask(T: int, S: int, start: int, device: torch.device) -> torch.Tensor:
    """``(T, S)`` boolean: query i (at position start + i) may attend to keys 0 .. start + i."""
    q_pos = torch.arange(start, start + T, device=device)[:, None]
    return torch.arange(S, device=device)[None, :] <= q_pos


def decode(
    attn: MultiHeadLatentAttention, x: torch.Tensor, mode: CacheMode, prefill: int = 1
) -> tuple[torch.Tensor, MLACache]:
    """Run ``x`` ``(B, T, d_model)`` through ``attn`` the way a decoder does: a prefill of ``prefill``
    tokens, then one token at a time with a ``mode`` cache. Returns ``(outputs (B, T, d_model), cache)``.
    """
    if not 1 <= prefill <= x.shape[1]:
        raise ValueError(
            f"prefill={prefill} must be between 1 and the sequence length {x.shape[1]}."
        )
    cache = attn.new_cache(mode)
    outs = [attn(x[:, :prefill], cache)]
    for t in range(prefill, x.shape[1]):
        outs.append(attn(x[:, t : t + 1], cache))
    return torch.cat(outs, dim=1), cache


__all__ = [
    "CACHE_MODES",
    "MLACache",
    "MultiHeadLatentAttention",
    "decode",
    "deinterleave_rope_rows",
]
