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
