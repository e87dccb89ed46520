"""Tests for course_lib.mla: reference match with transformers, naive == absorbed decoding, the cache.

The reference is transformers' ``DeepseekV3Attention`` (checked against transformers 5.24, the version
pinned in the course environment), built on a tiny config with random weights that we copy into ours,
with plain RoPE and with DeepSeek-V3's YaRN settings.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import architectures
from course_lib.attention import cache_nbytes
from course_lib.layers import YaRN
from course_lib.mla import (
    MultiHeadLatentAttention,
    decode,
    deinterleave_rope_rows,
)
from course_lib.model import TinySeek, TinySeekConfig

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:  # the config/forward API used below is 5.x's
    pytest.skip(
        f"the MLA reference tests use transformers 5.x's DeepseekV3Attention API (checked with "
        f"5.23); found {transformers.__version__}",
        allow_module_level=True,
    )
from transformers import DeepseekV3Config  # noqa: E402
from transformers.models.deepseek_v3.modeling_deepseek_v3 import (  # noqa: E402
    DeepseekV3Attention,
    DeepseekV3RotaryEmbedding,
)

D, H, R, NOPE, ROPE, V = 32, 4, 16, 8, 4, 6


def tiny_mla(q_lora_rank: int | None = 24, seed: int = 0) -> MultiHeadLatentAttention:
    torch.manual_seed(seed)
    attn = MultiHeadLatentAttention(D, H, R, NOPE, ROPE, V, q_lora_rank=q_lora_rank)
    with torch.no_grad():  # random norm gains so a dropped or misplaced norm cannot hide
        for name, p in attn.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return attn.eval()


# DeepSeek-V3's YaRN settings ([ref] config: rope_scaling), as transformers spells them
V3_YARN = {"rope_type": "yarn", "rope_theta": 10_000.0, "factor": 40.0, "beta_fast": 32.0,
           "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0,
           "original_max_position_embeddings": 4096}  # fmt: skip


def hf_attention(
    q_lora_rank: int | None, rope_interleave: bool, seed: int = 1, rope: int = ROPE,
    rope_parameters: dict | None = None,
):  # fmt: skip
    cfg = DeepseekV3Config(
        hidden_size=D,
        num_attention_heads=H,
        num_key_value_heads=H,
        kv_lora_rank=R,
        q_lora_rank=q_lora_rank,
        qk_nope_head_dim=NOPE,
        qk_rope_head_dim=rope,
        v_head_dim=V,
        rope_interleave=rope_interleave,
        rope_parameters=rope_parameters or {"rope_type": "default", "rope_theta": 10_000.0},
        max_position_embeddings=163_840,
        num_hidden_layers=1,
        vocab_size=50,
        intermediate_size=16,
        moe_intermediate_size=8,
        n_routed_experts=4,
        n_group=1,
        topk_group=1,
        num_experts_per_tok=2,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    hf = DeepseekV3Attention(cfg, layer_idx=0).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "layernorm" in name:
                p.uniform_(0.5, 1.5)
    return cfg, hf


def copy_from_hf(hf, ours: MultiHeadLatentAttention, rope_interleave: bool) -> None:
    """Load transformers' weights into ours; interleaved RoPE rows are reordered to rotate-half."""
    rope = ours.qk_rope_head_dim

    def fix(w, n_heads, nope):
        return deinterleave_rope_rows(w, n_heads, nope, rope) if rope_interleave else w

    with torch.no_grad():
        if hf.q_lora_rank is None:
            ours.wq.weight.copy_(fix(hf.q_proj.weight, H, NOPE))
        else:
            ours.wq_a.weight.copy_(hf.q_a_proj.weight)
            ours.q_norm.weight.copy_(hf.q_a_layernorm.weight)
            ours.wq_b.weight.copy_(fix(hf.q_b_proj.weight, H, NOPE))
        ours.wkv_a.weight.copy_(fix(hf.kv_a_proj_with_mqa.weight, 1, R))
        ours.kv_norm.weight.copy_(hf.kv_a_layernorm.weight)
        ours.wkv_b.weight.copy_(hf.kv_b_proj.weight)
        ours.wo.weight.copy_(hf.o_proj.weight)


@pytest.mark.parametrize("q_lora_rank", [None, 24], ids=["no-q-lora", "q-lora"])
@pytest.mark.parametrize("rope_interleave", [False, True], ids=["rotate-half", "interleaved"])
def test_matches_transformers_deepseek_v3_attention(q_lora_rank, rope_interleave):
    cfg, hf = hf_attention(q_lora_rank, rope_interleave)
    ours = MultiHeadLatentAttention(D, H, R, NOPE, ROPE, V, q_lora_rank=q_lora_rank).eval()
    copy_from_hf(hf, ours, rope_interleave)
    assert ours.softmax_scale == pytest.approx(hf.scaling)

    B, T = 2, 9
    torch.manual_seed(2)
    x = torch.randn(B, T, D)
    pos = torch.arange(T)[None].expand(B, -1)
    cos, sin = DeepseekV3RotaryEmbedding(cfg)(x, pos)
    causal = torch.full((T, T), float("-inf")).triu(1)[None, None].expand(B, 1, T, T)
    with torch.no_grad():
        expected, _ = hf(x, (cos, sin), causal)
        full, _ = ours(x)
        naive, _ = decode(ours, x, "naive", prefill=3)
        absorbed, _ = decode(ours, x, "absorbed", prefill=3)
    torch.testing.assert_close(full, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(naive, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(absorbed, expected, rtol=1e-5, atol=1e-5)


def test_yarn_frequencies_match_transformers_at_v3_sizes():
    """V3's real RoPE width (64) and YaRN settings: our frequencies == transformers' rope_type="yarn"."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg, _ = hf_attention(None, True, rope=64, rope_parameters=dict(V3_YARN))
    hf_freq, attention_factor = ROPE_INIT_FUNCTIONS["yarn"](cfg)
    ours = YaRN(40, 4096, 32, 1, 1.0).inv_freq(64)
    torch.testing.assert_close(ours, hf_freq)
    assert attention_factor == 1.0  # mscale == mscale_all_dim: cos/sin are not rescaled
    plain = 1.0 / 10_000 ** (torch.arange(0, 64, 2) / 64)
    ratio = plain / ours  # 1 where kept, 40 where interpolated, between on the ramp
    assert ratio[0] == 1 and ratio[-1] == pytest.approx(40)
    assert ((ratio > 1.01) & (ratio < 39.9)).sum() >= 3  # a real ramp, not a step


@pytest.mark.parametrize("q_lora_rank", [None, 24], ids=["no-q-lora", "q-lora"])
@pytest.mark.parametrize("rope_interleave", [False, True], ids=["rotate-half", "interleaved"])
def test_yarn_attention_matches_transformers_deepseek_v3(q_lora_rank, rope_interleave):
    """DeepSeekV3Attention with V3's YaRN (factor 40, mscale 1) and copied weights, at positions
    far beyond the original 4K context: same softmax scale (x mscale^2), same outputs."""
    rope = 16  # wide enough for the YaRN ramp to fall between kept and divided frequencies
    cfg, hf = hf_attention(q_lora_rank, rope_interleave, rope=rope, rope_parameters=dict(V3_YARN))
    yarn = YaRN(factor=40, original_max_position=4096, beta_fast=32, beta_slow=1, mscale=1.0)
    ours = MultiHeadLatentAttention(D, H, R, NOPE, rope, V, q_lora_rank=q_lora_rank, yarn=yarn)
    copy_from_hf(hf, ours.eval(), rope_interleave)
    assert ours.softmax_scale == pytest.approx(hf.scaling)
    assert ours.softmax_scale == pytest.approx(
        (NOPE + rope) ** -0.5 * (0.1 * math.log(40) + 1) ** 2
    )
    B, T, start = 2, 7, 20_000
    torch.manual_seed(2)
    x = torch.randn(B, T, D)
    pos = torch.arange(start, start + T)
    cos, sin = DeepseekV3RotaryEmbedding(cfg)(x, pos[None].expand(B, -1))
    causal = torch.full((T, T), float("-inf")).triu(1)[None, None].expand(B, 1, T, T)
    with torch.no_grad():
        expected, _ = hf(x, (cos, sin), causal)
        full, _ = ours(x, positions=pos)
        _, past = ours(x[:, :3], positions=pos[:3], mode="absorbed")
        step, _ = ours(x[:, 3:], positions=pos[3:], past=past, mode="absorbed")
        plain = MultiHeadLatentAttention(D, H, R, NOPE, rope, V, q_lora_rank=q_lora_rank).eval()
        plain.load_state_dict(ours.state_dict())
        without, _ = plain(x, positions=pos)
    torch.testing.assert_close(full, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(step, expected[:, 3:], rtol=1e-5, atol=1e-5)
    assert (without - expected).abs().max() > 1e-3  # YaRN really changes the outputs here


@pytest.mark.parametrize("q_lora_rank", [None, 24])
@pytest.mark.parametrize("prefill", [1, 5])
def test_naive_equals_absorbed_over_multistep_decode(q_lora_rank, prefill):
    attn = tiny_mla(q_lora_rank)
    torch.manual_seed(3)
    x = torch.randn(3, 16, D)
    with torch.no_grad():
        full, _ = attn(x)
        naive, naive_cache = decode(attn, x, "naive", prefill=prefill)
        absorbed, lat_cache = decode(attn, x, "absorbed", prefill=prefill)
    torch.testing.assert_close(absorbed, naive, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(naive, full, rtol=1e-5, atol=1e-5)
    # Step by step, each token's output is the same however it got there.
    assert naive_cache[0].shape[2] == lat_cache[0].shape[1] == 16


def test_decode_in_chunks_matches_full_pass():
    attn = tiny_mla()
    torch.manual_seed(4)
    x = torch.randn(2, 12, D)
    with torch.no_grad():
        full, _ = attn(x)
        for mode in ("naive", "absorbed"):
            past, chunks = None, []
            for a in range(0, 12, 4):
                y, past = attn(x[:, a : a + 4], past=past, mode=mode)
                chunks.append(y)
            torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-5, atol=1e-5)


def test_cache_holds_exactly_the_latent_and_rope_key():
    attn = tiny_mla()
    B, T = 2, 10
    x = torch.randn(B, T, D)
    with torch.no_grad():
        _, lat = decode(attn, x, "absorbed", prefill=4)
        _, naive = decode(attn, x, "naive", prefill=4)
        c_kv, k_rope = lat
        k, v = naive
    assert c_kv.shape == (B, T, R) and k_rope.shape == (B, T, ROPE)
    assert cache_nbytes(lat) == B * T * (R + ROPE) * 4
    assert cache_nbytes(lat) == B * T * attn.cache_elements_per_token("absorbed") * 4
    assert k.shape == (B, H, T, NOPE + ROPE) and v.shape == (B, H, T, V)
    assert cache_nbytes(naive) == B * T * H * (NOPE + ROPE + V) * 4
    assert cache_nbytes(naive) == B * T * attn.cache_elements_per_token("naive") * 4
    with torch.no_grad():
        # The cached latent is the normalised compression of the inputs, nothing up-projected...
        c_ref, _ = attn.wkv_a(x).split([R, ROPE], dim=-1)
        torch.testing.assert_close(c_kv, attn.kv_norm(c_ref))
        # ...and the naive cache is exactly its up-projection.
        k_up, v_up = attn.expand(c_kv, k_rope)
        torch.testing.assert_close(k, k_up)
        torch.testing.assert_close(v, v_up)
        # make_cache gives what a step-by-step prefill leaves behind, without attention
        for mode, cache in (("absorbed", lat), ("naive", naive)):
            for got, want in zip(attn.make_cache(x, mode), cache):
                torch.testing.assert_close(got, want)


def test_decode_from_make_cache_matches_full_pass():
    attn = tiny_mla()
    x = torch.randn(2, 9, D)
    with torch.no_grad():
        full, _ = attn(x)
        for mode in ("naive", "absorbed"):
            y, _ = attn(x[:, 8:], past=attn.make_cache(x[:, :8], mode), mode=mode)
            torch.testing.assert_close(y, full[:, 8:], rtol=1e-5, atol=1e-5)


def test_key_mask_hides_left_padding():
    """A left-padded row gives the same outputs on its real tokens as the unpadded sequence."""
    attn = tiny_mla()
    torch.manual_seed(6)
    x = torch.randn(1, 6, D)
    pad = torch.randn(1, 2, D) * 5
    xp = torch.cat([pad, x], dim=1)
    key_mask = torch.tensor([[False, False] + [True] * 6])
    with torch.no_grad():
        want, _ = attn(x)
        for mode in ("naive", "absorbed"):
            # positions restart at 0 for the real tokens, as a padded batch would do
            pos = torch.tensor([0, 0, 0, 1, 2, 3, 4, 5])
            got, past = attn(xp[:, :4], positions=pos[:4], key_mask=key_mask[:, :4], mode=mode)
            step, _ = attn(xp[:, 4:], positions=pos[4:], past=past, key_mask=key_mask, mode=mode)
            got = torch.cat([got, step], dim=1)
            assert torch.isfinite(got).all()
            torch.testing.assert_close(got[:, 2:], want, rtol=1e-5, atol=1e-5)


def test_absorbed_and_naive_caches_are_not_interchangeable():
    attn = tiny_mla()
    x = torch.randn(1, 3, D)
    _, naive = attn(x, mode="naive")
    with pytest.raises(ValueError, match="absorbed"):
        attn(x[:, :1], past=naive, mode="absorbed")


def test_absorbed_cache_is_smaller_by_the_expected_factor():
    attn = tiny_mla()
    ratio = attn.cache_elements_per_token("naive") / attn.cache_elements_per_token("absorbed")
    assert ratio == pytest.approx(H * (NOPE + ROPE + V) / (R + ROPE))
    assert ratio > 1


def test_up_projection_views_are_the_fused_weight():
    attn = tiny_mla()
    w = attn.wkv_b.weight.view(H, NOPE + V, R)
    assert attn.w_uk.shape == (H, NOPE, R) and attn.w_uv.shape == (H, V, R)
    assert torch.equal(attn.w_uk, w[:, :NOPE]) and torch.equal(attn.w_uv, w[:, NOPE:])
    assert attn.w_uk.data_ptr() == attn.wkv_b.weight.data_ptr()  # a view: training updates both


def test_causal_future_tokens_do_not_change_the_past():
    attn = tiny_mla()
    torch.manual_seed(5)
    x = torch.randn(1, 8, D)
    y = x.clone()
    y[:, 5:] = torch.randn(1, 3, D)
    with torch.no_grad():
        (a, _), (b, _) = attn(x), attn(y)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-3


def test_rope_key_carries_position_latent_does_not():
    """The same token at two positions: same c_kv, different k_rope (position lives only there)."""
    attn = tiny_mla()
    tok = torch.randn(1, 1, D)
    x = tok.expand(1, 6, D).contiguous()
    with torch.no_grad():
        _, (c, k) = attn(x, mode="absorbed")
    c, k = c[0], k[0]
    torch.testing.assert_close(c[0], c[5])
    assert (k[0] - k[5]).abs().max() > 1e-3
    # RoPE rotates, so it keeps the norm of every pair
    torch.testing.assert_close(k.norm(dim=-1), k[0].norm().expand(6))


def test_every_weight_gets_a_gradient_in_training():
    attn = tiny_mla().train()
    x = torch.randn(2, 5, D)
    attn(x)[0].pow(2).mean().backward()
    missing = [n for n, p in attn.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_deinterleave_rope_rows_hand_case():
    # one head, nope 1, rope 4: rows [n, r0, r1, r2, r3] -> [n, r0, r2, r1, r3]
    w = torch.arange(5.0)[:, None]
    out = deinterleave_rope_rows(w, n_heads=1, nope=1, rope=4)
    assert out.squeeze(1).tolist() == [0.0, 1.0, 3.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="rows"):
        deinterleave_rope_rows(w, n_heads=2, nope=1, rope=4)


def test_bad_inputs_say_how_to_fix():
    with pytest.raises(ValueError, match="even"):
        MultiHeadLatentAttention(D, H, R, NOPE, 3, V)
    with pytest.raises(ValueError, match="kv_lora_rank"):
        MultiHeadLatentAttention(D, H, 0, NOPE, ROPE, V)
    attn = tiny_mla()
    with pytest.raises(ValueError, match="cache mode"):
        attn(torch.randn(1, 2, D), mode="compressed")
    with pytest.raises(ValueError, match="d_model"):
        attn(torch.randn(4, D))
    with pytest.raises(ValueError, match="prefill"):
        decode(attn, torch.randn(1, 3, D), "naive", prefill=0)


def test_decode_step_seconds_rejects_bad_sizes():
    from course_lib.mla import decode_step_seconds

    with pytest.raises(ValueError, match="context"):
        decode_step_seconds(tiny_mla(), context=0, mode="absorbed")


# ----- TinySeek with attention="mla" ------------------------------------------------------------


def tiny_seek(**kw) -> TinySeekConfig:
    base = dict(d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=64, attention="mla")
    base.update(kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8)
    return TinySeekConfig(**(base | kw))


def test_tinyseek_builds_mla_through_its_config():
    m = TinySeek(tiny_seek(q_lora_rank=12))
    attn = m.blocks[0].attn
    assert isinstance(attn, MultiHeadLatentAttention)
    assert (attn.kv_lora_rank, attn.qk_rope_head_dim, attn.q_lora_rank) == (16, 4, 12)
    assert attn.cache_mode == "absorbed"  # generation uses the absorbed cache by default


@pytest.mark.parametrize("q_lora_rank", [None, 12])
def test_tinyseek_mla_generation_uses_absorbed_cache_and_matches_full_forward(q_lora_rank):
    torch.manual_seed(0)
    m = TinySeek(tiny_seek(q_lora_rank=q_lora_rank)).eval()
    prompt = torch.randint(3, m.config.vocab_size, (2, 5))
    out = m.generate(prompt, 10, temperature=0)
    seq = prompt
    with torch.no_grad():
        for _ in range(10):  # greedy without any cache
            seq = torch.cat([seq, m(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
        assert torch.equal(out, seq)
        logits, cache = m.forward_with_cache(out[:, :6])
        steps = [logits]
        for t in range(6, out.shape[1]):
            lg, cache = m.forward_with_cache(out[:, t : t + 1], cache)
            steps.append(lg)
    # the cache holds latents, not per-head keys: (B, S, d_c) and (B, S, d_rope) per layer
    assert [tuple(t.shape) for t in cache.layers[0]] == [(2, 15, 16), (2, 15, 4)]
    torch.testing.assert_close(torch.cat(steps, 1), m(out), atol=1e-5, rtol=1e-5)


def test_tinyseek_naive_and_absorbed_generate_the_same_tokens():
    torch.manual_seed(0)
    absorbed = TinySeek(tiny_seek()).eval()
    naive = TinySeek(tiny_seek(mla_cache="naive")).eval()
    naive.load_state_dict(absorbed.state_dict())
    prompt = torch.randint(3, absorbed.config.vocab_size, (3, 4))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = absorbed.generate(prompt, 20, temperature=1.0, generator=g1)
    b = naive.generate(prompt, 20, temperature=1.0, generator=g2)
    assert torch.equal(a, b)
    with torch.no_grad():
        _, ca = absorbed.forward_with_cache(a)
        _, cn = naive.forward_with_cache(a)
    assert ca.layers[0][0].dim() == 3 and cn.layers[0][0].dim() == 4  # latent vs per-head K
    assert cn.nbytes() / ca.nbytes() == pytest.approx(4 * (8 + 4 + 8) / (16 + 4))


def test_tinyseek_mla_trains():
    torch.manual_seed(0)
    m = TinySeek(tiny_seek())
    idx = torch.randint(3, 40, (4, 16))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        logits = m(idx[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]  # memorises a fixed batch


@pytest.mark.parametrize(
    "kw",
    [dict(attention="mha"), dict(attention="gqa", n_kv_heads=2), dict(attention="mqa"),
     dict(attention="mla"), dict(attention="mla", q_lora_rank=12)],
    ids=["mha", "gqa", "mqa", "mla", "mla-q-lora"],
)  # fmt: skip
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_tinyseek_cache_bytes_equal_the_sizing_formula(kw, dtype):
    """Bytes measured from the cache tensors == architectures.kv_elements_per_token x tokens x batch x size."""
    cfg = tiny_seek(**kw)
    m = TinySeek(cfg).eval().to(dtype)
    B, prompt, new = 3, 7, 5
    with torch.no_grad():
        _, cache = m.forward_with_cache(torch.randint(3, 40, (B, prompt)))
        for _ in range(new):  # grow it by decoding, as generation does
            _, cache = m.forward_with_cache(torch.randint(3, 40, (B, 1)), cache)
    hd = cfg.head_dim or cfg.d_model // cfg.n_heads
    per_token = architectures.kv_elements_per_token(
        cfg.attention,
        cfg.n_layers,
        n_heads=cfg.n_heads,
        head_dim=hd,
        n_kv_heads=cfg.n_kv_heads,
        kv_lora_rank=cfg.kv_lora_rank,
        qk_rope_head_dim=cfg.qk_rope_head_dim,
    )
    measured = sum(t.numel() * t.element_size() for layer in cache.layers for t in layer)
    assert measured == cache.nbytes()
    bytes_per_element = torch.finfo(dtype).bits // 8
    assert measured == per_token * (prompt + new) * B * bytes_per_element


def test_tinyseek_naive_mla_cache_equals_the_naive_formula():
    cfg = tiny_seek(mla_cache="naive")
    m = TinySeek(cfg).eval()
    with torch.no_grad():
        _, cache = m.forward_with_cache(torch.randint(3, 40, (2, 9)))
    per_token = architectures.kv_elements_per_token(  # naive: per-head K (nope + rope) and V
        "mha", cfg.n_layers, n_heads=cfg.n_heads, head_dim=8 + 4, v_head_dim=8
    )
    assert cache.nbytes() == per_token * 9 * 2 * 4


@settings(max_examples=12, deadline=None)
@given(
    n_heads=st.integers(1, 4),
    nope=st.integers(1, 8),
    rope_half=st.integers(1, 4),
    v_dim=st.integers(1, 8),
    rank=st.integers(1, 12),
    q_rank=st.one_of(st.none(), st.integers(1, 8)),
    T=st.integers(2, 9),
    data=st.data(),
)
def test_naive_equals_absorbed_for_any_sizes_in_float64(
    n_heads, nope, rope_half, v_dim, rank, q_rank, T, data
):
    """In float64 the two decoding paths agree to ~1e-12: the difference is rounding, nothing else."""
    prefill = data.draw(st.integers(1, T))
    torch.manual_seed(T * 100 + rank)
    attn = MultiHeadLatentAttention(16, n_heads, rank, nope, 2 * rope_half, v_dim, q_rank)
    attn = attn.double().eval()
    x = torch.randn(2, T, 16, dtype=torch.float64)
    with torch.no_grad():
        full, _ = attn(x)
        naive, _ = decode(attn, x, "naive", prefill=prefill)
        absorbed, _ = decode(attn, x, "absorbed", prefill=prefill)
    torch.testing.assert_close(absorbed, naive, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(naive, full, rtol=1e-10, atol=1e-12)
