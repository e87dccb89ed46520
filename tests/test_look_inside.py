"""course_lib.look_inside on tiny random Qwen2 and Llama models built locally."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import look_inside as li
from course_lib.r1 import chat, loader


@pytest.fixture(scope="module")
def sequence(lm):
    c = chat.sample(lm, "What is 2+3?", 1, max_new_tokens=12, seed=0)[0][0]
    return torch.cat([c.prompt_ids, c.completion_ids]), len(c.prompt_ids)


@pytest.fixture(scope="module")
def llama(lm):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(lm.tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(cfg).eval()


def test_token_confidence_matches_a_manual_softmax(lm, sequence):
    ids, p = sequence
    conf = li.token_confidence(lm.model, lm.tokenizer, ids, p, k=3)
    assert len(conf) == len(ids) - p
    with torch.no_grad():
        logits = lm.model(ids[None]).logits[0]
    for j, t in enumerate(range(p, len(ids))):
        row = logits[t - 1].double()
        e = torch.exp(row - row.max())
        probs = e / e.sum()
        assert conf.probs[j].item() == pytest.approx(probs[ids[t]].item(), rel=1e-4)
        ent = -sum(q * math.log(q) for q in probs.tolist() if q > 0)
        assert conf.entropy[j].item() == pytest.approx(ent, rel=1e-4)
        assert conf.topk_ids[j, 0].item() == probs.argmax().item()
        assert conf.topk_probs[j, 0] >= conf.probs[j] - 1e-6
    assert conf.tokens == [lm.tokenizer.decode([i]) for i in ids[p:].tolist()]
    assert conf.topk_tokens[0][0] == lm.tokenizer.decode([conf.topk_ids[0, 0].item()])
    assert bool((conf.entropy <= math.log(logits.shape[-1]) + 1e-5).all())


def test_token_confidence_errors(lm, sequence):
    ids, p = sequence
    with pytest.raises(ValueError, match="prompt_len"):
        li.token_confidence(lm.model, lm.tokenizer, ids, len(ids))
    with pytest.raises(ValueError, match="one sequence"):
        li.token_confidence(lm.model, lm.tokenizer, torch.stack([ids, ids]), p)


def test_hesitation_moments():
    tokens = ["Okay", ",", " wait", " a", " Wa", "it", "!", " Hmm", " butter", ".", "But", "⏎"]
    assert li.hesitation_moments(tokens) == [2, 4, 7, 10]
    assert li.hesitation_moments(["Alternatively", " check", " checking", " wa", "ited"]) == [0, 1]
    assert li.hesitation_moments(tokens, words=("okay",)) == [0]


def test_attention_maps_rows_sum_to_one_and_are_causal(lm, sequence):
    ids, _ = sequence
    assert lm.model.config._attn_implementation == "sdpa"
    maps = li.attention_maps(lm.model, lm.tokenizer, ids)
    T = len(ids)
    cfg = lm.model.config
    assert maps.weights.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, T, T)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(maps.weights.shape[:-1]))
    upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert maps.weights[..., upper].abs().max() == 0
    assert maps.weights[:, :, 0, 0].eq(1).all()  # the first token can only look at itself
    assert lm.model.config._attn_implementation == "sdpa"  # switched back afterwards
    assert maps.tokens == [lm.tokenizer.decode([i]) for i in ids.tolist()]


def test_attention_maps_match_a_manual_first_layer(lm, sequence):
    """Recompute layer 0's softmax(QK^T / sqrt(d)) from its own weights and RoPE."""
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    ids, _ = sequence
    maps = li.attention_maps(lm.model, lm.tokenizer, ids)
    m = lm.model.model
    attn = m.layers[0].self_attn
    cfg = lm.model.config
    T, hd = len(ids), cfg.hidden_size // cfg.num_attention_heads
    with torch.no_grad():
        x = m.layers[0].input_layernorm(m.embed_tokens(ids[None]))  # (1, T, D)
        q = attn.q_proj(x).view(1, T, -1, hd).transpose(1, 2)  # (1, H, T, hd)
        k = attn.k_proj(x).view(1, T, -1, hd).transpose(1, 2)  # (1, KV, T, hd)
        cos, sin = m.rotary_emb(x, torch.arange(T)[None])
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(cfg.num_attention_heads // cfg.num_key_value_heads, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), -1e9)
        manual = torch.softmax(scores, dim=-1)[0]
    torch.testing.assert_close(maps.weights[0], manual, atol=1e-5, rtol=1e-4)


def test_attention_window_keeps_the_last_tokens(lm, sequence):
    ids, _ = sequence
    maps = li.attention_maps(lm.model, lm.tokenizer, ids, max_tokens=5)
    assert maps.weights.shape[-1] == 5 and len(maps.tokens) == 5


def test_logit_lens_last_layer_is_the_models_logits(lm, sequence):
    ids, _ = sequence
    lens = li.logit_lens(lm.model, lm.tokenizer, ids, k=4)
    with torch.no_grad():
        logits = lm.model(ids[None]).logits[0]
        m = lm.model.model
        embed_logits = lm.model.lm_head(m.norm(m.embed_tokens(ids[None])))[0]
    L = lm.model.config.num_hidden_layers
    assert lens.layer_names == ["embed"] + [f"layer {i}" for i in range(L)]
    torch.testing.assert_close(lens.logits_last, logits)
    assert torch.equal(lens.top_ids[-1, :, 0], logits.argmax(-1))
    assert torch.equal(lens.top_ids[0, :, 0], embed_logits.argmax(-1))
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(lens.next_prob[-1], probs[:-1].gather(1, ids[1:, None])[:, 0])
    assert lens.top_ids.shape == (L + 1, len(ids), 4) and lens.entropy.shape == (L + 1, len(ids))
    assert bool((lens.top_probs[..., :-1] >= lens.top_probs[..., 1:]).all())


def test_look_inside_works_on_llama_too(lm, llama, sequence):
    ids, p = sequence
    lens = li.logit_lens(llama, lm.tokenizer, ids)
    with torch.no_grad():
        logits = llama(ids[None]).logits[0]
    torch.testing.assert_close(lens.logits_last, logits)
    maps = li.attention_maps(llama, lm.tokenizer, ids)
    assert maps.weights.shape[:2] == (3, 4)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(maps.weights.shape[:-1]))
    assert len(li.token_confidence(llama, lm.tokenizer, ids, p)) == len(ids) - p


def test_look_inside_a_4bit_model(stand_in_dir, sequence):
    q = loader.load(path=stand_in_dir, quantize=True, verbose=False)
    ids, p = sequence
    lens = li.logit_lens(q.model, q.tokenizer, ids)
    with torch.no_grad():
        logits = q.model(ids[None]).logits[0].float()
    torch.testing.assert_close(lens.logits_last, logits)
    maps = li.attention_maps(q.model, q.tokenizer, ids)
    ones = torch.ones(maps.weights.shape[:-1])  # bf16 compute: rows sum to 1 within bf16 precision
    torch.testing.assert_close(maps.weights.sum(-1), ones, atol=8e-3, rtol=0)


def test_not_a_decoder_is_refused(lm, sequence):
    ids, _ = sequence

    class Odd(torch.nn.Module):
        def get_output_embeddings(self):
            return None

    with pytest.raises(ValueError, match="Qwen2/Llama"):
        li.logit_lens(Odd(), lm.tokenizer, ids)


def test_entropy_of_uniform_and_peaked():
    assert li.entropy(torch.zeros(8)).item() == pytest.approx(math.log(8))
    assert li.entropy(torch.tensor([100.0, 0.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)


def test_token_confidence_chunks_agree(lm, sequence):
    ids, p = sequence
    a = li.token_confidence(lm.model, lm.tokenizer, ids, p, chunk=3)
    b = li.token_confidence(lm.model, lm.tokenizer, ids, p)
    torch.testing.assert_close(a.probs, b.probs)
    torch.testing.assert_close(a.entropy, b.entropy)
    assert torch.equal(a.topk_ids, b.topk_ids)


@pytest.mark.gpu
def test_look_inside_on_cuda_in_4bit(stand_in_dir, sequence):
    q = loader.load(path=stand_in_dir, verbose=False)  # NF4 on CUDA
    ids, p = sequence
    conf = li.token_confidence(q.model, q.tokenizer, ids, p)
    assert conf.probs.device.type == "cpu" and len(conf) == len(ids) - p
    maps = li.attention_maps(q.model, q.tokenizer, ids)
    ones = torch.ones(maps.weights.shape[:-1])
    torch.testing.assert_close(maps.weights.sum(-1), ones, atol=8e-3, rtol=0)
    lens = li.logit_lens(q.model, q.tokenizer, ids)
    with torch.no_grad():
        logits = q.model(ids[None].cuda()).logits[0].float().cpu()
    torch.testing.assert_close(lens.logits_last, logits, atol=1e-2, rtol=1e-2)
