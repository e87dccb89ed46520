"""Tests for course_lib.grpo: rewards, advantages, the clipped surrogate, KL and aggregation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import formats, grpo

# ---------------------------------------------------------------------------------------------
# The hand-worked example: one group of two completions.
#   completion 1 (reward 1): two tokens, p_θ = 0.5, 0.25; ratios e^{0.5} = 1.649 and e^{-0.1} = 0.905
#   completion 2 (reward 0): one token (the second slot is padding), p_θ = 0.4; ratio e^{0.3} = 1.350
# Advantages: mean 0.5, unbiased std sqrt(0.5), so A = +1/sqrt(2) and -1/sqrt(2).
# With ε = 0.2: token (1,1) has A > 0 and ratio > 1.2 -> clipped to 1.2 (no gradient);
# token (1,2) sits inside the band; token (2,1) has A < 0 and ratio > 1.2: the min keeps the
# unclipped, more pessimistic 1.350·A, so it is not clipped and keeps its gradient.
# ---------------------------------------------------------------------------------------------
A = 1 / math.sqrt(2)


def _hand_case():
    logp = torch.tensor(
        [[math.log(0.5), math.log(0.25)], [math.log(0.4), 0.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    old = torch.tensor(
        [[math.log(0.5) - 0.5, math.log(0.25) + 0.1], [math.log(0.4) - 0.3, 0.0]],
        dtype=torch.float64,
    )
    ref = torch.tensor([[math.log(0.5), math.log(0.5)], [math.log(0.2), 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]])
    adv = grpo.group_advantages(
        torch.tensor([1.0, 0.0], dtype=torch.float64), group_size=2, eps=0.0
    )
    return logp, old, ref, mask, adv


def test_hand_worked_advantages():
    *_, adv = _hand_case()
    torch.testing.assert_close(adv, torch.tensor([A, -A], dtype=torch.float64))


def test_hand_worked_loss_value_and_gradient_signs():
    logp, old, _, mask, adv = _hand_case()
    out = grpo.grpo_loss(logp, old, adv, mask, beta=0.0, epsilon=0.2)
    seq1 = (1.2 * A + math.exp(-0.1) * A) / 2  # per-sequence mean over its 2 tokens
    seq2 = math.exp(0.3) * -A  # one token
    expected_loss = -(seq1 + seq2) / 2
    assert out.loss.item() == pytest.approx(expected_loss, abs=1e-9)
    assert out.loss.item() == pytest.approx(0.10517, abs=1e-5)  # the same number, by hand
    assert out.clip_fraction == pytest.approx(1 / 3)
    out.loss.backward()
    g = logp.grad
    assert g[0, 0].item() == 0.0  # clipped: no push beyond 1 + ε
    assert g[0, 1].item() == pytest.approx(
        -0.25 * A * math.exp(-0.1)
    )  # good answer: raise its prob
    assert g[0, 1].item() < 0
    assert g[1, 0].item() == pytest.approx(0.5 * A * math.exp(0.3))  # bad answer: lower its prob
    assert g[1, 0].item() > 0
    assert g[1, 1].item() == 0.0  # padding


def test_hand_worked_kl_term():
    logp, old, ref, mask, adv = _hand_case()
    base = grpo.grpo_loss(logp, old, adv, mask, beta=0.0).loss.item()
    out = grpo.grpo_loss(logp, old, adv, mask, ref_logp=ref, beta=0.04)
    k_01 = 2 - math.log(2) - 1  # π_ref/π_θ = 0.5 / 0.25
    k_10 = 0.5 - math.log(0.5) - 1  # 0.2 / 0.4
    kl_agg = ((0 + k_01) / 2 + k_10) / 2
    assert out.loss.item() == pytest.approx(base + 0.04 * kl_agg, abs=1e-9)
    assert out.kl == pytest.approx((k_01 + k_10) / 3)
    out.loss.backward()
    # d/dlogp of β·k3 = β(1 − π_ref/π_θ): token (1,2) has π_ref > π_θ, so the KL pulls its prob up
    kl_grad_01 = 0.04 * (1 - 2) / 2 / 2
    assert logp.grad[0, 1].item() == pytest.approx(-0.25 * A * math.exp(-0.1) + kl_grad_01)


@pytest.mark.parametrize("aggregation", grpo.AGGREGATIONS)
def test_one_step_with_beta_zero_is_plain_policy_gradient(aggregation):
    """Ratio = 1 on the first step, so min(ρA, clip(ρ)A) = ρA: value A, gradient A·∇log π."""
    gen = torch.Generator().manual_seed(0)
    n, t = 6, 5
    logits = torch.randn(n, t, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 7, (n, t), generator=gen)
    mask = (torch.rand(n, t, generator=gen) > 0.3).long()
    mask[:, 0] = 1
    rewards = torch.randint(0, 2, (n,), generator=gen).float()
    adv = grpo.group_advantages(rewards, group_size=3).double()

    def logp_of(lg):
        return torch.log_softmax(lg, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    logp = logp_of(logits)
    out = grpo.grpo_loss(
        logp, logp.detach(), adv, mask, beta=0.0, aggregation=aggregation, max_tokens=t
    )
    (g_clip,) = torch.autograd.grad(out.loss, logits)
    pg_value = grpo.aggregate(adv.unsqueeze(1).expand(n, t), mask, aggregation, t)
    pg_loss = -grpo.aggregate(adv.unsqueeze(1) * logp_of(logits), mask, aggregation, t)
    (g_pg,) = torch.autograd.grad(pg_loss, logits)
    assert out.objective == pytest.approx(pg_value.item(), abs=1e-12)
    torch.testing.assert_close(g_clip, g_pg)
    assert out.clip_fraction == 0.0


def test_clip_only_removes_gradient_on_the_profitable_side():
    ratio = torch.tensor([0.5, 1.5, 0.5, 1.5], requires_grad=True)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    grpo.clipped_surrogate(ratio, adv, 0.2).sum().backward()
    # A>0, ρ<1-ε: still pulled up; A>0, ρ>1+ε: clipped; A<0, ρ<1-ε: clipped; A<0, ρ>1+ε: pushed down
    assert ratio.grad.tolist() == [1.0, 0.0, 0.0, -1.0]


def test_epsilon_high_widens_only_the_upper_band():
    ratio = torch.tensor([1.25, 0.75])
    adv = torch.tensor([1.0, -1.0])
    out = grpo.clipped_surrogate(ratio, adv, epsilon=0.2, epsilon_high=0.28)
    torch.testing.assert_close(out, torch.tensor([1.25, -0.8]))


def test_kl_k3_is_nonnegative_and_unbiased_for_the_exact_kl():
    gen = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(50, generator=gen, dtype=torch.float64), 0)
    q = torch.softmax(torch.randn(50, generator=gen, dtype=torch.float64), 0)
    k3 = grpo.kl_k3(p.log(), q.log())
    assert (k3 >= 0).all()
    exact = (p * (p.log() - q.log())).sum()
    assert (p * k3).sum().item() == pytest.approx(
        exact.item(), rel=1e-10
    )  # E_{x~π_θ}[k3] = KL(π_θ‖π_ref)
    assert grpo.kl_k3(p.log(), p.log()).abs().max().item() < 1e-12


def test_advantages_are_per_group():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 7.0])
    adv = grpo.group_advantages(r, group_size=4)
    shifted = grpo.group_advantages(r + torch.tensor([0.0] * 4 + [100.0] * 4), group_size=4)
    torch.testing.assert_close(adv, shifted)
    g0 = adv[:4]
    assert g0.sum().abs() < 1e-6 and g0[0] > 0 and (g0[1:] < 0).all()
    torch.testing.assert_close(g0.std(), torch.tensor(1.0), atol=1e-3, rtol=0)


def test_dr_grpo_advantages_only_subtract_the_mean():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(
        grpo.group_advantages(r, 4, scale=False), torch.tensor([0.75, -0.25, -0.25, -0.25])
    )


def test_zero_std_group_gets_zero_advantage():
    r = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    adv = grpo.group_advantages(r, 3)
    assert adv[:3].abs().max() == 0
    assert grpo.zero_std_fraction(r, 3) == 0.5


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(rewards=torch.zeros(5), group_size=2), "groups of 2"),
        (dict(rewards=torch.zeros(4), group_size=1), ">= 2"),
    ],
)
def test_advantages_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        grpo.group_advantages(**bad)


def test_aggregations_by_hand():
    x = torch.tensor([[1.0, 3.0, 0.0], [6.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert grpo.aggregate(x, mask, "grpo").item() == pytest.approx((2.0 + 6.0) / 2)
    assert grpo.aggregate(x, mask, "dapo").item() == pytest.approx(10.0 / 3)
    assert grpo.aggregate(x, mask, "dr_grpo", max_tokens=5).item() == pytest.approx(10.0 / (2 * 5))
    with pytest.raises(ValueError, match="max_tokens"):
        grpo.aggregate(x, mask, "dr_grpo")
    with pytest.raises(ValueError, match="not one of"):
        grpo.aggregate(x, mask, "mean")


def test_grpo_aggregation_has_the_length_bias_dr_grpo_removes():
    """Same advantage, longer output: GRPO gives each of its tokens a smaller push (Dr. GRPO §3)."""
    logp = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    adv = torch.tensor([1.0, 1.0])
    for how, same in (("grpo", False), ("dr_grpo", True), ("dapo", True)):
        logp.grad = None
        grpo.grpo_loss(
            logp, logp.detach(), adv, mask, beta=0.0, aggregation=how, max_tokens=4
        ).loss.backward()
        short, long = logp.grad[0, 0].item(), logp.grad[1, 0].item()
        assert (short == pytest.approx(long)) is same


def test_loss_bad_input():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo.grpo_loss(x, x, torch.zeros(2), torch.ones(2, 3), beta=0.1)
    with pytest.raises(ValueError, match="advantages"):
        grpo.grpo_loss(x, x, torch.zeros(3), torch.ones(2, 3), beta=0.0)


# ---------------------------------------------------------------------------------------------
# Rewards: hand cases and hypothesis fuzzing.
# ---------------------------------------------------------------------------------------------

GOOD = "<think>3+4: 3+4=7</think><answer>7</answer>"


@pytest.mark.parametrize(
    "text, strict, naive",
    [
        (GOOD, 1.0, 1.0),
        ("  " + GOOD.replace("</think>", "</think>\n") + "\n", 1.0, 1.0),
        ("<think></think><answer>7</answer>", 0.0, 1.0),  # no thinking: not well formed
        ("<think>x</think><answer> </answer>", 0.0, 1.0),
        ("<answer>7</answer>", 0.0, 1.0),
        ("<answer>7</answer><think>x</think>", 0.0, 1.0),
        (GOOD + "<answer>8</answer>", 0.0, 1.0),
        ("<think>a<think>b</think><answer>7</answer>", 0.0, 1.0),
        ("so <think>x</think><answer>7</answer>", 0.0, 1.0),
        (GOOD + " and more", 0.0, 1.0),
        ("<answer>", 0.0, 1.0),
        ("7", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_format_rewards_by_hand(text, strict, naive):
    assert grpo.strict_format_reward("3+4=", text) == strict
    assert grpo.naive_format_reward("3+4=", text) == naive


@settings(max_examples=100)
@given(prompt=st.text(max_size=10), text=st.text(max_size=40))
def test_format_rewards_are_the_format_check_as_a_float(prompt, text):
    assert grpo.strict_format_reward(prompt, text, "7") == float(formats.is_well_formed(text))
    assert grpo.naive_format_reward(prompt, text) == (1.0 if "<answer>" in text else 0.0)


def test_combine_rewards_weights_and_errors():
    parts = [
        grpo.WeightedReward("strict", grpo.strict_format_reward, 0.5),
        grpo.WeightedReward("naive", grpo.naive_format_reward, 2.0),
    ]
    total, vals = grpo.combine_rewards(parts, ["p", "p"], [GOOD, "<answer>"], ["7", "7"])
    torch.testing.assert_close(total, torch.tensor([2.5, 2.0]))
    assert vals["strict"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="one entry per completion"):
        grpo.combine_rewards(parts, ["p"], [GOOD, GOOD], ["7", "7"])
    with pytest.raises(ValueError, match="at least one"):
        grpo.combine_rewards([], [], [], [])


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40), answer=st.text(max_size=5).filter(str.strip))
def test_accuracy_reward_never_raises_on_odd_completions(text, answer):
    assert grpo.accuracy_reward("1+2=", text, answer) in (0.0, 1.0)
    assert grpo.accuracy_reward("1+2=", None, answer) == 0.0


def test_accuracy_reward_refuses_a_missing_reference():
    # An empty reference used to pay an empty <answer></answer>: a data mistake, said out loud.
    for bad in ("", " ", None):
        with pytest.raises(ValueError, match="reference answer"):
            grpo.accuracy_reward("1+2=", "<think>x</think><answer> </answer>", bad)


def test_accuracy_reward_reads_the_answer_tags_only():
    assert grpo.accuracy_reward("3+4=", GOOD, "7") == 1.0
    assert grpo.accuracy_reward("3+4=", GOOD, "8") == 0.0
    assert grpo.accuracy_reward("3+4=", "<think>7</think>7", "7") == 0.0
    # An answer block inside the thinking is thinking, not the answer (R1's template).
    assert grpo.accuracy_reward("3+4=", "<think><answer>7</answer></think>", "7") == 0.0


# ---------------------------------------------------------------------------------------------
# Reference test: the same numbers as TRL's GRPOTrainer loss (its _compute_loss, model stubbed out).
# ---------------------------------------------------------------------------------------------


class _FakeAccelerator:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def _trl_loss(logp, old, ref, adv, mask, beta, eps, loss_type, max_len):
    """TRL 1.16's GRPOTrainer._compute_loss on given log-probs (the model call is stubbed)."""
    from collections import defaultdict
    from types import SimpleNamespace

    trl = pytest.importorskip("trl", minversion="1.16")
    n, t = logp.shape
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token",
        beta=beta, loss_type=loss_type, epsilon_low=eps, epsilon_high=eps, use_vllm=False,
        vllm_importance_sampling_correction=False, model=SimpleNamespace(training=False),
        current_gradient_accumulation_steps=1, max_completion_length=max_len, _entropy_bonus_enabled=False,
        aux_loss_enabled=False, accelerator=_FakeAccelerator(),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
    )  # fmt: skip
    inputs = {
        "prompt_ids": torch.zeros(n, 1, dtype=torch.long), "prompt_mask": torch.ones(n, 1, dtype=torch.long),
        "completion_ids": torch.zeros(n, t, dtype=torch.long), "completion_mask": mask, "advantages": adv,
        "old_per_token_logps": old, "ref_per_token_logps": ref, "num_items_in_batch": mask.sum(),
    }  # fmt: skip
    return trl.GRPOTrainer._compute_loss(stub, None, inputs)


@pytest.mark.parametrize("aggregation", grpo.AGGREGATIONS)
def test_loss_matches_trl(aggregation):
    g = torch.Generator().manual_seed(0)
    base = -torch.rand(6, 5, generator=g, dtype=torch.float64)
    old = base + 0.3 * torch.randn(
        6, 5, generator=g, dtype=torch.float64
    )  # ratios on both sides of the clip
    ref = base + 0.5 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    mask = (torch.rand(6, 5, generator=g) > 0.3).long()
    mask[:, 0] = 1
    adv = torch.randn(6, generator=g, dtype=torch.float64)
    ours_lp, trl_lp = base.clone().requires_grad_(), base.clone().requires_grad_()
    ours = grpo.grpo_loss(
        ours_lp, old, adv, mask, ref, beta=0.04, epsilon=0.2, aggregation=aggregation, max_tokens=5
    )
    theirs = _trl_loss(trl_lp, old, ref, adv, mask, 0.04, 0.2, aggregation, 5)
    torch.testing.assert_close(ours.loss, theirs)
    ours.loss.backward()
    theirs.backward()
    torch.testing.assert_close(ours_lp.grad, trl_lp.grad)


def test_the_math_refuses_values_that_would_change_it_silently():
    logp = torch.zeros(2, 3)
    adv, mask = torch.tensor([1.0, -1.0]), torch.ones(2, 3)
    with pytest.raises(ValueError, match="beta must be a finite number"):  # NaN used to drop the KL
        grpo.grpo_loss(logp, logp, adv, mask, logp, beta=float("nan"))
    with pytest.raises(ValueError, match="epsilon_high must be > 0"):
        grpo.grpo_loss(logp, logp, adv, mask, beta=0.0, epsilon_high=-0.5)
    with pytest.raises(ValueError, match="epsilon must be a finite number"):
        grpo.clipped_surrogate(torch.ones(2), torch.ones(2), epsilon=float("nan"))
    with pytest.raises(ValueError, match=r"epsilon must be in \(0, 1\)"):
        grpo.clipped_surrogate(torch.ones(2), torch.ones(2), epsilon=1.5)
    with pytest.raises(ValueError, match="rewards hold NaN"):
        grpo.group_advantages(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="group_size must be a whole number"):
        grpo.group_advantages(torch.tensor([1.0, 0.0]), 2.5)
