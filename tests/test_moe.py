"""DeepSeekMoE: gates, group limiting (both group rules by hand), bias balancing, dispatch, and
reference tests against transformers' DeepseekV3MoE and DeepseekV2Moe (compared with transformers
5.24.0)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.moe import (
    DeepSeekMoE,
    Router,
    domain_expert_usage,
    expert_counts,
    from_transformers,
    gate_scores,
    group_mask,
    group_scores,
    max_over_mean,
    max_violation,
    naive_moe_loop,
    paper_defaults,
    sequence_balance_loss,
    topk_route,
    update_bias,
)

COMPARED_TRANSFORMERS = "5.24.0"


# --------------------------------------------------------------------------------------------
# Reference: transformers' DeepSeek-V3 MoE with copied weights
# --------------------------------------------------------------------------------------------
def _hf_moe(seed, n_group, topk_group, n_shared_experts=1, scale=2.5):
    transformers = pytest.importorskip("transformers")
    from transformers import DeepseekV3Config
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE

    if transformers.__version__ != COMPARED_TRANSFORMERS:
        print(
            f"note: reference compared with {COMPARED_TRANSFORMERS}, found {transformers.__version__}"
        )
    cfg = DeepseekV3Config(
        hidden_size=16, moe_intermediate_size=8, n_routed_experts=8, num_experts_per_tok=2,
        n_group=n_group, topk_group=topk_group, n_shared_experts=n_shared_experts,
        routed_scaling_factor=scale, norm_topk_prob=True, hidden_act="silu",
        num_hidden_layers=1, num_attention_heads=2, vocab_size=32,
    )  # fmt: skip
    torch.manual_seed(seed)
    hf = DeepseekV3MoE(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.5)
        hf.gate.e_score_correction_bias.normal_(0, 0.3)  # a trained, non-zero balancing bias
    ours = from_transformers(hf).eval()
    return hf, ours


@pytest.mark.parametrize("seed,n_group,topk_group", [(0, 4, 2), (1, 4, 1), (2, 2, 1), (3, 1, 1)])
def test_router_and_moe_match_transformers_deepseek_v3(seed, n_group, topk_group):
    hf, ours = _hf_moe(seed, n_group, topk_group)
    x = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        _, hf_w, hf_idx = hf.gate(x)
        w, idx, _ = ours.router(x.reshape(-1, 16))
        # both return the chosen experts unsorted: compare sorted by expert id
        hf_idx_s, hf_order = hf_idx.sort(dim=-1)
        idx_s, order = idx.sort(dim=-1)
        assert torch.equal(idx_s, hf_idx_s)
        torch.testing.assert_close(w.gather(1, order), hf_w.gather(1, hf_order))
        torch.testing.assert_close(ours(x), hf(x), atol=1e-5, rtol=1e-5)
    # the bias really matters here: without it the choice differs for some token
    with torch.no_grad():
        ours.router.bias.zero_()
        assert not torch.equal(ours.router(x.reshape(-1, 16))[1].sort(-1)[0], hf_idx_s)


def _hf_v2_moe(seed, topk_method, scale):
    pytest.importorskip("transformers")
    from transformers import DeepseekV2Config
    from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

    cfg = DeepseekV2Config(
        hidden_size=16, moe_intermediate_size=8, n_routed_experts=8, num_experts_per_tok=2,
        n_group=4, topk_group=2, topk_method=topk_method, n_shared_experts=2,
        routed_scaling_factor=scale, norm_topk_prob=False, hidden_act="silu",
        num_hidden_layers=1, num_attention_heads=2, vocab_size=32,
    )  # fmt: skip
    torch.manual_seed(seed)
    hf = DeepseekV2Moe(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.5)
    return hf, from_transformers(hf).eval()


@pytest.mark.parametrize(
    "seed,topk_method,scale", [(0, "group_limited_greedy", 16.0), (1, "group_limited_greedy", 1.0),
                               (2, "greedy", 16.0)],
)  # fmt: skip
def test_v2_router_and_moe_match_transformers_deepseek_v2(seed, topk_method, scale):
    """V2's gate: softmax, groups ranked by their MAX score, weights NOT renormalised, route scale."""
    hf, ours = _hf_v2_moe(seed, topk_method, scale)
    assert ours.router.score_func == "softmax" and not ours.router.normalize
    assert ours.router.group_score == "max"
    x = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        _, hf_w, hf_idx = hf.gate(x)
        w, idx, _ = ours.router(x.reshape(-1, 16))
        hf_idx_s, hf_order = hf_idx.sort(dim=-1)
        idx_s, order = idx.sort(dim=-1)
        assert torch.equal(idx_s, hf_idx_s)
        torch.testing.assert_close(w.gather(1, order), hf_w.gather(1, hf_order))
        assert (w.sum(-1) < scale).all()  # not renormalised: the chosen softmax mass is below 1
        # float32 rounding grows with the route scale: the tolerance scales with it
        torch.testing.assert_close(ours(x), hf(x), atol=1e-5 * scale, rtol=1e-5)
    if topk_method == "group_limited_greedy":  # V3's top-2 sum would choose other groups here
        scores = gate_scores(x.reshape(-1, 16) @ ours.router.weight.T, "softmax")
        _, idx_sum = topk_route(scores, 2, n_groups=4, topk_groups=2, group_score="top2_sum")
        assert not torch.equal(idx_sum.sort(-1)[0], hf_idx_s)


def test_from_transformers_refuses_a_mismatched_config():
    hf, _ = _hf_moe(0, 4, 2)
    hf.config.norm_topk_prob = False
    with pytest.raises(ValueError, match="norm_topk_prob"):
        from_transformers(hf)


# --------------------------------------------------------------------------------------------
# Gate properties
# --------------------------------------------------------------------------------------------
def test_weights_sum_to_route_scale_sigmoid_or_one_softmax():
    logits = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    w, _ = topk_route(gate_scores(logits, "sigmoid"), 4, route_scale=2.5)
    torch.testing.assert_close(w.sum(-1), torch.full((64,), 2.5))
    w, _ = topk_route(gate_scores(logits, "softmax"), 4)
    torch.testing.assert_close(w.sum(-1), torch.ones(64))
    # V2 did not renormalise: the chosen softmax weights then sum to less than one
    w, idx = topk_route(gate_scores(logits, "softmax"), 4, normalize=False)
    assert (w.sum(-1) < 1).all()
    torch.testing.assert_close(w, logits.softmax(-1).gather(1, idx))


def test_bias_changes_the_choice_but_not_the_weights_of_a_chosen_set():
    g = torch.Generator().manual_seed(0)
    scores = gate_scores(torch.randn(256, 8, generator=g), "sigmoid")
    bias = torch.randn(8, generator=g) * 0.5
    w0, i0 = topk_route(scores, 2, None, route_scale=2.5)
    w1, i1 = topk_route(scores, 2, bias, route_scale=2.5)
    changed = (i0.sort(-1)[0] != i1.sort(-1)[0]).any(-1)
    assert changed.any() and (~changed).any()
    # the weights depend only on the unbiased scores of the chosen experts
    expected = scores.gather(1, i1)
    torch.testing.assert_close(w1, 2.5 * expected / expected.sum(-1, keepdim=True))
    same = ~changed
    torch.testing.assert_close(w0[same].sort(-1)[0], w1[same].sort(-1)[0])
    # and a huge bias toward expert 3 makes every token choose it
    big = torch.zeros(8)
    big[3] = 100.0
    _, i = topk_route(scores, 2, big)
    assert (i == 3).any(-1).all()


@pytest.mark.parametrize("seed", range(5))
def test_group_limiting_never_leaves_the_best_groups(seed):
    g = torch.Generator().manual_seed(seed)
    E, G, TG, k = 16, 4, 2, 3
    scores = gate_scores(torch.randn(128, E, generator=g), "sigmoid")
    bias = torch.randn(E, generator=g) * 0.2
    _, idx = topk_route(scores, k, bias, n_groups=G, topk_groups=TG)
    biased = scores + bias
    for t in range(128):
        group_score = [sorted(biased[t, j * 4 : (j + 1) * 4].tolist())[-2:] for j in range(G)]
        best = sorted(range(G), key=lambda j: -sum(group_score[j]))[:TG]
        assert {int(e) // 4 for e in idx[t]} <= set(best)
    assert group_mask(biased, G, TG).sum(-1).eq(TG * 4).all()
    # without groups some token would pick experts from more than TG groups
    _, free = topk_route(scores, k, bias)
    assert any(len({int(e) // 4 for e in row}) > TG for row in free)


def test_group_max_and_top2_sum_on_a_hand_worked_case():
    """6 experts in 3 groups of 2, choose 1 group. Scores by hand:
    group 0 = (0.9, 0.0): max 0.9, top-2 sum 0.9
    group 1 = (0.5, 0.5): max 0.5, top-2 sum 1.0
    group 2 = (0.6, 0.3): max 0.6, top-2 sum 0.9
    V2's max picks group 0 (the single best expert, e0); V3's top-2 sum picks group 1."""
    s = torch.tensor([[0.9, 0.0, 0.5, 0.5, 0.6, 0.3]])
    torch.testing.assert_close(group_scores(s, 3, "max"), torch.tensor([[0.9, 0.5, 0.6]]))
    torch.testing.assert_close(group_scores(s, 3, "top2_sum"), torch.tensor([[0.9, 1.0, 0.9]]))
    assert group_mask(s, 3, 1, "max").tolist() == [[True, True, False, False, False, False]]
    assert group_mask(s, 3, 1, "top2_sum").tolist() == [[False, False, True, True, False, False]]
    w, i = topk_route(s, 1, n_groups=3, topk_groups=1, group_score="max", normalize=False)
    assert i.tolist() == [[0]] and w.tolist() == [[pytest.approx(0.9)]]
    w, i = topk_route(s, 2, n_groups=3, topk_groups=1, group_score="top2_sum")
    assert sorted(i[0].tolist()) == [2, 3] and w.tolist() == [[0.5, 0.5]]
    # the same bias on every expert changes nothing (only differences matter), even when it makes
    # every biased score negative: the other groups are masked with -inf, not 0
    for shift in (-2.0, 3.0):
        _, i = topk_route(s, 2, torch.full((6,), shift), n_groups=3, topk_groups=1)
        assert sorted(i[0].tolist()) == [2, 3]
    with pytest.raises(ValueError, match="group_score"):
        group_scores(s, 3, "sum")


def test_paper_defaults_follow_the_gate():
    assert paper_defaults("sigmoid") == (True, "top2_sum")  # V3 eq. 13, §2.1.2
    assert paper_defaults("softmax") == (False, "max")  # V2 §2.2.1-2.2.2
    v2 = Router(8, 8, 2, score_func="softmax")
    v3 = Router(8, 8, 2, score_func="sigmoid")
    assert (v2.normalize, v2.group_score) == (False, "max")
    assert (v3.normalize, v3.group_score) == (True, "top2_sum")
    assert Router(8, 8, 2, score_func="softmax", normalize=True).normalize  # explicit wins
    with pytest.raises(ValueError, match="group_score"):
        Router(8, 8, 2, group_score="mean")


def test_router_validates_its_configuration():
    with pytest.raises(ValueError, match="groups"):
        Router(8, 6, 2, n_groups=4)
    with pytest.raises(ValueError, match="n_activated_experts"):
        Router(8, 8, 5, n_groups=4, topk_groups=2)
    with pytest.raises(ValueError, match="score_func"):
        Router(8, 8, 2, score_func="relu")
    with pytest.raises(ValueError, match="balance"):
        DeepSeekMoE(8, 4, balance="magic")


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "seed,score_func,n_shared", [(0, "sigmoid", 1), (1, "softmax", 0), (2, "sigmoid", 2)]
)
def test_vectorised_dispatch_equals_naive_token_loop(seed, score_func, n_shared):
    torch.manual_seed(seed)
    moe = DeepSeekMoE(
        12,
        6,
        n_routed_experts=6,
        n_shared_experts=n_shared,
        n_activated_experts=2,
        score_func=score_func,
        route_scale=1.7,
    )
    x = torch.randn(2, 9, 12)
    torch.testing.assert_close(moe(x), naive_moe_loop(moe, x), atol=1e-5, rtol=1e-5)
    # gradients flow to the experts and the router through the gate weights
    moe(x).pow(2).sum().backward()
    assert moe.router.weight.grad.abs().sum() > 0 and moe.experts.w_down.grad.abs().sum() > 0


def test_dispatch_with_one_expert_taking_everything():
    torch.manual_seed(0)
    moe = DeepSeekMoE(8, 4, n_routed_experts=4, n_shared_experts=0, n_activated_experts=1)
    with torch.no_grad():
        moe.router.bias[2] = 10.0
    x = torch.randn(1, 5, 8)
    torch.testing.assert_close(moe(x), naive_moe_loop(moe, x), atol=1e-5, rtol=1e-5)
    assert moe.last_routing.counts.tolist() == [0, 0, 5, 0]


# --------------------------------------------------------------------------------------------
# Balancing
# --------------------------------------------------------------------------------------------
def test_bias_update_sign_and_size():
    b = update_bias(torch.zeros(4), torch.tensor([10, 2, 4, 4]), gamma=0.1)
    torch.testing.assert_close(b, torch.tensor([-0.1, 0.1, 0.1, 0.1]))  # mean 5: only 0 is over


def test_aux_free_balances_a_skewed_router_without_gradients():
    torch.manual_seed(0)
    u = torch.full((16,), 0.25)  # a direction every token shares
    x = 0.5 * torch.randn(4, 32, 16) + u

    def run(balance):
        torch.manual_seed(1)
        moe = DeepSeekMoE(
            16,
            8,
            n_routed_experts=8,
            n_shared_experts=0,
            n_activated_experts=2,
            balance=balance,
            bias_gamma=0.01,
        )
        with torch.no_grad():
            moe.router.weight[:2] += 4 * u  # experts 0 and 1 attract every token
        moe.train()
        first, late = None, torch.zeros(8)
        for step in range(400):
            moe(x)
            first = first or moe.last_routing.max_over_mean
            if step >= 350:  # the sign update oscillates around balance: average the end
                late += moe.last_routing.counts
            moe.update_bias()
        return first, max_over_mean(late), moe.router.bias

    start, end_none, bias_none = run("none")
    _, end_free, bias_free = run("aux_free")
    assert start > 2.0 and end_none == pytest.approx(start) and bias_none.abs().sum() == 0
    assert end_free <= 1.3
    assert bias_free[:2].max() < bias_free[2:].min()  # the favourites were pushed down


def test_sequence_balance_loss_hand_cases():
    E, T = 4, 6  # top-2 routing below
    uniform = torch.full((1, T, E), 0.5)
    spread = torch.tensor([[0, 1], [2, 3]] * 3)[None]  # every expert chosen equally
    assert float(sequence_balance_loss(uniform, spread, E, "sigmoid")) == pytest.approx(1.0)
    peaked = torch.tensor([0.9, 0.9, 0.1, 0.1]).expand(1, T, E)
    collapsed = torch.tensor([[0, 1]] * T)[None]
    # f = [2, 2, 0, 0], P = [0.45, 0.45, 0.05, 0.05] -> 1.8
    assert float(sequence_balance_loss(peaked, collapsed, E, "sigmoid")) == pytest.approx(1.8)
    # it is computed per sequence: two opposite collapsed sequences are each imbalanced
    other = torch.tensor([[2, 3]] * T)[None]
    both = sequence_balance_loss(
        torch.cat([peaked, peaked.flip(-1)]), torch.cat([collapsed, other]), E, "sigmoid"
    )
    assert float(both) == pytest.approx(1.8)


def test_aux_loss_is_weighted_and_trains_the_router():
    torch.manual_seed(0)
    moe = DeepSeekMoE(
        8, 4, n_routed_experts=4, n_activated_experts=2, balance="aux_loss", aux_alpha=0.1
    )
    moe(torch.randn(2, 5, 8))
    assert moe.aux_loss.requires_grad and moe.aux_loss.item() > 0
    moe.aux_loss.backward()
    assert moe.router.weight.grad.abs().sum() > 0
    off = DeepSeekMoE(8, 4, n_routed_experts=4, n_activated_experts=2, balance="aux_free")
    off(torch.randn(2, 5, 8))
    assert float(off.aux_loss) == 0


def test_stats():
    idx = torch.tensor([[0, 1], [0, 2], [0, 1], [3, 1]])
    assert expert_counts(idx, 5).tolist() == [3, 3, 1, 1, 0]
    assert max_over_mean(torch.tensor([3, 3, 1, 1, 0])) == pytest.approx(3 / 1.6)
    # MaxVio = (max - mean) / mean: 0 when balanced, E/k - 1 when one expert takes all (k = 1)
    assert max_violation(torch.tensor([3, 3, 1, 1, 0])) == pytest.approx((3 - 1.6) / 1.6)
    assert max_violation(torch.tensor([4, 4, 4, 4])) == 0
    assert max_violation(torch.tensor([8, 0, 0, 0])) == pytest.approx(3.0)
    usage = domain_expert_usage(idx, torch.tensor([0, 0, 1, 1]), 2, 5)
    torch.testing.assert_close(usage[0], torch.tensor([0.5, 0.25, 0.25, 0, 0]))
    torch.testing.assert_close(usage[1], torch.tensor([0.25, 0.5, 0, 0.25, 0]))


def test_counts_accumulate_only_in_training_and_reset():
    torch.manual_seed(0)
    moe = DeepSeekMoE(
        8, 4, n_routed_experts=4, n_activated_experts=2, balance="aux_free", bias_gamma=0.5
    )
    moe.eval()
    moe(torch.randn(1, 6, 8))
    assert moe.step_counts.sum() == 0
    moe.train()
    moe(torch.randn(1, 6, 8))
    moe(torch.randn(1, 6, 8))
    assert moe.step_counts.sum() == 24
    moe.update_bias()
    assert moe.step_counts.sum() == 0 and moe.router.bias.abs().max() == 0.5


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_routed=st.sampled_from([2, 4, 6, 8]),
    n_activated=st.integers(1, 2),
    tokens=st.integers(1, 12),
    score_func=st.sampled_from(["softmax", "sigmoid"]),
)
def test_dispatch_equals_naive_loop_property(seed, n_routed, n_activated, tokens, score_func):
    torch.manual_seed(seed)
    moe = DeepSeekMoE(
        6,
        3,
        n_routed_experts=n_routed,
        n_shared_experts=1,
        n_activated_experts=n_activated,
        score_func=score_func,
    )
    with torch.no_grad():
        moe.router.bias.normal_(0, 0.5)
    x = torch.randn(1, tokens, 6)
    torch.testing.assert_close(moe(x), naive_moe_loop(moe, x), atol=1e-5, rtol=1e-5)
