import pytest
import torch

from course_lib.attention import GroupedQueryAttention, cache_nbytes


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


def test_cache_nbytes_counts_nested_tensors_and_rejects_others():
    t = torch.zeros(2, 3, dtype=torch.float16)
    assert cache_nbytes([(t, t), None, (torch.zeros(5),)]) == 2 * 6 * 2 + 5 * 4
    with pytest.raises(TypeError, match="tuples/lists"):
        cache_nbytes({"k": t})
