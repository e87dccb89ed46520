"""Multi-head Latent Attention (MLA), the attention of DeepSeek-V2 and DeepSeek-V3.

Paper: DeepSeek-V2 §2.1 (arXiv 2405.04434): §2.1.2 low-rank KV joint compression, §2.1.3 decoupled
RoPE, §2.1.4 the KV-cache comparison; DeepSeek-V3 §2.1.1 (arXiv 2412.19437). Reference code: deepseek-ai/DeepSeek-V3 ``inference/model.py`` (class ``MLA``),
whose weight names (``wq_a``, ``q_norm``, ``wq_b``, ``wkv_a``, ``kv_norm``, ``wkv_b``, ``wo``) we keep.

The idea in four lines, for one token t (paper symbols in brackets):

1. compress the hidden state to a small latent  ``c_kv = RMSNorm(W_DKV h)``          [§2.1.2]
2. keys and values are up-projections of it      ``k_nope = W_UK c_kv, v = W_UV c_kv`` [§2.1.2]
3. position goes in a separate, small RoPE key shared by all heads
   ``k_rope = RoPE(W_KR h)`` and a per-head RoPE query part                     [§2.1.3]
4. ``score = (q_nope . k_nope + q_rope . k_rope) / sqrt(d_nope + d_rope)``       [§2.1.3]

Because step 2 is linear and carries no position, ``q_nope . (W_UK c) = (W_UK^T q_nope) . c``: the key
up-projection can be folded into the query and the value up-projection into the output, so a decoder
only has to cache ``c_kv`` and ``k_rope`` per token -- (d_c + d_rope) numbers instead of
``n_heads * (d_nope + d_rope + d_v)``. This module implements both decoding paths:

- ``"naive"``: cache the up-projected per-head keys and values (what a plain MHA cache holds);
- ``"absorbed"``: cache only ``c_kv`` and ``k_rope``; W_UK is applied to the query, W_UV after the
  attention-weighted sum of latents (the reference code's ``attn_impl="absorb"``).

Both give the same outputs (to float rounding); ``tests/test_mla.py`` proves it, and proves that the
full path matches transformers' ``DeepseekV3Attention`` with copied weights.

Where we differ from DeepSeek's reference code, and how to match it:
- RoPE uses the rotate-half layout (as transformers' Llama/Qwen2). DeepSeek's checkpoints rotate
  interleaved pairs (transformers' ``rope_interleave=True``); that is one fixed permutation of the
  RoPE rows of ``wq``/``wq_b``/``wkv_a`` (:func:`deinterleave_rope_rows`; ``tests/test_mla.py``
  loads transformers' interleaved weights through it and gets the same outputs).
- YaRN ([V3] §4.3) is optional: ``yarn=layers.YaRN(40, 4096)`` is V3's setting (rescaled RoPE
  frequencies, softmax scale times ``mscale**2``), matching transformers' ``rope_type="yarn"``.
  Without it the softmax scale is exactly ``1/sqrt(d_nope + d_rope)`` (the reference code's too
  when its context is not longer than the original 4K).

What is simplified, plainly:
- No attention dropout, no tensor parallelism, no FP8. Left padding works through ``key_mask``.
- The decode cache grows by concatenation (readable; a serving engine would preallocate pages).
- Modules follow TinySeek's attention interface (as ``course_lib.attention``):
  ``forward(x, positions, past, key_mask) -> (y, present)`` with ``present`` a tuple of tensors.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from course_lib.layers import (
    RMSNorm,
    YaRN,
    apply_rope,
    attention_mask,
    interleaved_to_half,
    rope_cos_sin,
)

CacheMode = Literal["naive", "absorbed"]
Cache = tuple[torch.Tensor, ...]
CACHE_MODES: tuple[str, ...] = ("naive", "absorbed")


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
        cache_mode: the decode cache :meth:`forward` keeps unless told otherwise: ``"absorbed"``
            (``c_kv`` and ``k_rope``) or ``"naive"`` (per-head K and V).
        yarn: YaRN context extension (:class:`course_lib.layers.YaRN`), or None for plain RoPE.
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
        cache_mode: CacheMode = "absorbed",
        yarn: YaRN | None = None,
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
                raise ValueError(f"{name} must be a positive int, got {value!r}; e.g. {name}=16.")
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
        self.yarn = yarn
        # Softmax scale over the whole query/key width, RoPE part included [V2 §2.1.3]; YaRN
        # multiplies it by mscale**2 ([ref] MLA.softmax_scale).
        self.softmax_scale = self.qk_head_dim**-0.5 * (1.0 if yarn is None else yarn.softmax_factor)
        self.cache_mode: str = self._mode(cache_mode)

        h_qk = n_heads * self.qk_head_dim
        if q_lora_rank is None:
            self.wq = nn.Linear(d_model, h_qk, bias=False)  # [W^UQ; W^QR] on h directly
        else:
            self.wq_a = nn.Linear(d_model, q_lora_rank, bias=False)  # W^DQ
            self.q_norm = RMSNorm(q_lora_rank, eps=norm_eps)
            self.wq_b = nn.Linear(q_lora_rank, h_qk, bias=False)  # [W^UQ; W^QR]
        self.wkv_a = nn.Linear(
            d_model, kv_lora_rank + qk_rope_head_dim, bias=False
        )  # [W^DKV; W^KR]
        self.kv_norm = RMSNorm(kv_lora_rank, eps=norm_eps)
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

    def cache_elements_per_token(self, mode: CacheMode | None = None) -> int:
        """Numbers this layer caches per token: d_c + d_rope (absorbed) or per-head K and V (naive)."""
        mode = self._mode(mode)
        if mode == "absorbed":
            return self.kv_lora_rank + self.qk_rope_head_dim
        return self.n_heads * (self.qk_head_dim + self.v_head_dim)

    def _mode(self, mode: str | None) -> str:
        mode = self.cache_mode if mode is None else mode
        if mode not in CACHE_MODES:
            raise ValueError(f"mode={mode!r} is not an MLA cache mode; use one of {CACHE_MODES}.")
        return mode

    # ----- the pieces ---------------------------------------------------------------------------
    def queries(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-head queries split into the no-RoPE part and the rotated RoPE part.

        Returns ``q_nope`` ``(B, H, T, d_nope)`` and ``q_rope`` ``(B, H, T, d_rope)``.
        """
        B, T, _ = x.shape
        q = self.wq(x) if self.q_lora_rank is None else self.wq_b(self.q_norm(self.wq_a(x)))
        q = q.view(B, T, self.n_heads, self.qk_head_dim).transpose(1, 2)  # (B, H, T, d_qk)
        q_nope, q_rope = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        return q_nope, apply_rope(q_rope, cos, sin)

    def latents(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the absorbed cache stores: ``c_kv`` ``(B, T, d_c)`` and the rotated, head-shared
        ``k_rope`` ``(B, T, d_rope)``."""
        c_kv, k_rope = self.wkv_a(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        return self.kv_norm(c_kv), apply_rope(k_rope, cos, sin)

    def expand(self, c_kv: torch.Tensor, k_rope: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Up-project latents to per-head keys and values (what the naive cache stores).

        Returns ``k`` ``(B, H, S, d_nope + d_rope)`` and ``v`` ``(B, H, S, d_v)``.
        """
        B, S, _ = c_kv.shape
        kv = self.wkv_b(c_kv).view(B, S, self.n_heads, self.qk_nope_head_dim + self.v_head_dim)
        k_nope, v = kv.transpose(1, 2).split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)
        k_rope = k_rope[:, None].expand(B, self.n_heads, S, self.qk_rope_head_dim)
        return torch.cat([k_nope, k_rope], dim=-1), v  # (B, H, S, d_qk), (B, H, S, d_v)

    def make_cache(
        self, x: torch.Tensor, mode: CacheMode | None = None, positions: torch.Tensor | None = None
    ) -> Cache:
        """The cache a prefill of ``x`` ``(B, S, d_model)`` leaves behind, without running attention.

        Cheap even for long contexts (no S x S scores); used to time decoding at a given context.
        """
        mode = self._mode(mode)
        positions = torch.arange(x.shape[1], device=x.device) if positions is None else positions
        cos, sin = rope_cos_sin(positions, self.qk_rope_head_dim, self.rope_theta, self.yarn)
        c_kv, k_rope = self.latents(x, cos.to(x.dtype), sin.to(x.dtype))
        return (c_kv, k_rope) if mode == "absorbed" else self.expand(c_kv, k_rope)

    # ----- forward ------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor | None = None,
        past: Cache | None = None,
        key_mask: torch.Tensor | None = None,
        mode: CacheMode | None = None,
    ) -> tuple[torch.Tensor, Cache]:
        """Causal MLA: ``x`` ``(B, T, d_model)`` -> ``(y (B, T, d_model), present)``.

        ``positions`` (T,) are the new tokens' absolute positions (default: right after ``past``).
        ``past`` is the cache returned by the previous call, or None. ``key_mask`` (B, S) marks real
        (non-pad) tokens over cache + new tokens. ``mode`` (default ``self.cache_mode``) picks the
        cache: ``"absorbed"`` returns ``present = (c_kv (B, S, d_c), k_rope (B, S, d_rope))``,
        ``"naive"`` returns ``(k (B, H, S, d_qk), v (B, H, S, d_v))``.

        Without ``past`` (training, or a prompt's prefill) keys and values are up-projected and the
        T tokens attend causally (compute-bound, so the plain path is the fast one). With ``past``,
        an absorbed cache is attended straight from the latents; a naive one as plain attention.
        """
        mode = self._mode(mode)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must be (batch, seq, d_model={self.d_model}), got {tuple(x.shape)}; "
                "add a batch axis with x[None] if needed."
            )
        B, T, _ = x.shape
        if past is not None:
            want = 3 if mode == "absorbed" else 4
            if len(past) != 2 or past[0].dim() != want:
                raise ValueError(
                    f"past does not look like a {mode!r} MLA cache (expected two tensors of rank "
                    f"{want}); pass the `present` this module returned with the same mode."
                )
        s_past = 0 if past is None else past[0].shape[-2]
        if positions is None:
            positions = torch.arange(s_past, s_past + T, device=x.device)
        cos, sin = rope_cos_sin(positions, self.qk_rope_head_dim, self.rope_theta, self.yarn)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)

        q_nope, q_rope = self.queries(x, cos, sin)  # (B, H, T, d_nope), (B, H, T, d_rope)
        c_kv, k_rope = self.latents(x, cos, sin)  # (B, T, d_c), (B, T, d_rope)
        S = s_past + T
        mask = attention_mask(torch.arange(s_past, S, device=x.device), S, key_mask)  # (T, S)

        if mode == "absorbed" and past is not None:
            c_kv = torch.cat([past[0], c_kv], dim=1)  # (B, S, d_c)
            k_rope = torch.cat([past[1], k_rope], dim=1)  # (B, S, d_rope)
            out = self._attend_absorbed(q_nope, q_rope, c_kv, k_rope, mask)
            return self._project_out(out), (c_kv, k_rope)

        k, v = self.expand(c_kv, k_rope)  # (B, H, T, d_qk), (B, H, T, d_v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, S, d_qk)
            v = torch.cat([past[1], v], dim=2)  # (B, H, S, d_v)
        present = (c_kv, k_rope) if mode == "absorbed" else (k, v)
        q = torch.cat([q_nope, q_rope], dim=-1)  # (B, H, T, d_qk)
        scores = (q @ k.transpose(-2, -1)) * self.softmax_scale  # (B, H, T, S)
        out = _masked_softmax(scores, mask) @ v  # (B, H, T, d_v)
        return self._project_out(out), present

    def _attend_absorbed(
        self,
        q_nope: torch.Tensor,
        q_rope: torch.Tensor,
        c_kv: torch.Tensor,
        k_rope: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Attention straight on the cached latents; returns ``(B, H, T, d_v)``."""
        B, H, T, _ = q_nope.shape
        # Fold W^UK into the query: q_nope . (W_UK c) == (W_UK^T q_nope) . c
        q_lat = torch.einsum("bhtd,hdr->bhtr", q_nope, self.w_uk)  # (B, H, T, d_c)
        # Every head reads the same latents (like MQA), so all H*T queries go in one matmul.
        scores = q_lat.reshape(B, H * T, -1) @ c_kv.transpose(1, 2)  # (B, H*T, S)
        scores = scores + q_rope.reshape(B, H * T, -1) @ k_rope.transpose(1, 2)  # shared RoPE key
        probs = _masked_softmax(scores.view(B, H, T, -1) * self.softmax_scale, mask)  # (B, H, T, S)
        o_lat = (probs.reshape(B, H * T, -1) @ c_kv).view(B, H, T, -1)  # (B, H, T, d_c)
        # Fold W^UV into the output: sum_s p_s (W_UV c_s) == W_UV (sum_s p_s c_s)
        return torch.einsum("bhtr,hvr->bhtv", o_lat, self.w_uv)  # (B, H, T, d_v)

    def _project_out(self, out: torch.Tensor) -> torch.Tensor:
        B, _, T, _ = out.shape  # (B, H, T, d_v)
        return self.wo(out.transpose(1, 2).reshape(B, T, self.n_heads * self.v_head_dim))


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over keys where ``mask`` is True. A large negative fill (not -inf) keeps rows with
    no visible key (left padding) finite instead of NaN; real queries always see themselves."""
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)


def deinterleave_rope_rows(
    weight: torch.Tensor, n_heads: int, nope: int, rope: int
) -> torch.Tensor:
    """A DeepSeek (interleaved-RoPE) projection's rows reordered for our rotate-half RoPE.

    ``weight`` is ``(n_heads * (nope + rope), in)`` (``wq``/``wq_b``: per head, nope rows then rope
    rows) or, with ``n_heads=1`` and ``nope`` the latent size, ``wkv_a``'s ``(d_c + rope, in)``.
    The RoPE rows of each head are permuted by :func:`course_lib.layers.interleaved_to_half`; the
    no-RoPE rows stay. Queries and keys then come out permuted the same way, so every score is
    unchanged.
    """
    if weight.shape[0] != n_heads * (nope + rope):
        raise ValueError(
            f"weight has {weight.shape[0]} rows but n_heads * (nope + rope) = "
            f"{n_heads * (nope + rope)}; pass the sizes the projection was built with."
        )
    w = weight.view(n_heads, nope + rope, -1)
    rope_rows = w[:, nope:][:, interleaved_to_half(rope)]
    return torch.cat([w[:, :nope], rope_rows], dim=1).reshape(weight.shape)


def decode(
    attn: MultiHeadLatentAttention, x: torch.Tensor, mode: CacheMode, prefill: int = 1
) -> tuple[torch.Tensor, Cache]:
    """Run ``x`` ``(B, T, d_model)`` through ``attn`` the way a decoder does: a prefill of ``prefill``
    tokens, then one token at a time with a ``mode`` cache. Returns ``(y (B, T, d_model), cache)``.
    """
    if not 1 <= prefill <= x.shape[1]:
        raise ValueError(
            f"prefill={prefill} must be between 1 and the sequence length {x.shape[1]}."
        )
    y, cache = attn(x[:, :prefill], mode=mode)
    outs = [y]
    for t in range(prefill, x.shape[1]):
        y, cache = attn(x[:, t : t + 1], past=cache, mode=mode)
        outs.append(y)
    return torch.cat(outs, dim=1), cache


def decode_step_seconds(
    attn: MultiHeadLatentAttention,
    context: int,
    mode: CacheMode,
    batch: int = 1,
    steps: int = 8,
    seed: int = 0,
) -> float:
    """Fastest of ``steps`` timed decode steps at ``context`` cached tokens, in seconds (for plots and
    benchmarks; never asserted in tests). Single-threaded, and the minimum rather than the mean, so
    that other processes on a shared CPU disturb it as little as possible. The step includes
    appending the new token to the cache (a copy of the cache, as in :meth:`forward`). The cache is
    built with :meth:`MultiHeadLatentAttention.make_cache`."""
    import time

    if context < 1 or steps < 1 or batch < 1:
        raise ValueError("context, steps and batch must be >= 1; e.g. context=1024, steps=8.")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, context + steps, attn.d_model, generator=g)
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: far less disturbed by other work on a shared CPU
    try:
        with torch.inference_mode():
            past = attn.make_cache(x[:, :context], mode)
            for t in range(context, context + steps):
                start = time.perf_counter()
                attn(x[:, t : t + 1], past=past, mode=mode)  # cache not kept: same context
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return min(times)
