"""The notebook-02 checkers accept right answers and name each planted mistake."""

from __future__ import annotations

import torch

from course_lib.checks import attention as checks
from course_lib.layers import apply_rope, rope_cos_sin

# ----- absorbed attention weights ----------------------------------------------------------------


def absorbed_right(q_nope, q_rope, c_kv, k_rope, w_uk):
    q_lat = torch.einsum("hd,hdr->hr", q_nope, w_uk)  # (H, d_c)
    scale = (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5
    return ((q_lat @ c_kv.T + q_rope @ k_rope.T) * scale).softmax(-1)


def test_absorbed_attention_accepts_the_right_answer():
    result = checks.check_absorbed_attention(absorbed_right)
    assert result.passed, str(result)


def test_absorbed_attention_names_the_missing_rope_term():
    def no_rope(q_nope, q_rope, c_kv, k_rope, w_uk):
        q_lat = torch.einsum("hd,hdr->hr", q_nope, w_uk)
        return (q_lat @ c_kv.T * (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5).softmax(-1)

    result = checks.check_absorbed_attention(no_rope)
    assert not result.passed and "RoPE part" in result.message


def test_absorbed_attention_names_wrong_scales():
    def scale_with(width):
        def fn(q_nope, q_rope, c_kv, k_rope, w_uk):
            q_lat = torch.einsum("hd,hdr->hr", q_nope, w_uk)
            d = width(q_nope, q_rope, c_kv)
            return ((q_lat @ c_kv.T + q_rope @ k_rope.T) * d**-0.5).softmax(-1)

        return fn

    nope_only = checks.check_absorbed_attention(scale_with(lambda q, r, c: q.shape[-1]))
    assert not nope_only.passed and "1/sqrt(d_nope)" in nope_only.message
    latent = checks.check_absorbed_attention(scale_with(lambda q, r, c: c.shape[-1]))
    assert not latent.passed and "latent size" in latent.message
    none = checks.check_absorbed_attention(scale_with(lambda q, r, c: 1))
    assert not none.passed and "not scaled" in none.message


def test_absorbed_attention_names_missing_softmax_wrong_shape_and_errors():
    def logits(*args):
        return torch.log(absorbed_right(*args))  # differs from the logits by a per-row constant

    def raw(q_nope, q_rope, c_kv, k_rope, w_uk):
        q_lat = torch.einsum("hd,hdr->hr", q_nope, w_uk)
        return (q_lat @ c_kv.T + q_rope @ k_rope.T) * (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5

    assert "before the softmax" in checks.check_absorbed_attention(raw).message
    assert not checks.check_absorbed_attention(logits).passed
    assert "shape" in checks.check_absorbed_attention(lambda *a: absorbed_right(*a).T).message
    broken = checks.check_absorbed_attention(lambda *a: torch.einsum("ab,cd->", *a[:2]))
    assert not broken.passed and "raised" in broken.message


# ----- the cache entry ----------------------------------------------------------------------------


def split(attn, x):
    return attn.wkv_a(x).split([attn.kv_lora_rank, attn.qk_rope_head_dim], dim=-1)


def rotate(attn, k, positions):
    cos, sin = rope_cos_sin(positions, attn.qk_rope_head_dim, attn.rope_theta)
    return apply_rope(k, cos, sin)


def entry_right(attn, x, positions):
    c, k = split(attn, x)
    return attn.kv_norm(c), rotate(attn, k, positions)


def test_cache_entry_accepts_the_right_answer():
    assert checks.check_cache_entry(entry_right).passed


def test_cache_entry_names_the_forgotten_rope_key():
    for fn in (
        lambda attn, x, p: attn.kv_norm(split(attn, x)[0]),
        lambda attn, x, p: (attn.kv_norm(split(attn, x)[0]),),
        lambda attn, x, p: (attn.kv_norm(split(attn, x)[0]), None),
    ):
        result = checks.check_cache_entry(fn)
        assert not result.passed and "RoPE key is missing" in result.message


def test_cache_entry_names_missing_norm_rotation_positions_and_naive_cache():
    def no_norm(attn, x, p):
        c, k = split(attn, x)
        return c, rotate(attn, k, p)

    def no_rotation(attn, x, p):
        c, k = split(attn, x)
        return attn.kv_norm(c), k

    def from_zero(attn, x, p):
        c, k = split(attn, x)
        return attn.kv_norm(c), rotate(attn, k, torch.arange(len(p)))

    def naive(attn, x, p):
        return attn.make_cache(x, "naive", p)

    assert "not normalised" in checks.check_cache_entry(no_norm).message
    assert "without its rotation" in checks.check_cache_entry(no_rotation).message
    assert "positions 0, 1" in checks.check_cache_entry(from_zero).message
    assert "naive cache" in checks.check_cache_entry(naive).message
    assert not checks.check_cache_entry(lambda a, x, p: (x, x, x)).passed


# ----- bytes ------------------------------------------------------------------------------------


def test_cache_bytes_accepts_right_and_names_mistakes():
    def right(layers, d_c, d_r, ctx, batch, e):
        return (d_c + d_r) * layers * ctx * batch * e

    assert checks.check_mla_cache_bytes(right).passed
    cases = {
        "RoPE key is missing": lambda L, c, r, t, b, e: c * L * t * b * e,
        "layers are missing": lambda L, c, r, t, b, e: (c + r) * t * b * e,
        "batch is missing": lambda L, c, r, t, b, e: (c + r) * L * t * e,
        "elements, not bytes": lambda L, c, r, t, b, e: (c + r) * L * t * b,
        "counted twice": lambda L, c, r, t, b, e: (c + 2 * r) * L * t * b * e,
    }
    for what, fn in cases.items():
        result = checks.check_mla_cache_bytes(fn)
        assert not result.passed and what in result.message, (what, str(result))
    # a per-head count (as in the naive cache) is wrong, with the general hint
    per_head = checks.check_mla_cache_bytes(lambda L, c, r, t, b, e: 128 * (c + r) * L * t * b * e)
    assert not per_head.passed and "Table 1" in per_head.hint
