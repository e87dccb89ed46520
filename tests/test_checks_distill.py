"""The notebook-03 checkers accept a right solution and reject planted mistakes with the right hint."""

from __future__ import annotations

import re

import pytest
import torch

from course_lib.checks import distill as checks


def kd_right(s, t, T):
    p = torch.softmax(t / T, -1)
    log_q = torch.log_softmax(s / T, -1)
    return T**2 * (p * (p.log() - log_q)).sum(-1).mean()


def kd_wrong_direction(s, t, T):
    q = torch.softmax(s / T, -1)
    log_p = torch.log_softmax(t / T, -1)
    return T**2 * (q * (q.log() - log_p)).sum(-1).mean()


def kd_no_t2(s, t, T):
    return kd_right(s, t, T) / T**2


def kd_teacher_not_softened(s, t, T):
    p = torch.softmax(t, -1)
    log_q = torch.log_softmax(s / T, -1)
    return T**2 * (p * (p.log() - log_q)).sum(-1).mean()


def kd_summed(s, t, T):
    return kd_right(s, t, T) * s.shape[0]


def kd_per_row(s, t, T):
    p = torch.softmax(t / T, -1)
    return T**2 * (p * (p.log() - torch.log_softmax(s / T, -1))).sum(-1)


def test_kd_checker_accepts_the_right_loss():
    result = checks.check_kd_loss(kd_right)
    assert result.passed, result.message


def test_kd_checker_accepts_torch_kl_div():
    def with_kl_div(s, t, T):
        p = torch.softmax(t / T, -1)
        return T**2 * torch.nn.functional.kl_div(
            torch.log_softmax(s / T, -1), p, reduction="batchmean"
        )

    assert checks.check_kd_loss(with_kl_div).passed


def test_kd_checker_names_each_planted_mistake():
    cases = [
        (kd_wrong_direction, "wrong way round"),
        (kd_no_t2, "T\\*\\*2 factor is missing"),
        (kd_teacher_not_softened, "teacher's logits are not divided by T"),
        (kd_summed, "summed over rows"),
        (kd_per_row, "one number"),
        (lambda s, t, T: 0.0, "expected"),
    ]
    for fn, pattern in cases:
        result = checks.check_kd_loss(fn)
        assert not result.passed, fn
        assert re.search(pattern, result.message), (fn, result.message)
        assert result.hint or pattern == "one number"


def kd_times_t(s, t, T):
    return kd_right(s, t, T) / T


def kd_kl_div_mean(s, t, T):
    p = torch.softmax(t / T, -1)
    return T**2 * torch.nn.functional.kl_div(torch.log_softmax(s / T, -1), p, reduction="mean")


def kd_soft_cross_entropy(s, t, T):
    p = torch.softmax(t / T, -1)
    return T**2 * -(p * torch.log_softmax(s / T, -1)).sum(-1).mean()


def test_kd_checker_names_t_instead_of_t_squared():
    result = checks.check_kd_loss(kd_times_t)
    assert not result.passed and "multiplied by T, not T**2" in result.message
    assert "T**2" in result.hint


@pytest.mark.filterwarnings("ignore:reduction")  # torch warns that 'mean' is not the KL: our point
def test_kd_checker_names_kl_div_reduction_mean():
    result = checks.check_kd_loss(kd_kl_div_mean)
    assert not result.passed and "reduction='mean'" in result.message
    assert "batchmean" in result.hint


def test_kd_checker_explains_soft_cross_entropy_instead_of_rejecting_it():
    """-sum p log q has the KL's gradient (it differs by the teacher's entropy): explained, passed."""
    result = checks.check_kd_loss(kd_soft_cross_entropy)
    assert result.passed
    assert "soft cross-entropy" in result.message and "gradients" in result.message
    s, t = torch.randn(3, 5, requires_grad=True), torch.randn(3, 5)
    (g_ce,) = torch.autograd.grad(kd_soft_cross_entropy(s, t, 2.0), s)
    (g_kl,) = torch.autograd.grad(kd_right(s, t, 2.0), s)
    torch.testing.assert_close(g_ce, g_kl)  # the claim the message makes


def test_kd_checker_survives_a_crash():
    def boom(s, t, T):
        raise RuntimeError("oops")

    result = checks.check_kd_loss(boom)
    assert not result.passed and "RuntimeError" in result.message


def test_soft_targets_checker():
    assert checks.check_soft_targets(lambda z, T: torch.softmax(z / T, -1)).passed
    times = checks.check_soft_targets(lambda z, T: torch.softmax(z * T, -1))
    assert not times.passed and "multiplied by T" in times.message
    ignored = checks.check_soft_targets(lambda z, T: torch.softmax(z, -1))
    assert not ignored.passed and "T is not used" in ignored.message
    unnormalised = checks.check_soft_targets(lambda z, T: torch.exp(z / T))
    assert not unnormalised.passed and "add up to 1" in unnormalised.message


FORMAT = re.compile(r"<think>[^<>]+</think><answer>([^<>]+)</answer>")


def keep_right(completion, answer):
    m = FORMAT.fullmatch(completion)
    return m is not None and m.group(1).strip() == answer


def keep_answer_only(completion, answer):
    m = re.search(r"<answer>(.*?)</answer>", completion)
    return m is not None and m.group(1) == answer


def keep_format_only(completion, answer):
    return FORMAT.fullmatch(completion) is not None


def keep_substring(completion, answer):
    return FORMAT.fullmatch(completion) is not None and answer in completion


def test_keep_checker_accepts_the_right_rule_and_the_library_one():
    assert checks.check_keep(keep_right).passed
    from course_lib.formats import check_answer, is_well_formed

    assert checks.check_keep(lambda c, a: is_well_formed(c) and check_answer(c, a)).passed


def test_keep_checker_rejects_planted_mistakes():
    answer_only = checks.check_keep(keep_answer_only)
    assert not answer_only.passed and "format" in answer_only.message
    format_only = checks.check_keep(keep_format_only)
    assert not format_only.passed and "wrong answer was kept" in format_only.message
    substring = checks.check_keep(keep_substring)
    assert not substring.passed and "substring" in substring.message
    not_bool = checks.check_keep(lambda c, a: 1)
    assert not not_bool.passed and "True" in not_bool.message
