"""The notebook-04 checkers pass right answers and reject the planted mistakes."""

from __future__ import annotations

import torch

from course_lib.checks import grpo as checks


def _adv_right(r):
    return (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)


def _adv_population_std(r):
    return (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True, correction=0) + 1e-6)


def _adv_batch(r):
    return (r - r.mean()) / (r.std() + 1e-4)


def _adv_no_std(r):
    return r - r.mean(1, keepdim=True)


def _adv_nan(r):
    return (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True)


def _adv_no_mean(r):
    return r / (r.std(1, keepdim=True) + 1e-4)


def test_advantages_checker():
    assert checks.check_group_advantages(_adv_right)
    assert checks.check_group_advantages(_adv_population_std)
    for bad, words in (
        (_adv_batch, "whole batch"),
        (_adv_no_std, "Dr. GRPO"),
        (_adv_nan, "NaN"),
        (_adv_no_mean, "all 2.0"),
        (lambda r: r.flatten(), "shape"),
        (lambda r: 1 / 0, "ZeroDivisionError"),
        (lambda r: [0.0], "torch.Tensor"),
    ):
        res = checks.check_group_advantages(bad)
        assert not res and words in res.message, (bad, res.message)


def test_clip_checker():
    assert checks.check_clipped_surrogate(
        lambda r, a, e: torch.minimum(r * a, r.clamp(1 - e, 1 + e) * a)
    )
    for bad, words in (
        (lambda r, a, e: torch.maximum(r * a, r.clamp(1 - e, 1 + e) * a), "wrong side"),
        (lambda r, a, e: r.clamp(1 - e, 1 + e) * a, "only the clipped"),
        (lambda r, a, e: r * a.clamp(-e, e), "clipped the advantage"),
        (lambda r, a, e: r * a, "no clipping"),
        (lambda r, a, e: torch.minimum(r * a, r.clamp(1 - e, 1 + 2 * e) * a), "differ"),
    ):
        res = checks.check_clipped_surrogate(bad)
        assert not res and words in res.message, res.message


def test_kl_checker():
    assert checks.check_kl_estimator(lambda lp, ref: torch.exp(ref - lp) - (ref - lp) - 1)
    for bad, words in (
        (lambda lp, ref: torch.exp(lp - ref) - (lp - ref) - 1, "upside down"),
        (lambda lp, ref: -(torch.exp(ref - lp) - (ref - lp) - 1), "negative"),
        (lambda lp, ref: lp - ref, "negative"),
        (lambda lp, ref: (lp - ref) ** 2 / 2, "differ"),
    ):
        res = checks.check_kl_estimator(bad)
        assert not res and words in res.message, res.message


def test_clip_checker_names_the_sign_conditional_clip():
    def where_clip(r, a, e):
        unclipped, clipped = r * a, r.clamp(1 - e, 1 + e) * a
        return torch.where(a >= 0, torch.minimum(unclipped, clipped), torch.maximum(unclipped, clipped))

    res = checks.check_clipped_surrogate(where_clip)
    assert not res and "max for A < 0" in res.message and "torch.minimum" in res.hint


# The assembled objective (exercise 4): a right answer, then one planted mistake per diagnosis.
def _objective(
    logp, old_logp, ref_logp, advantages, mask, beta, eps_low, eps_high, how, max_tokens,
    mistake=None,
):  # fmt: skip
    if mistake == "symmetric":
        eps_high = eps_low
    if mistake == "swapped":
        eps_low, eps_high = eps_high, eps_low
    a = -advantages if mistake == "flipped" else advantages
    a = a.unsqueeze(1)
    ratio = torch.exp(logp - old_logp)
    unclipped, clipped = ratio * a, ratio.clamp(1 - eps_low, 1 + eps_high) * a
    if mistake == "no min":
        surrogate = clipped
    elif mistake == "where":
        surrogate = torch.where(
            a >= 0, torch.minimum(unclipped, clipped), torch.maximum(unclipped, clipped)
        )
    else:
        surrogate = torch.minimum(unclipped, clipped)
    x = (logp - ref_logp) if mistake == "kl upside down" else (ref_logp - logp)
    kl = torch.exp(x) - x - 1
    per_token = surrogate + {"kl added": beta, "no kl": 0.0}.get(mistake, -beta) * kl
    m = torch.ones_like(mask) if mistake == "padding" else mask.to(per_token.dtype)
    per_token = per_token * m
    if mistake and mistake.endswith(" everywhere"):
        how = mistake.split()[0]
    if how == "grpo":
        value = (per_token.sum(1) / m.sum(1)).mean()
    elif how == "dapo":
        value = per_token.sum() / m.sum()
    else:
        value = per_token.sum() / (per_token.shape[0] * max_tokens)
    return -value if mistake == "loss" else value


def _with(mistake):
    return lambda *args, **kw: _objective(*args, **kw, mistake=mistake)


def test_objective_checker_accepts_a_right_objective():
    res = checks.check_grpo_objective(_objective)
    assert res, res.message


def test_objective_checker_names_each_planted_mistake():
    for mistake, words in (
        ("where", "max for A < 0"),
        ("flipped", "wrong sign"),
        ("loss", "returned the loss"),
        ("no min", "only the clipped term"),
        ("kl added", "KL term is added"),
        ("no kl", "β·KL term is missing"),
        ("kl upside down", "upside down"),
        ("symmetric", "ε_high is ignored"),
        ("swapped", "swapped"),
        ("padding", "padding positions count"),
        ("dapo everywhere", "you aggregated as 'dapo'"),
        ("grpo everywhere", "you aggregated as 'grpo'"),
        ("dr_grpo everywhere", "you aggregated as 'dr_grpo'"),
    ):
        res = checks.check_grpo_objective(_with(mistake))
        assert not res and words in res.message, (mistake, res.message)
        assert res.hint, mistake


def test_objective_checker_reports_crashes_shapes_and_other_values():
    def stub(*args, **kw):
        raise NotImplementedError("your code here")

    res = checks.check_grpo_objective(stub)
    assert not res and "NotImplementedError" in res.message
    res = checks.check_grpo_objective(lambda logp, *a, **kw: logp)
    assert not res and "one number" in res.message
    res = checks.check_grpo_objective(lambda *a, **kw: torch.tensor(0.123))
    assert not res and "expected" in res.message
