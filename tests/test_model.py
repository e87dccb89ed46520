import pytest
import torch

from course_lib.model import TinySeek, TinySeekConfig, sample_next
from course_lib.tokenizer import default_tokenizer


def tiny(**kw):
    base = dict(
        d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=64, d_expert=16, n_routed_experts=4
    )
    return TinySeekConfig(**(base | kw))


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(attention="gqa", n_kv_heads=2), dict(attention="mqa"), dict(ffn="moe"),
     dict(ffn="moe", score_func="softmax", first_k_dense=1)],
)  # fmt: skip
def test_forward_shapes_and_causality(kw):
    torch.manual_seed(0)
    m = TinySeek(tiny(**kw)).eval()
    idx = torch.randint(0, m.config.vocab_size, (2, 10))
    logits = m(idx)
    assert logits.shape == (2, 10, default_tokenizer().vocab_size)
    idx2 = idx.clone()
    idx2[:, 7:] = (idx2[:, 7:] + 1) % m.config.vocab_size
    torch.testing.assert_close(m(idx2)[:, :7], logits[:, :7])


@pytest.mark.parametrize("kw", [dict(), dict(attention="gqa", n_kv_heads=2), dict(ffn="moe")])
def test_cached_generation_equals_uncached_full_forward(kw):
    torch.manual_seed(0)
    m = TinySeek(tiny(**kw)).eval()
    prompt = torch.randint(0, m.config.vocab_size, (3, 5))
    out = m.generate(prompt, 12, temperature=0)
    assert out.shape == (3, 17) and torch.equal(out[:, :5], prompt)
    # greedy decoding without a cache: full forward over the whole sequence every step
    seq = prompt
    for _ in range(12):
        seq = torch.cat([seq, m(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)
    # the cached logits equal the full forward's logits at every position
    logits, cache = m.forward_with_cache(out[:, :9])
    steps = [logits]
    for t in range(9, 17):
        lg, cache = m.forward_with_cache(out[:, t : t + 1], cache)
        steps.append(lg)
    assert cache.length == 17 and cache.nbytes() > 0
    torch.testing.assert_close(torch.cat(steps, 1), m(out), atol=1e-5, rtol=1e-5)


MLA_SMALL = dict(
    attention="mla", kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8
)


@pytest.mark.parametrize("kw", [{}, dict(attention="gqa"), MLA_SMALL], ids=["mha", "gqa", "mla"])
def test_left_padded_prompts_generate_like_unpadded(kw):
    torch.manual_seed(0)
    m = TinySeek(tiny(**kw)).eval()
    a = torch.randint(3, 100, (1, 6))
    b = torch.randint(3, 100, (1, 3))
    padded = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype=torch.long), b], 1)])
    mask = padded != 0
    mask[0] = True
    out = m.generate(padded, 8, temperature=0, key_mask=mask)
    assert torch.equal(out[0], m.generate(a, 8, temperature=0)[0])
    assert torch.equal(out[1, 3:], m.generate(b, 8, temperature=0)[0])


def test_sampling_seeded_eos_and_top_p():
    torch.manual_seed(0)
    m = TinySeek(tiny()).eval()
    p = torch.randint(3, 100, (4, 3))
    s1 = m.generate(p, 10, temperature=1.0, generator=torch.Generator().manual_seed(1))
    s2 = m.generate(p, 10, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s1, s2)
    # eos: rows keep eos after finishing, generation stops when all are done
    logits = torch.full((2, 5), -10.0)
    logits[:, 2] = 10.0
    assert sample_next(logits, 0).tolist() == [2, 2]
    # top-p keeps the smallest set reaching p: with p=0.5 only the top token of [0.6, 0.3, 0.1]
    lg = torch.log(torch.tensor([[0.6, 0.3, 0.1]])).expand(200, 3)
    g = torch.Generator().manual_seed(0)
    assert set(sample_next(lg, 1.0, top_p=0.5, generator=g).tolist()) == {0}
    assert set(sample_next(lg, 1.0, top_p=0.8, generator=g).tolist()) == {0, 1}
    assert set(sample_next(lg, 1.0, top_p=1.0, generator=g).tolist()) == {0, 1, 2}


def test_eos_stops_generation():
    torch.manual_seed(0)
    m = TinySeek(tiny()).eval()
    p = torch.randint(3, 100, (2, 3))
    greedy = m.generate(p, 6, temperature=0)
    eos = int(greedy[0, 4])  # pretend the 2nd generated token of row 0 is eos
    out = m.generate(p, 6, temperature=0, eos_id=eos)
    first = (out[0, 3:] == eos).nonzero()[0, 0]
    assert (out[0, 3 + first :] == eos).all()


def test_parameter_counts():
    dense = TinySeek(tiny())
    cfg = tiny(
        ffn="moe", n_routed_experts=8, n_activated_experts=2, n_shared_experts=1, d_expert=16
    )
    moe = TinySeek(cfg)
    per_expert = 3 * 32 * 16
    assert moe.num_parameters() - moe.num_parameters(active_only=True) == 2 * 6 * per_expert
    assert dense.num_parameters() == dense.num_parameters(active_only=True)
    # tied embeddings are counted once
    assert dense.num_parameters() == sum(p.numel() for p in dense.parameters())
    assert dense.lm_head.weight is dense.embed.weight


def test_config_errors():
    with pytest.raises(ValueError, match="gqa"):
        TinySeekConfig(attention="mha", n_kv_heads=2)
    with pytest.raises(ValueError, match="use one of"):
        TinySeekConfig(ffn="sparse")
    with pytest.raises(ValueError, match="cache mode"):
        TinySeek(tiny(attention="mla", mla_cache="compressed"))
    m = TinySeek(tiny())
    with pytest.raises(ValueError, match="max_seq_len"):
        m(torch.zeros(1, 65, dtype=torch.long))


def test_moe_model_with_groups_and_first_dense_layer():
    torch.manual_seed(0)
    cfg = tiny(ffn="moe", n_routed_experts=8, n_expert_groups=4, topk_groups=2, n_activated_experts=3,
               first_k_dense=1, route_scale=2.5, balance="aux_free", bias_gamma=0.1)  # fmt: skip
    m = TinySeek(cfg)
    assert len(m.moe_layers()) == 1 and not hasattr(m.blocks[0].ffn, "router")
    m.train()
    m(torch.randint(0, 100, (2, 12)))
    (info,) = m.routing()
    assert info.indices.shape == (2, 12, 3) and info.counts.sum() == 72
    torch.testing.assert_close(info.weights.sum(-1), torch.full((2, 12), 2.5))
    groups = info.indices // 2
    assert max(len(set(row.tolist())) for row in groups.reshape(-1, 3)) <= 2
    m.after_optimizer_step()
    assert m.moe_layers()[0].router.bias.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.parametrize(
    "attention,ffn,balance",
    [("mha", "dense", "none"), ("gqa", "moe", "aux_free"), ("mla", "moe", "aux_loss")],
)
def test_tinyseek_on_cuda_matches_cpu(attention, ffn, balance):
    """Same weights on CUDA and CPU: same logits, a training step runs, cached generation works."""
    cfg = TinySeekConfig(attention=attention, ffn=ffn, balance=balance, n_layers=2)
    torch.manual_seed(0)
    cpu = TinySeek(cfg).eval()
    gpu = TinySeek(cfg)
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda().eval()
    idx = torch.randint(0, cfg.vocab_size, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(gpu(idx.cuda()).float().cpu(), cpu(idx), atol=1e-4, rtol=1e-4)
        out_gpu = gpu.generate(idx[:, :8].cuda(), 10, temperature=0)
        out_cpu = cpu.generate(idx[:, :8], 10, temperature=0)
    assert torch.equal(out_gpu.cpu(), out_cpu)
    gpu.train()
    opt = torch.optim.AdamW(gpu.parameters(), lr=1e-3)
    logits = gpu(idx.cuda())
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), idx.cuda().reshape(-1)
    )
    loss = loss + getattr(gpu, "aux_loss", 0.0)
    loss.backward()
    opt.step()
    if hasattr(gpu, "after_optimizer_step"):
        gpu.after_optimizer_step()


# Inputs that used to give NaN logits, a model that could not work, or a foreign stack trace.
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(rope_theta=0), "rope_theta must be > 1"),
        (dict(rope_theta=float("inf")), "rope_theta must be a finite number"),
        (dict(norm_eps=-1), "norm_eps must be in (0, 1)"),
        (dict(norm_eps=float("nan")), "norm_eps must be a finite number"),
        (dict(head_dim=0), "head_dim must be >= 2"),
        (dict(head_dim=7), "must be even"),
        (dict(attention="gqa", n_kv_heads=0), "n_kv_heads must be >= 1"),
        (dict(d_model=64.0), "d_model must be an int"),
        (dict(n_layers=True), "n_layers must be an int"),
        (dict(d_model=30, n_heads=4), "not divisible by n_heads"),
        (dict(first_k_dense=3, n_layers=2), "first_k_dense=3 is more than n_layers=2"),
        (dict(ffn="moe", aux_alpha=float("nan")), "aux_alpha must be a finite number"),
        (dict(ffn="moe", score_func="relu"), "use one of"),
        (dict(attention="mla", q_lora_rank=0), "q_lora_rank must be >= 1"),
    ],
)
def test_config_refuses_values_that_cannot_work(kwargs, needle):
    with pytest.raises(ValueError) as err:
        TinySeekConfig(**kwargs)
    assert needle in str(err.value)


@pytest.mark.parametrize("ffn", ["dense", "moe"])
def test_forward_refuses_bad_token_ids_with_a_course_message(ffn):
    m = TinySeek(tiny(ffn=ffn))
    v = m.config.vocab_size
    for bad in (torch.tensor([[1, v]]), torch.tensor([[-1, 2]])):
        with pytest.raises(ValueError, match=rf"outside the model's vocabulary \[0, {v - 1}\]"):
            m(bad)
    with pytest.raises(ValueError, match="the batch is empty"):
        m(torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="the batch is empty"):
        m(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token ids"):
        m(torch.zeros(1, 3))


def test_generate_refuses_a_temperature_that_is_not_a_number():
    m, idx = TinySeek(tiny()), torch.tensor([[1, 2, 3]])
    for bad in (float("nan"), float("inf"), -1.0, "0.7"):
        with pytest.raises(ValueError, match="temperature must be"):
            m.generate(idx, 3, temperature=bad)
    with pytest.raises(ValueError, match="top_p must be"):
        m.generate(idx, 3, top_p=float("nan"))
    with pytest.raises(ValueError, match="max_new_tokens must be a whole number"):
        m.generate(idx, 2.5)
