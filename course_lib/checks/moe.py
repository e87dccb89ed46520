"""Checkers for notebook 01's exercises: DeepSeek-V3 top-k gating and the bias update.

Each checker runs the learner's function on seeded random cases, compares it with the library's
reference (:mod:`course_lib.moe`), and recognises the typical mistakes to give a precise hint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib.checks.base import CheckResult, failed, passed
from course_lib.moe import topk_route, update_bias


def _as_sorted(weights: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each row's chosen experts by id so different (valid) orders compare equal."""
    idx, order = indices.long().sort(dim=-1)
    return weights.gather(-1, order), idx


def _gate_cases(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for n, e, k, scale in ((6, 8, 2, 2.5), (10, 16, 4, 1.0), (5, 4, 1, 1.5)):
        scores = torch.rand(n, e, generator=g)  # sigmoid affinities lie in (0, 1)
        bias = (torch.rand(e, generator=g) - 0.5) * 0.8  # big enough to change choices
        yield scores, bias, k, scale


def _topk_variants(scores, bias, k, scale) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Typical mistakes, computed so we can recognise them and say what went wrong."""
    choice = (scores + bias).topk(k, dim=-1).indices
    biased_w = (scores + bias).gather(1, choice)
    raw = scores.gather(1, choice)
    plain = scores.topk(k, dim=-1).indices
    plain_w = scores.gather(1, plain)
    return {
        "bias_in_weights": (scale * biased_w / biased_w.sum(-1, keepdim=True), choice),
        "no_renormalisation": (scale * raw, choice),
        "bias_ignored": (scale * plain_w / plain_w.sum(-1, keepdim=True), plain),
        "no_route_scale": (raw / raw.sum(-1, keepdim=True), choice),
    }


_GATE_HINTS = {
    "bias_in_weights": "The bias may only CHOOSE the experts: gather the gate weights from the "
    "unbiased scores (scores.gather(1, indices)), not from scores + bias.",
    "no_renormalisation": "Divide the chosen weights by their sum (per token) before multiplying "
    "by route_scale, so they add up to route_scale.",
    "bias_ignored": "Choose the experts with topk over scores + bias; the bias is what balances the load.",
    "no_route_scale": "Multiply the renormalised weights by route_scale (2.5 in DeepSeek-V3).",
}


def check_topk_gate(fn: Callable) -> CheckResult:
    """Check ``fn(scores (N, E), bias (E,), k, route_scale) -> (weights (N, k), indices (N, k))``.

    The right answer is DeepSeek-V3's gate: experts chosen by ``scores + bias``, weights taken from
    the unbiased scores, renormalised over the chosen experts and multiplied by ``route_scale``.
    """
    for case, (scores, bias, k, scale) in enumerate(_gate_cases()):
        try:
            out = fn(scores.clone(), bias.clone(), k, scale)
            weights, indices = (torch.as_tensor(t) for t in out)
        except Exception as err:  # the learner's code may raise anything
            return failed(f"case {case}: your function raised {type(err).__name__}: {err}",
                          "Return a pair (weights, indices), each of shape (N, k).")  # fmt: skip
        if weights.shape != (scores.shape[0], k) or indices.shape != (scores.shape[0], k):
            return failed(
                f"case {case}: expected weights and indices of shape {(scores.shape[0], k)}, "
                f"got {tuple(weights.shape)} and {tuple(indices.shape)}.",
                "Use .topk(k, dim=-1) over the expert dimension (the last one).",
            )
        got = _as_sorted(weights.float(), indices)
        want = _as_sorted(*topk_route(scores, k, bias, route_scale=scale))
        if torch.equal(got[1], want[1]) and torch.allclose(got[0], want[0], atol=1e-5):
            continue
        for name, variant in _topk_variants(scores, bias, k, scale).items():
            wrong = _as_sorted(*variant)
            if torch.equal(got[1], wrong[1]) and torch.allclose(got[0], wrong[0], atol=1e-5):
                return failed(f"case {case}: {name.replace('_', ' ')}.", _GATE_HINTS[name])
        if not torch.equal(got[1], want[1]):
            return failed(f"case {case}: some tokens chose different experts than the reference.",
                          _GATE_HINTS["bias_ignored"])  # fmt: skip
        return failed(f"case {case}: the experts are right but the weights differ.",
                      _GATE_HINTS["bias_in_weights"] + " " + _GATE_HINTS["no_renormalisation"])  # fmt: skip
    return passed(
        "your gate chooses with the bias, weighs without it, renormalises and scales: DeepSeek-V3's gate."
    )


def check_bias_update(fn: Callable) -> CheckResult:
    """Check ``fn(bias (E,), counts (E,), gamma) -> new bias (E,)``: V3's auxiliary-loss-free step.

    Right: ``bias + gamma * sign(mean(counts) - counts)``: overloaded experts go down by gamma,
    under-loaded ones up, and an expert exactly at the mean stays.
    """
    g = torch.Generator().manual_seed(1)
    cases = [
        (torch.zeros(4), torch.tensor([10.0, 2.0, 4.0, 4.0]), 0.1),
        (torch.randn(8, generator=g), torch.randint(0, 50, (8,), generator=g).float(), 0.001),
        (torch.randn(6, generator=g), torch.tensor([5.0, 5.0, 5.0, 5.0, 5.0, 5.0]), 0.5),
        (torch.zeros(3), torch.tensor([0.0, 3.0, 6.0]), 0.2),
    ]
    for case, (bias, counts, gamma) in enumerate(cases):
        try:
            new = torch.as_tensor(fn(bias.clone(), counts.clone(), gamma)).float()
        except Exception as err:
            return failed(f"case {case}: your function raised {type(err).__name__}: {err}",
                          "Return the new bias, a tensor shaped like bias.")  # fmt: skip
        if new.shape != bias.shape:
            return failed(f"case {case}: expected shape {tuple(bias.shape)}, got {tuple(new.shape)}.",
                          "Update every expert's bias: one value per expert.")  # fmt: skip
        want = update_bias(bias, counts, gamma)
        if torch.allclose(new, want, atol=1e-6):
            continue
        delta = new - bias
        if torch.allclose(delta, -(want - bias), atol=1e-6):
            return failed(f"case {case}: the update has the wrong sign.",
                          "An OVERloaded expert (count above the mean) must become LESS attractive: "
                          "its bias goes DOWN by gamma.")  # fmt: skip
        if torch.allclose(new, bias, atol=1e-9):
            return failed(
                f"case {case}: the bias did not change.", "Return bias + the update, not bias."
            )
        at_mean = counts == counts.mean()
        if (
            at_mean.any()
            and (delta[at_mean].abs() > 1e-9).any()
            and torch.allclose(new[~at_mean], want[~at_mean], atol=1e-6)
        ):
            return failed(f"case {case}: an expert exactly at the mean load moved.",
                          "Use torch.sign(mean - counts): it is 0 for an expert at the mean.")  # fmt: skip
        if not torch.allclose(delta.abs()[delta != 0], torch.full_like(delta[delta != 0], gamma)):
            return failed(f"case {case}: the step size is not gamma.",
                          "V3 moves each bias by exactly gamma (the sign of the load error), "
                          "not by an amount proportional to the error.")  # fmt: skip
        return failed(f"case {case}: the new bias differs from the reference.",
                      "Compare each expert's count with the MEAN count over experts.")  # fmt: skip
    return passed(
        "overloaded experts go down by gamma, under-loaded ones up: auxiliary-loss-free balancing."
    )
