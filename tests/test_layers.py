"""course_lib.layers: RoPE against a hand rotation and transformers, RMSNorm and SwiGLU against
transformers' Llama modules with copied weights."""

import math

import pytest
import torch

from course_lib.layers import RMSNorm, SwiGLU, apply_rope, attention_mask, rope_cos_sin, rotate_half


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


def test_rope_needs_an_even_dimension():
    with pytest.raises(ValueError, match="even"):
        rope_cos_sin(torch.arange(3), 5)


def test_rmsnorm_and_swiglu_match_transformers_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    ours, theirs = RMSNorm(16, eps=1e-6), LlamaRMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        theirs.weight.copy_(ours.weight)
    torch.testing.assert_close(ours(x), theirs(x))
    cfg = LlamaConfig(
        hidden_size=16,
        intermediate_size=24,
        num_attention_heads=2,
        hidden_act="silu",
        mlp_bias=False,
    )
    mlp, swiglu = LlamaMLP(cfg), SwiGLU(16, 24)
    swiglu.load_state_dict(mlp.state_dict())  # the same three weight names
    torch.testing.assert_close(swiglu(x), mlp(x))


def test_attention_mask_is_causal_and_hides_left_padding():
    mask = attention_mask(torch.arange(1, 3), 3)  # two queries at positions 1, 2 of 3 keys
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    padded = attention_mask(torch.arange(1, 3), 3, torch.tensor([[False, True, True]]))
    assert padded.shape == (1, 1, 2, 3)
    assert padded[0, 0].tolist() == [[False, True, False], [False, True, True]]
