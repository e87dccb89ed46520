"""Exercise checkers for notebook 02 (Multi-head Latent Attention).

Each checker runs the learner's function on random cases with known answers and, when the result is
wrong, tries the usual mistakes -- the RoPE key left out of the scores or of the cache, a softmax
scale over the wrong width, an un-normalised or un-rotated cache entry, a per-layer or per-sequence
factor forgotten -- to say which one was made. The expected answers come from the library
(:mod:`course_lib.mla`, :mod:`course_lib.sizing`) or, for the scores, from the naive path: absorbed
attention must give exactly what up-projecting the keys would give.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import architectures
from course_lib.checks.base import CheckResult, failed, passed
from course_lib.mla import MultiHeadLatentAttention


def _raised(err: Exception, what: str) -> CheckResult:
    return failed(f"your function raised {type(err).__name__}: {err}", what)


def _same(a, b, tol: float = 1e-4) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and a.shape == b.shape
        and torch.allclose(a.detach().float(), b.float(), rtol=tol, atol=tol)
    )


# ------------------------------------------------------------------------------------------------
# Exercise: attention weights straight from the latent cache (W^UK folded into the query)
# ------------------------------------------------------------------------------------------------
def _score_case(seed: int, H: int = 3, nope: int = 8, rope: int = 4, r: int = 20, S: int = 7):
    g = torch.Generator().manual_seed(seed)
    return dict(
        q_nope=torch.randn(H, nope, generator=g),
        q_rope=torch.randn(H, rope, generator=g),
        c_kv=torch.randn(S, r, generator=g),
        k_rope=torch.randn(S, rope, generator=g),
        w_uk=torch.randn(H, nope, r, generator=g) / r**0.5,
    )


def _naive_logits(case, scale: float | None = None, rope_term: bool = True) -> torch.Tensor:
    """The definition: up-project the keys, then dot with the query (pre-softmax, scaled)."""
    nope, rope = case["q_nope"].shape[-1], case["q_rope"].shape[-1]
    k_nope = torch.einsum("hdr,sr->hsd", case["w_uk"], case["c_kv"])  # (H, S, d_nope)
    logits = torch.einsum("hd,hsd->hs", case["q_nope"], k_nope)  # (H, S)
    if rope_term:
        logits = logits + case["q_rope"] @ case["k_rope"].T  # shared RoPE key
    return logits * ((nope + rope) ** -0.5 if scale is None else scale)


def check_absorbed_attention(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check ``fn(q_nope (H, d_nope), q_rope (H, d_rope), c_kv (S, d_c), k_rope (S, d_rope),
    w_uk (H, d_nope, d_c)) -> attention weights (H, S)`` of one new token over S cached tokens.

    Expected: ``softmax((q_nope . W_UK c_s + q_rope . k_rope_s) / sqrt(d_nope + d_rope))`` over s.
    """
    for seed in range(3):
        case = _score_case(seed, S=5 + seed)
        try:
            got = fn(**{k: v.clone() for k, v in case.items()})
        except Exception as err:  # the learner's code may raise anything
            return _raised(
                err,
                "Fold W_UK into the query: q_lat = torch.einsum('hd,hdr->hr', q_nope, w_uk) "
                "(H, d_c); then q_lat @ c_kv.T gives the no-RoPE scores (H, S).",
            )
        want_logits = _naive_logits(case)
        want = want_logits.softmax(-1)
        if _same(got, want):
            continue
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return failed(
                f"expected a tensor of shape {tuple(want.shape)} (heads x cached tokens), got {shape}.",
                "One row per head, one column per cached token; softmax over the last axis.",
            )
        nope = case["q_nope"].shape[-1]
        r = case["c_kv"].shape[-1]
        diagnoses = [
            (
                _naive_logits(case, rope_term=False).softmax(-1),
                "the RoPE part of the score is missing",
                "Scores have two parts: q_nope . k_nope (through the latent) PLUS q_rope . k_rope "
                "(the shared, rotated RoPE key). Without it attention cannot see positions.",
            ),
            (
                _naive_logits(case, scale=nope**-0.5).softmax(-1),
                "the softmax scale is 1/sqrt(d_nope)",
                "The query/key width is d_nope + d_rope, so scale by 1/sqrt(d_nope + d_rope) [V2 §2.1.3].",
            ),
            (
                _naive_logits(case, scale=r**-0.5).softmax(-1),
                "the softmax scale uses the latent size d_c",
                "Absorption changes where the dot product happens, not the scale: still "
                "1/sqrt(d_nope + d_rope), the width of the keys you no longer build.",
            ),
            (
                _naive_logits(case, scale=1.0).softmax(-1),
                "the scores are not scaled",
                "Multiply the scores by 1/sqrt(d_nope + d_rope) before the softmax.",
            ),
            (
                want_logits,
                "you returned the scores before the softmax",
                "Apply .softmax(dim=-1) over the cached tokens.",
            ),
        ]
        for value, what, hint in diagnoses:
            if _same(got, value):
                return failed(f"Close, but {what}.", hint)
        return failed(
            "the attention weights differ from the naive path's (up-projected keys).",
            "q_lat = einsum('hd,hdr->hr', q_nope, w_uk); scores = q_lat @ c_kv.T + q_rope @ k_rope.T; "
            "then scale and softmax.",
        )
    return passed(
        "your absorbed attention gives exactly the weights of the naive path, without building "
        "a single per-head key."
    )


# ------------------------------------------------------------------------------------------------
# Exercise: what the absorbed cache stores for new tokens
# ------------------------------------------------------------------------------------------------
def _entry_cases() -> list[tuple[MultiHeadLatentAttention, torch.Tensor, torch.Tensor]]:
    cases = []
    for seed, (B, T, start) in enumerate([(1, 3, 0), (2, 2, 5), (1, 1, 11)]):
        torch.manual_seed(100 + seed)
        attn = MultiHeadLatentAttention(24, 3, 16, 8, 4, 8, q_lora_rank=None).eval()
        with torch.no_grad():
            attn.kv_norm.weight.uniform_(0.5, 1.5)
        x = torch.randn(B, T, 24)
        cases.append((attn, x, torch.arange(start, start + T)))
    return cases


def check_cache_entry(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> CheckResult:
    """Check ``fn(attn, x (B, T, d_model), positions (T,)) -> (c_kv (B, T, d_c), k_rope (B, T, d_rope))``,
    the entries the absorbed MLA cache stores for T new tokens at ``positions``.

    Expected: ``attn.make_cache(x, "absorbed", positions)``.
    """
    from course_lib.layers import apply_rope, rope_cos_sin

    for attn, x, positions in _entry_cases():
        with torch.no_grad():
            try:
                got = fn(attn, x.clone(), positions.clone())
            except Exception as err:  # the learner's code may raise anything
                return _raised(
                    err,
                    "Split attn.wkv_a(x) into [kv_lora_rank, qk_rope_head_dim]; normalise the first "
                    "part with attn.kv_norm, rotate the second with apply_rope.",
                )
            c_kv, k_rope = attn.make_cache(x, "absorbed", positions)
            got_t = (got,) if isinstance(got, torch.Tensor) else tuple(got)
            if len(got_t) == 2 and _same(got_t[0], c_kv) and _same(got_t[1], k_rope):
                continue
            if len(got_t) == 1 or (len(got_t) == 2 and got_t[1] is None):
                if _same(got_t[0], c_kv):
                    return failed(
                        "you cache c_kv only: the RoPE key is missing.",
                        "The latent carries no position. Cache the rotated, head-shared k_rope too: "
                        "it is the (d_c + d_rope) in the paper's (d_c + d_h^R) x l per token.",
                    )
                return failed(
                    "the cache needs two tensors, (c_kv, k_rope).",
                    "Return a tuple: the normalised latent and the rotated RoPE key.",
                )
            if len(got_t) == 2 and got_t[0].dim() == 4:
                return failed(
                    "that is the naive cache (per-head keys and values).",
                    "The absorbed cache stores the latent before any up-projection: no wkv_b.",
                )
            if len(got_t) != 2:
                return failed(f"expected 2 tensors, got {len(got_t)}.", "Return (c_kv, k_rope).")
            raw_c, raw_k = attn.wkv_a(x).split([attn.kv_lora_rank, attn.qk_rope_head_dim], -1)
            from_zero = rope_cos_sin(
                torch.arange(len(positions)), attn.qk_rope_head_dim, attn.rope_theta
            )
            a, b = got_t
            if _same(a, raw_c) and _same(b, k_rope):
                return failed(
                    "c_kv is not normalised.",
                    "DeepSeek applies an RMSNorm to the latent before caching it: attn.kv_norm(c).",
                )
            if _same(a, c_kv) and _same(b, raw_k):
                return failed(
                    "the RoPE key is cached without its rotation.",
                    "Rotate it with apply_rope(k, cos, sin) at the tokens' positions before caching; "
                    "a cached key is never rotated again.",
                )
            if _same(a, c_kv) and _same(b, apply_rope(raw_k, *from_zero)):
                return failed(
                    "the RoPE key is rotated for positions 0, 1, ... instead of `positions`.",
                    "Use rope_cos_sin(positions, ...) with the positions you were given.",
                )
            return failed(
                "the cached tensors differ from what MLA stores.",
                "c_kv = attn.kv_norm(first d_c columns of attn.wkv_a(x)); k_rope = apply_rope(last "
                "d_rope columns, cos, sin) with cos, sin = rope_cos_sin(positions, d_rope, theta).",
            )
    return passed(
        "your cache entry is exactly MLA's: the normalised latent and the rotated RoPE key."
    )


# ------------------------------------------------------------------------------------------------
# Exercise: bytes of an MLA cache
# ------------------------------------------------------------------------------------------------
_BYTES_CASES = [  # (n_layers, kv_lora_rank, qk_rope_head_dim, context, batch, bytes_per_element)
    (61, 512, 64, 1, 1, 2),  # DeepSeek-V3, one token in bf16 (docs/references.md "KV cache")
    (27, 512, 64, 4096, 2, 2),  # DeepSeek-V2-Lite-like
    (4, 64, 16, 100, 3, 4),  # TinySeek-like, fp32
]


def check_mla_cache_bytes(fn: Callable[..., float]) -> CheckResult:
    """Check ``fn(n_layers, kv_lora_rank, qk_rope_head_dim, context_tokens, batch,
    bytes_per_element) -> bytes`` of an absorbed MLA cache. Expected: ``architectures.kv_elements_per_token``
    for ``"mla"`` times tokens, batch and bytes per element."""
    for args in _BYTES_CASES:
        layers, d_c, d_r, ctx, batch, e = args
        try:
            got = float(fn(*args))
        except Exception as err:  # the learner's code may raise anything
            return _raised(err, "Return one number: the bytes held by the whole cache.")
        want = architectures.kv_elements_per_token(
            "mla", layers, kv_lora_rank=d_c, qk_rope_head_dim=d_r
        ) * (ctx * batch * e)
        if abs(got - want) <= 1e-9 * want:
            continue
        diagnoses = [
            (d_c * layers * ctx * batch * e, "the RoPE key is missing", "Each token caches "
             "d_c + d_rope numbers per layer: the latent AND the shared RoPE key."),
            ((d_c + d_r) * ctx * batch * e, "the layers are missing", "Every layer has its own "
             "cache: multiply by n_layers."),
            ((d_c + d_r) * layers * ctx * e, "the batch is missing", "Each sequence in the batch "
             "has its own cache: multiply by batch."),
            ((d_c + d_r) * layers * ctx * batch, "that is elements, not bytes", "Multiply by "
             "bytes_per_element (2 for bf16)."),
            ((d_c + 2 * d_r) * layers * ctx * batch * e, "the RoPE part is counted twice",
             "The RoPE key is shared by all heads and cached once, next to the latent."),
        ]  # fmt: skip
        for value, what, hint in diagnoses:
            if abs(got - value) <= 1e-9 * value:
                return failed(f"for {args}: {what}.", hint)
        return failed(
            f"for (layers, d_c, d_rope, context, batch, bytes) = {args} you gave {got:,.0f} bytes; "
            f"the cache holds {want:,.0f}.",
            "(d_c + d_rope) x layers x context x batch x bytes_per_element [V2 Table 1].",
        )
    return passed("right: DeepSeek-V3 caches 70,272 bytes per token in bf16, a few KB per layer.")
