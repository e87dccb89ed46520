"""The notebook-02 checkers accept right answers and name each planted mistake."""

from __future__ import annotations

import math

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
    broken = checks.check_absorbed_attention(lambda *a: a[0] @ a[1])  # (H, d_nope) @ (H, d_rope)
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


# ----- absorption: per-head keys are caught, the call survives renamed arguments -----------------
def keys_by_einsum(q_nope, q_rope, c_kv, k_rope, w_uk):
    k_nope = torch.einsum("hdr,sr->hsd", w_uk, c_kv)  # (H, S, d_nope): the naive cache
    scale = (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5
    scores = torch.einsum("hd,hsd->hs", q_nope, k_nope) + q_rope @ k_rope.T
    return (scores * scale).softmax(-1)


def keys_by_matmul(q_nope, q_rope, c_kv, k_rope, w_uk):
    k_nope = w_uk @ c_kv.T  # (H, d_nope, S)
    scale = (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5
    scores = (q_nope[:, None] @ k_nope)[:, 0] + q_rope @ k_rope.T
    return (scores * scale).softmax(-1)


def keys_head_by_head(q_nope, q_rope, c_kv, k_rope, w_uk):
    rows = []
    for h in range(q_nope.shape[0]):
        k_h = c_kv @ w_uk[h].T  # (S, d_nope): one head's keys
        rows.append(k_h @ q_nope[h] + k_rope @ q_rope[h])
    scale = (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5
    return (torch.stack(rows) * scale).softmax(-1)


def test_absorbed_attention_rejects_solutions_that_build_per_head_keys():
    for fn in (keys_by_einsum, keys_by_matmul, keys_head_by_head):
        result = checks.check_absorbed_attention(fn)
        assert not result.passed and "a key per head" in result.message, (fn.__name__, str(result))


def test_absorbed_attention_calls_positionally_and_names_its_signature():
    def renamed(a, b, c, d, e):
        return absorbed_right(a, b, c, d, e)

    assert checks.check_absorbed_attention(renamed).passed
    result = checks.check_absorbed_attention(lambda q_nope, c_kv: None)
    assert not result.passed and "q_nope, q_rope, c_kv, k_rope, w_uk" in result.message

    def stub(q_nope, q_rope, c_kv, k_rope, w_uk):
        raise NotImplementedError("absorb W_UK into the query")

    assert "NotImplementedError" in checks.check_absorbed_attention(stub).message
    def over_heads_fn(q_nope, q_rope, c_kv, k_rope, w_uk):
        q_lat = torch.einsum("hd,hdr->hr", q_nope, w_uk)
        scale = (q_nope.shape[-1] + q_rope.shape[-1]) ** -0.5
        return ((q_lat @ c_kv.T + q_rope @ k_rope.T) * scale).softmax(0)

    over_heads = checks.check_absorbed_attention(over_heads_fn)
    assert not over_heads.passed and "over the heads" in over_heads.message


def test_cache_bytes_names_a_key_and_a_value_per_token():
    result = checks.check_mla_cache_bytes(lambda L, c, r, t, b, e: 2 * (c + r) * L * t * b * e)
    assert not result.passed and "key AND a value" in result.message, str(result)


# ----- RoPE as a matrix ------------------------------------------------------------------------
def rope_matrix_right(position, dim, theta):
    half = dim // 2
    R = torch.zeros(dim, dim)
    for i in range(half):
        angle = position * theta ** (-2 * i / dim)
        c, s = math.cos(angle), math.sin(angle)
        R[i, i], R[i, i + half], R[i + half, i], R[i + half, i + half] = c, -s, s, c
    return R


def test_rope_matrix_checker_accepts_the_rotation_and_checks_relative_positions():
    assert checks.check_rope_matrix(rope_matrix_right).passed
    R = rope_matrix_right(7, 8, 10000.0)
    x = torch.randn(8)
    cos, sin = rope_cos_sin(torch.tensor([7]), 8)
    torch.testing.assert_close(R @ x, apply_rope(x[None], cos, sin)[0])


def test_rope_matrix_checker_names_typical_mistakes():
    def transposed(p, d, t):
        return rope_matrix_right(p, d, t).T

    def interleaved(p, d, t):
        R = torch.zeros(d, d)
        for i in range(d // 2):
            a = p * t ** (-2 * i / d)
            c, s = math.cos(a), math.sin(a)
            R[2 * i, 2 * i], R[2 * i, 2 * i + 1], R[2 * i + 1, 2 * i], R[2 * i + 1, 2 * i + 1] = (
                c,
                -s,
                s,
                c,
            )
        return R

    def no_two(p, d, t):
        return rope_matrix_right(p, d, t**0.5)  # theta**(-i/d) == (theta**0.5)**(-2i/d)

    def no_position(p, d, t):
        return rope_matrix_right(1, d, t)

    expected = {
        transposed: "wrong way",
        interleaved: "interleaved layout",
        no_two: "theta**(-i/dim)",
        no_position: "do not grow with the position",
    }
    for fn, words in expected.items():
        result = checks.check_rope_matrix(fn)
        assert not result.passed and words in result.message, (fn.__name__, str(result))
    assert "position, dim, theta" in checks.check_rope_matrix(lambda p: None).message
    shape = checks.check_rope_matrix(lambda p, d, t: torch.eye(d + 1))
    assert not shape.passed and "tensor" in shape.message
