import math

import pytest
import torch

from course_lib.attention import GroupedQueryAttention, apply_rope, rope_cos_sin, rotate_half


def test_rope_matches_hand_rotation_and_transformers():
    torch.manual_seed(0)
    dim, T = 8, 5
    pos = torch.arange(T)
    cos, sin = rope_cos_sin(pos, dim, theta=10000.0)
    x = torch.randn(2, 3, T, dim)
    y = apply_rope(x, cos, sin)
    # pair i rotates (x[i], x[i+dim/2]) by angle pos * theta^(-2i/dim)
    for t in range(T):
        for i in range(dim // 2):
            a = t * 10000.0 ** (-2 * i / dim)
            x1, x2 = x[..., t, i], x[..., t, i + dim // 2]
            torch.testing.assert_close(y[..., t, i], x1 * math.cos(a) - x2 * math.sin(a))
            torch.testing.assert_close(y[..., t, i + dim // 2], x2 * math.cos(a) + x1 * math.sin(a))
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    from transformers.models.llama.modeling_llama import rotate_half as hf_rotate_half

    torch.testing.assert_close(rotate_half(x), hf_rotate_half(x))
    q_hf, _ = apply_rotary_pos_emb(x, x, cos[None], sin[None])
    torch.testing.assert_close(y, q_hf)


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)

    def score(m, n):
        cm, sm = rope_cos_sin(torch.tensor([m]), 16)
        cn, sn = rope_cos_sin(torch.tensor([n]), 16)
        return (apply_rope(q[None], cm, sm) * apply_rope(k[None], cn, sn)).sum()

    torch.testing.assert_close(score(7, 3), score(14, 10))
    assert not torch.allclose(score(7, 3), score(7, 4))


@pytest.mark.parametrize("n_kv", [4, 2, 1])
def test_causal_and_cache_equals_full(n_kv):
    torch.manual_seed(0)
    att = GroupedQueryAttention(32, 4, n_kv)
    x = torch.randn(2, 9, 32)
    full, (k, v) = att(x, torch.arange(9))
    assert k.shape == (2, n_kv, 9, 8) and att.cache_elements_per_token() == 2 * n_kv * 8
    # changing a later token does not change earlier outputs (causal)
    x2 = x.clone()
    x2[:, 6:] += 1.0
    torch.testing.assert_close(att(x2, torch.arange(9))[0][:, :6], full[:, :6])
    # prefix then one token at a time, with the cache
    out, past = att(x[:, :4], torch.arange(4))
    outs = [out]
    for t in range(4, 9):
        o, past = att(x[:, t : t + 1], torch.arange(t, t + 1), past)
        outs.append(o)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)


def test_gqa_equals_mha_with_repeated_kv_heads():
    torch.manual_seed(0)
    gqa = GroupedQueryAttention(32, 4, 2)
    mha = GroupedQueryAttention(32, 4, 4)
    with torch.no_grad():
        mha.q_proj.weight.copy_(gqa.q_proj.weight)
        mha.o_proj.weight.copy_(gqa.o_proj.weight)
        for name in ("k_proj", "v_proj"):
            w = getattr(gqa, name).weight.view(2, 8, 32)  # (n_kv, hd, d)
            getattr(mha, name).weight.copy_(w.repeat_interleave(2, dim=0).reshape(32, 32))
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(gqa(x, torch.arange(5))[0], mha(x, torch.arange(5))[0])


def test_bad_head_counts():
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        GroupedQueryAttention(32, 4, 3)
    with pytest.raises(ValueError, match="divisible"):
        GroupedQueryAttention(30, 4)
    with pytest.raises(ValueError, match="even"):
        rope_cos_sin(torch.arange(3), 5)
