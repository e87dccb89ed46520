"""course_lib.layers: RoPE against a hand rotation and transformers, DeepSeek's interleaved layout and
the permutation to rotate-half (round trip), YaRN by hand, RMSNorm and SwiGLU against transformers'
Llama modules with copied weights."""

import math

import pytest
import torch

from course_lib.layers import (
    RMSNorm,
    SwiGLU,
    YaRN,
    apply_rope,
    apply_rope_interleaved,
    attention_mask,
    half_to_interleaved,
    interleaved_to_half,
    rope_cos_sin,
    rope_inv_freq,
    rotate_half,
)


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


# ----- DeepSeek's interleaved layout and the permutation to rotate-half ------------------------
def test_interleaved_half_permutation_round_trip():
    for dim in (2, 4, 8, 64):
        to_half, to_inter = interleaved_to_half(dim), half_to_interleaved(dim)
        x = torch.randn(3, dim)
        torch.testing.assert_close(x[..., to_half][..., to_inter], x, rtol=0, atol=0)
        torch.testing.assert_close(x[..., to_inter][..., to_half], x, rtol=0, atol=0)
    assert interleaved_to_half(8).tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert half_to_interleaved(8).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    with pytest.raises(ValueError, match="even"):
        interleaved_to_half(5)


def test_interleaved_rope_is_the_reference_complex_multiply_and_a_permuted_rotate_half():
    torch.manual_seed(0)
    dim, T = 8, 6
    x = torch.randn(2, T, dim)
    pos = torch.arange(100, 100 + T)
    cos, sin = rope_cos_sin(pos, dim)
    ours = apply_rope_interleaved(x, cos, sin)
    # DeepSeek's reference: pairs (2i, 2i+1) as complex numbers times e^{i pos f_i}
    freqs = torch.outer(pos.float(), 1.0 / 10000 ** (torch.arange(0, dim, 2).float() / dim))
    ref = torch.view_as_real(torch.view_as_complex(x.view(2, T, dim // 2, 2)) * torch.polar(
        torch.ones_like(freqs), freqs)).flatten(-2)  # fmt: skip
    torch.testing.assert_close(ours, ref)
    perm = interleaved_to_half(dim)
    torch.testing.assert_close(ours[..., perm], apply_rope(x[..., perm], cos, sin))
    assert (ours - apply_rope(x, cos, sin)).abs().max() > 1e-2  # the layouts really differ
    # scores: q.k is the same in both layouts once q and k are permuted alike
    q, k = torch.randn(dim), torch.randn(dim)
    c1, s1 = rope_cos_sin(torch.tensor([7]), dim)
    c2, s2 = rope_cos_sin(torch.tensor([3]), dim)
    inter = apply_rope_interleaved(q[None], c1, s1) @ apply_rope_interleaved(k[None], c2, s2).T
    half = apply_rope(q[perm][None], c1, s1) @ apply_rope(k[perm][None], c2, s2).T
    torch.testing.assert_close(inter, half)


# ----- YaRN ---------------------------------------------------------------------------------
def test_yarn_by_hand():
    """dim 16, theta 10^4, original context 4096: the frequency index turning beta times over the
    context is 16 ln(4096 / (2 pi beta)) / (2 ln 10^4): 2.62 for beta = 32 (floor 2) and 5.63 for
    beta = 1 (ceil 6). So frequencies 0-2 are kept, 6-7 divided by s, and 3, 4, 5 ramp by 1/4, 2/4, 3/4."""
    y = YaRN(factor=40, original_max_position=4096)
    plain = rope_inv_freq(16)
    keep = torch.tensor([1, 1, 1, 0.75, 0.5, 0.25, 0, 0])
    torch.testing.assert_close(y.inv_freq(16), plain / 40 * (1 - keep) + plain * keep)
    assert y.softmax_factor == pytest.approx((0.1 * math.log(40) + 1) ** 2)  # 1.874 for V3
    assert YaRN(40, 4096, mscale=0.707).softmax_factor == pytest.approx(
        (0.0707 * math.log(40) + 1) ** 2
    )
    torch.testing.assert_close(YaRN(1, 4096).inv_freq(16), plain)  # factor 1: plain RoPE
    c, s = rope_cos_sin(torch.tensor([5000]), 16, yarn=y)
    torch.testing.assert_close(c[0, :8], torch.cos(5000 * y.inv_freq(16)))
    with pytest.raises(ValueError, match="factor"):
        YaRN(factor=0.5, original_max_position=4096)
