"""course_lib.grpo_trainer on a tiny TinySeek: rollouts line up with the sampled tokens, the first
iteration is on-policy, the loop raises a reward, evaluation and callbacks happen when promised."""

import pytest
import torch

from course_lib import grpo, grpo_trainer, tasks
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return TinySeek(TinySeekConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_seq_len=64))


def test_rollouts_shapes_groups_and_sampling_logprobs():
    tok = default_tokenizer()
    model = _tiny_model()
    exs = [
        tasks.Example("1+2=", "", "3", "arithmetic"),
        tasks.Example("10+20=", "", "30", "arithmetic"),
    ]
    cfg = grpo_trainer.GRPOConfig(group_size=4, prompts_per_step=2, max_new_tokens=6)
    tr = grpo_trainer.GRPOTrainer(model, tok, exs, cfg)
    ro = tr.rollout(exs)
    n = 8
    assert ro.input_ids.shape[0] == n and ro.mask.shape == ro.old_logp.shape == ro.ref_logp.shape
    assert ro.prompts == ["1+2="] * 4 + ["10+20="] * 4
    assert (
        ro.input_ids[:4, : ro.prompt_len - 5].eq(tok.pad_id).all()
    )  # the short prompt is left-padded
    torch.testing.assert_close(ro.old_logp, ro.ref_logp)  # the reference is a copy of the start
    assert (ro.old_logp <= 0).all()
    for g in range(2):
        assert abs(sum(ro.group(g)["advantages"])) < 1e-5
    # the kept log-probs are those of the sampled tokens, row by row without padding
    for i in (0, 5):
        row = ro.input_ids[i][ro.key_mask[i]]
        lp, _ = grpo.token_logprobs(model, row[None])
        k = int(ro.mask[i].sum())
        n_prompt = int(ro.key_mask[i, : ro.prompt_len].sum())
        torch.testing.assert_close(
            lp[0, n_prompt - 1 : n_prompt - 1 + k], ro.old_logp[i, :k], atol=1e-5, rtol=0
        )


def test_first_iteration_is_on_policy_and_nothing_is_clipped():
    tok = default_tokenizer()
    exs = tasks.arithmetic(8, seed=0, digits=1)
    cfg = grpo_trainer.GRPOConfig(
        group_size=4, prompts_per_step=2, max_new_tokens=8, iterations=1, beta=0.0
    )
    row = grpo_trainer.GRPOTrainer(_tiny_model(), tok, exs, cfg).step()
    assert row["clip_fraction"] == 0.0 and row["ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert row["kl"] == pytest.approx(0.0, abs=1e-6)


def _count_a(prompt, completion, answer):
    return completion.count("a") / 8


def test_grpo_raises_a_simple_reward_and_the_clip_engages():
    """A blank model learns to write the letter 'a' when paid for it: the loop really optimises."""
    tok = default_tokenizer()
    exs = [tasks.Example(p, "", "", "x") for p in ("x=", "y=", "z=", "w=")]
    cfg = grpo_trainer.GRPOConfig(
        group_size=8, prompts_per_step=4, max_new_tokens=8, lr=3e-3, iterations=3, beta=0.0, seed=0
    )
    tr = grpo_trainer.GRPOTrainer(
        _tiny_model(1), tok, exs, cfg, rewards=[grpo.WeightedReward("a", _count_a)], sample_every=5
    )
    torch.manual_seed(0)
    tr.train(25, progress=False)
    first = sum(r["reward_mean"] for r in tr.history[:3]) / 3
    last = sum(r["reward_mean"] for r in tr.history[-3:]) / 3
    assert last > first + 0.3, (first, last)
    assert max(r["clip_fraction"] for r in tr.history) > 0
    # each named reward's batch mean is recorded: here the only reward, so it is the total
    assert [r["reward/a"] for r in tr.history] == pytest.approx([r["reward_mean"] for r in tr.history])
    assert tr.samples and tr.samples[0]["step"] == 1
    assert tr.history[-1]["last"] is True


def test_trainer_evaluates_and_calls_back():
    tok = default_tokenizer()
    exs = tasks.arithmetic(6, seed=0, digits=1)
    seen = []
    cfg = grpo_trainer.GRPOConfig.dr_grpo(group_size=2, prompts_per_step=2, max_new_tokens=4)
    assert cfg.aggregation == "dr_grpo" and cfg.scale_rewards is False
    tr = grpo_trainer.GRPOTrainer(_tiny_model(), tok, exs, cfg, eval_examples=exs[:3], eval_every=2)
    tr.train(3, callback=lambda t, row: seen.append(row["step"]), progress=False)
    assert seen == [1, 2, 3]
    assert tr.history[0]["step"] == 0 and "eval_accuracy" in tr.history[0]
    assert [r["step"] for r in tr.history if "eval_accuracy" in r] == [0, 2, 3]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(group_size=1), "G >= 2"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(beta=-1.0), "beta"),
        (dict(aggregation="sum"), "aggregation"),
        (dict(temperature=0.0), "temperature"),
        (dict(iterations=0), "iterations"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grpo_trainer.GRPOConfig(**kwargs)


def test_step_takes_the_given_examples_and_leaves_the_shuffle_alone():
    tok = default_tokenizer()
    exs = tasks.arithmetic(6, seed=0, digits=1)
    cfg = grpo_trainer.GRPOConfig(group_size=2, prompts_per_step=2, max_new_tokens=4, seed=3)
    tr = grpo_trainer.GRPOTrainer(_tiny_model(), tok, exs, cfg)
    tr.step(exs[4:6])
    assert tr.last_rollouts.prompts == [exs[4].prompt] * 2 + [exs[5].prompt] * 2
    assert tr._order == []  # the default draw (a shuffle of the training set) was not touched
    with pytest.raises(ValueError, match="empty"):
        tr.step([])


def test_one_step_is_rollout_rewards_advantages_loss_and_adamw():
    """GRPOTrainer.step is exactly: sample G per prompt, log-probs under policy and reference,
    rewards, group advantages, then `iterations` × (grpo_loss, backward, clip, AdamW)."""
    from course_lib.sampling import sample

    tok = default_tokenizer()
    exs = tasks.arithmetic(3, seed=0, digits=1)
    cfg = grpo_trainer.GRPOConfig(
        group_size=4, prompts_per_step=3, max_new_tokens=6, lr=1e-2, beta=0.1, iterations=2, seed=5
    )
    tr = grpo_trainer.GRPOTrainer(_tiny_model(), tok, exs, cfg)
    tr.step(exs)

    policy, ref = _tiny_model(), _tiny_model()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    s = sample(policy, tok, [e.prompt for e in exs], 4, 6, 1.0, 1.0, generator=gen, batch_size=None)
    kw = dict(key_mask=s.key_mask, start=s.prompt_len - 1)
    with torch.no_grad():
        old, _ = grpo.token_logprobs(policy, s.ids, **kw)
        ref_logp, _ = grpo.token_logprobs(ref, s.ids, **kw)
    answers = [e.answer for e in exs for _ in range(4)]
    rewards = torch.tensor(
        [grpo.accuracy_reward("", c, a) + grpo.strict_format_reward("", c) for c, a in zip(s.texts, answers)]
    )
    adv = grpo.group_advantages(rewards, 4)
    torch.testing.assert_close(adv, tr.last_rollouts.advantages)
    for _ in range(2):
        logp, _ = grpo.token_logprobs(policy, s.ids, **kw)
        loss = grpo.grpo_loss(logp, old, adv, s.mask, ref_logp, 0.1, 0.2, None, "grpo", 6).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
    for (name, a), b in zip(tr.policy.named_parameters(), policy.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(beta=float("nan")), "beta must be a finite number"),  # used to switch the KL off
        (dict(beta=-0.1), "beta must be >= 0"),
        (dict(epsilon_high=-0.5), "epsilon_high must be > 0"),  # used to clip every ratio
        (dict(epsilon=float("nan")), "epsilon must be a finite number"),
        (dict(lr=float("inf")), "lr must be a finite number"),
        (dict(temperature=float("nan")), "temperature must be a finite number"),
        (dict(top_p=0), "top_p must be in (0, 1]"),
        (dict(grad_clip=-1.0), "grad_clip must be > 0"),
        (dict(group_size=8.0), "group_size must be an int"),
        (dict(scale_rewards="yes"), "scale_rewards must be True"),
    ],
)
def test_config_refuses_values_that_would_change_the_algorithm_silently(kwargs, needle):
    with pytest.raises(ValueError) as err:
        grpo_trainer.GRPOConfig(**kwargs)
    assert needle in str(err.value)
