"""Exercise checkers for notebook 02 (Multi-head Latent Attention).

Each checker calls the learner's function positionally on random cases with known answers and,
when the result is wrong, tries the usual mistakes -- per-head keys built after all, the RoPE key
left out of the scores or of the cache, a softmax scale over the wrong width, an un-normalised or
un-rotated cache entry, a per-layer or per-sequence factor forgotten, a rotation the wrong way round
or in DeepSeek's interleaved layout -- to say which one was made. The expected answers come from the
library (:mod:`course_lib.mla`, :mod:`course_lib.layers`, :mod:`course_lib.architectures`) or, for the
scores, from the naive path: absorbed attention must give exactly what up-projecting the keys would
give.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode

from course_lib import architectures
from course_lib.checks.base import CheckResult, call_learner, failed, passed
from course_lib.layers import apply_rope, rope_cos_sin
from course_lib.mla import MultiHeadLatentAttention


def _same(a, b, tol: float = 1e-4) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and a.shape == b.shape
        and torch.allclose(a.detach().float(), b.float(), rtol=tol, atol=tol)
    )


# ------------------------------------------------------------------------------------------------
# Exercise: attention weights straight from the latent cache (W^UK folded into the query)
# ------------------------------------------------------------------------------------------------
# Sizes that no legitimate intermediate shares: a tensor with the cached-token axis S and the
# per-head key width d_nope (or H * d_nope) can only be keys rebuilt per head.
_H, _NOPE, _ROPE, _RANK = 3, 5, 2, 11


def _score_case(seed: int, S: int):
    g = torch.Generator().manual_seed(seed)
    return dict(
        q_nope=torch.randn(_H, _NOPE, generator=g),
        q_rope=torch.randn(_H, _ROPE, generator=g),
        c_kv=torch.randn(S, _RANK, generator=g),
        k_rope=torch.randn(S, _ROPE, generator=g),
        w_uk=torch.randn(_H, _NOPE, _RANK, generator=g) / _RANK**0.5,
    )


class _ShapeWatch(TorchFunctionMode):
    """Records the shape of every tensor a torch function or tensor method returns."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def _per_head_keys(shapes: list[tuple[int, ...]], S: int) -> tuple[int, ...] | None:
    """The first shape that holds keys of width d_nope (one head's, or every head's) for the cached
    tokens: an S axis next to a d_nope (or H * d_nope) axis."""
    for shape in shapes:
        if (
            S in shape
            and (_NOPE in shape or _H * _NOPE in shape)
            and math.prod(shape) % (_NOPE * S) == 0
        ):
            return shape
    return None


def _naive_logits(case, scale: float | None = None, rope_term: bool = True) -> torch.Tensor:
    """The definition: up-project the keys, then dot with the query (pre-softmax, scaled)."""
    nope, rope = case["q_nope"].shape[-1], case["q_rope"].shape[-1]
    k_nope = torch.einsum("hdr,sr->hsd", case["w_uk"], case["c_kv"])  # (H, S, d_nope)
    logits = torch.einsum("hd,hsd->hs", case["q_nope"], k_nope)  # (H, S)
    if rope_term:
        logits = logits + case["q_rope"] @ case["k_rope"].T  # shared RoPE key
    return logits * ((nope + rope) ** -0.5 if scale is None else scale)


_ABSORB_HINT = (
    "q_nope . (W_UK c_s) = (W_UK^T q_nope) . c_s: turn each head's query into a 'latent query' of "
    "size d_c with its own w_uk first, then take its dot products with the cached c_kv rows."
)


def check_absorbed_attention(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check ``fn(q_nope (H, d_nope), q_rope (H, d_rope), c_kv (S, d_c), k_rope (S, d_rope),
    w_uk (H, d_nope, d_c)) -> attention weights (H, S)`` of one new token over S cached tokens.

    Expected: ``softmax((q_nope . W_UK c_s + q_rope . k_rope_s) / sqrt(d_nope + d_rope))`` over s,
    computed WITHOUT building the per-head keys ``W_UK c_s`` (the checker watches the shapes of the
    tensors the function makes).
    """
    for seed, S in enumerate((7, 9, 13)):
        case = _score_case(seed, S)
        watch = _ShapeWatch()
        with watch:
            got, error = call_learner(
                fn, tuple(v.clone() for v in case.values()), "q_nope, q_rope, c_kv, k_rope, w_uk",
                _ABSORB_HINT,
            )  # fmt: skip
        if error is not None:
            return error
        want_logits = _naive_logits(case)
        want = want_logits.softmax(-1)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return failed(
                f"expected a tensor of shape {tuple(want.shape)} (heads x cached tokens), got {shape}.",
                "One row per head, one column per cached token; softmax over the last axis.",
            )
        keys = _per_head_keys(watch.shapes, S)
        if keys is not None:
            return failed(
                f"your function builds a tensor of shape {keys}: a key per head and cached token. "
                "That is the naive cache's work, which absorption avoids.",
                _ABSORB_HINT + " Never multiply w_uk with c_kv: that rebuilds the keys.",
            )
        if _same(got, want):
            continue
        nope, r = _NOPE, _RANK
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
            (
                want_logits.softmax(0),
                "the softmax runs over the heads",
                "Each head's weights over the cached tokens sum to one: .softmax(dim=-1).",
            ),
        ]
        for value, what, hint in diagnoses:
            if _same(got, value):
                return failed(f"Close, but {what}.", hint)
        return failed(
            "the attention weights differ from the naive path's (up-projected keys).",
            _ABSORB_HINT + " Then add the RoPE part of the score, scale, and take the softmax.",
        )
    return passed(
        "your absorbed attention gives exactly the weights of the naive path, and not one per-head "
        "key was built on the way."
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
    for attn, x, positions in _entry_cases():
        with torch.no_grad():
            got, error = call_learner(
                fn, (attn, x.clone(), positions.clone()), "attn, x, positions",
                "Split attn.wkv_a(x) into [kv_lora_rank, qk_rope_head_dim]; normalise the first "
                "part with attn.kv_norm, rotate the second with apply_rope.",
            )  # fmt: skip
            if error is not None:
                return error
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
        out, error = call_learner(
            fn, args, "n_layers, kv_lora_rank, qk_rope_head_dim, context_tokens, batch, "
            "bytes_per_element", "Return one number: the bytes held by the whole cache.",
        )  # fmt: skip
        if error is not None:
            return error
        try:
            got = float(out)
        except (TypeError, ValueError):
            return failed(f"expected one number, got {type(out).__name__}.",
                          "Return the bytes as an int or a float.")  # fmt: skip
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
            (2 * (d_c + d_r) * layers * ctx * batch * e, "you counted a key AND a value per token",
             "That factor 2 is MHA's (one K and one V). MLA caches no separate values: keys and "
             "values are both rebuilt from the one latent c_kv, so d_c + d_rope per token and layer."),
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


# ------------------------------------------------------------------------------------------------
# Exercise: RoPE as a matrix, and why only the distance s - t reaches the score
# ------------------------------------------------------------------------------------------------
def rope_matrix(position: int, dim: int, theta: float = 10000.0) -> torch.Tensor:
    """The (dim, dim) rotation R_p with ``R_p @ x == apply_rope(x)`` at ``position`` (the course's
    rotate-half layout): built by rotating the identity's rows."""
    cos, sin = rope_cos_sin(torch.tensor([position]), dim, theta)
    return apply_rope(torch.eye(dim), cos, sin).T  # row j of apply_rope(I) is R e_j


def _rope_variants(position: int, dim: int, theta: float) -> dict[str, torch.Tensor]:
    half = dim // 2

    def pairs(
        first, second, freq
    ):  # a rotation turning (x[first_i], x[second_i]) by position*freq_i
        R = torch.zeros(dim, dim, dtype=torch.float64)
        for i, (a, b) in enumerate(zip(first, second)):
            angle = position * float(freq[i])
            c, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
            R[a, a], R[a, b], R[b, a], R[b, b] = c, -s, s, c
        return R.float()

    freq = theta ** (-2 * torch.arange(half, dtype=torch.float64) / dim)
    right_pairs = (range(half), range(half, dim))
    return {
        "transposed": rope_matrix(position, dim, theta).T,
        "interleaved": pairs(range(0, dim, 2), range(1, dim, 2), freq),
        "frequencies_without_2": pairs(*right_pairs, theta ** (-torch.arange(half) / dim)),
        "no_position": pairs(*right_pairs, freq / position if position else freq),
    }


_ROPE_MISTAKES = {
    "transposed": ("your matrix turns the wrong way (it is R_p transposed)",
                   "R_p x must equal apply_rope(x): the first half becomes x1 cos - x2 sin, the "
                   "second x2 cos + x1 sin. Put -sin above the diagonal block, +sin below."),
    "interleaved": ("that is DeepSeek's interleaved layout (pairs 2i, 2i+1)",
                    "The course's apply_rope pairs dimension i with i + dim/2 (rotate-half). Both "
                    "layouts satisfy R_t^T R_s = R_(s-t); they differ by a fixed permutation."),
    "frequencies_without_2": ("frequency i is theta**(-i/dim)",
                              "Pair i turns at theta**(-2i/dim), i = 0 .. dim/2 - 1."),
    "no_position": ("the angles do not grow with the position",
                    "Pair i turns by position * theta**(-2i/dim): the same matrix for every "
                    "position would carry no position at all."),
}  # fmt: skip


def check_rope_matrix(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check ``fn(position, dim, theta) -> R (dim, dim)`` with ``R @ x == apply_rope(x)`` at that
    position, then that ``R_t.T @ R_s == R_(s-t)`` holds for it (the score depends on s - t only)."""
    cases = ((3, 8, 10000.0), (17, 6, 10000.0), (1000, 16, 500.0))
    for position, dim, theta in cases:
        got, error = call_learner(fn, (position, dim, theta), "position, dim, theta",
                                  "Start from torch.zeros(dim, dim) and fill one 2x2 rotation "
                                  "per pair (i, i + dim/2).")  # fmt: skip
        if error is not None:
            return error
        want = rope_matrix(position, dim, theta)
        if not isinstance(got, torch.Tensor) or got.shape != (dim, dim):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return failed(f"expected a ({dim}, {dim}) tensor, got {shape}.",
                          "One row and one column per dimension of the rotated vector.")  # fmt: skip
        if _same(got, want):
            continue
        for name, wrong in _rope_variants(position, dim, theta).items():
            if _same(got, wrong):
                return failed(f"position {position}, dim {dim}: {_ROPE_MISTAKES[name][0]}.", _ROPE_MISTAKES[name][1])
        return failed(f"position {position}, dim {dim}: R @ x differs from apply_rope(x).",
                      "Pair i (dimensions i and i + dim/2) turns by the angle position * "
                      "theta**(-2i/dim); everything else is zero.")  # fmt: skip
    for t, s in ((2, 9), (5, 5), (11, 4)):
        lhs = fn(t, 8, 10000.0).double().T @ fn(s, 8, 10000.0).double()
        if not torch.allclose(lhs, rope_matrix(s - t, 8).double(), atol=1e-4):
            return failed(f"R_{t}^T R_{s} differs from R_({s - t}).",
                          "Use the same frequencies for every position.")  # fmt: skip
    return passed(
        "your R_p is RoPE's rotation, and R_t^T R_s = R_(s-t): a query at t and a key at s only "
        "ever see their distance."
    )
