"""Checkers for notebook 01's exercises: V3's top-k gate, the bias update, the sequence-wise balance
loss and group-limited routing.

Each checker calls the learner's function positionally on seeded random cases (so renamed
parameters do not matter; a wrong number of parameters is named), compares it with the library
(:mod:`course_lib.moe`), and recognises the typical mistakes to say precisely what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib.checks.base import CheckResult, call_learner, failed, passed
from course_lib.moe import group_scores, sequence_balance_loss, topk_route, update_bias


def _as_sorted(weights: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each row's chosen experts by id so different (valid) orders compare equal."""
    idx, order = indices.long().sort(dim=-1)
    return weights.gather(-1, order), idx


def _tensor(x) -> torch.Tensor | None:
    try:
        return torch.as_tensor(x)
    except Exception:  # the learner may return anything
        return None


# ------------------------------------------------------------------------------------------------
# Exercise: V3's top-k gate
# ------------------------------------------------------------------------------------------------
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
        "softmax_over_chosen": (scale * raw.softmax(-1), choice),
        "normalised_over_all_experts": (scale * raw / scores.sum(-1, keepdim=True), choice),
        "softmax_over_all_experts": (scale * scores.softmax(-1).gather(1, choice), choice),
        "no_renormalisation": (scale * raw, choice),
        "bias_ignored": (scale * plain_w / plain_w.sum(-1, keepdim=True), plain),
        "no_route_scale": (raw / raw.sum(-1, keepdim=True), choice),
    }


_GATE = {
    "bias_in_weights": ("the weights include the bias",
                        "The bias may only CHOOSE the experts: gather the gate weights from the "
                        "unbiased scores (scores.gather(1, indices)), not from scores + bias."),
    "softmax_over_chosen": ("the weights are a softmax over the chosen scores",
                            "V3 renormalises by dividing, not with a softmax: weights / "
                            "weights.sum(-1, keepdim=True) keeps the ratios of the sigmoid "
                            "scores ([V3] eq. 13); a softmax changes them."),
    "normalised_over_all_experts": ("the weights are divided by the sum over ALL experts",
                                    "Renormalise over the CHOSEN experts only, so the k weights "
                                    "add up to one (then times route_scale)."),
    "softmax_over_all_experts": ("the weights come from a softmax over all experts (V2's gate)",
                                 "V3's scores are already sigmoid affinities: take them as they "
                                 "are, then divide by their sum over the chosen experts."),
    "no_renormalisation": ("the weights are not renormalised",
                           "Divide the chosen weights by their sum (per token) before multiplying "
                           "by route_scale, so they add up to route_scale."),
    "bias_ignored": ("the experts were chosen without the bias",
                     "Choose the experts with topk over scores + bias; the bias is what "
                     "balances the load."),
    "no_route_scale": ("the route scale is missing",
                       "Multiply the renormalised weights by route_scale (2.5 in DeepSeek-V3)."),
}  # fmt: skip


def check_topk_gate(fn: Callable) -> CheckResult:
    """Check ``fn(scores (N, E), bias (E,), k, route_scale) -> (weights (N, k), indices (N, k))``.

    The right answer is DeepSeek-V3's gate: experts chosen by ``scores + bias``, weights taken from
    the unbiased scores, renormalised over the chosen experts and multiplied by ``route_scale``.
    """
    for case, (scores, bias, k, scale) in enumerate(_gate_cases()):
        out, error = call_learner(fn, (scores.clone(), bias.clone(), k, scale),
                                  "scores, bias, k, route_scale",
                                  "Return a pair (weights, indices), each of shape (N, k).")  # fmt: skip
        if error is not None:
            return error
        pair = tuple(out) if isinstance(out, (tuple, list)) else ()
        weights, indices = (_tensor(t) for t in pair) if len(pair) == 2 else (None, None)
        if weights is None or indices is None:
            return failed(f"case {case}: expected a pair (weights, indices), got {type(out).__name__}.",
                          "End with: return weights, indices.")  # fmt: skip
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
                return failed(f"case {case}: {_GATE[name][0]}.", _GATE[name][1])
        if not torch.equal(got[1], want[1]):
            return failed(f"case {case}: some tokens chose different experts than the reference.",
                          _GATE["bias_ignored"][1])  # fmt: skip
        return failed(f"case {case}: the experts are right but the weights differ.",
                      "Gather the weights from the unbiased scores, divide by their sum over the "
                      "chosen experts, multiply by route_scale.")  # fmt: skip
    return passed(
        "your gate chooses with the bias, weighs without it, renormalises and scales: DeepSeek-V3's gate."
    )


# ------------------------------------------------------------------------------------------------
# Exercise: the auxiliary-loss-free bias update
# ------------------------------------------------------------------------------------------------
def check_bias_update(fn: Callable) -> CheckResult:
    """Check ``fn(bias (E,), counts (E,), gamma) -> new bias (E,)``: V3's auxiliary-loss-free step.

    Right: ``bias + gamma * sign(mean(counts) - counts)``: overloaded experts go down by gamma,
    under-loaded ones up, and an expert exactly at the mean stays.
    """
    g = torch.Generator().manual_seed(1)
    cases = [
        (torch.full((4,), 0.3), torch.tensor([10.0, 2.0, 4.0, 4.0]), 0.1),
        (torch.randn(8, generator=g), torch.randint(0, 50, (8,), generator=g).float(), 0.001),
        (torch.randn(6, generator=g), torch.tensor([5.0, 5.0, 5.0, 5.0, 5.0, 5.0]), 0.5),
        (torch.full((3,), -0.2), torch.tensor([0.0, 3.0, 6.0]), 0.2),
    ]
    for case, (bias, counts, gamma) in enumerate(cases):
        out, error = call_learner(fn, (bias.clone(), counts.clone(), gamma), "bias, counts, gamma",
                                  "Return the new bias, a tensor shaped like bias.")  # fmt: skip
        if error is not None:
            return error
        new = _tensor(out)
        if new is None or new.shape != bias.shape:
            shape = "nothing usable" if new is None else f"shape {tuple(new.shape)}"
            return failed(f"case {case}: expected shape {tuple(bias.shape)}, got {shape}.",
                          "Update every expert's bias: one value per expert.")  # fmt: skip
        new = new.float()
        want = update_bias(bias, counts, gamma)
        if torch.allclose(new, want, atol=1e-6):
            continue
        delta = new - bias
        if torch.allclose(new, want - bias, atol=1e-6):
            return failed(f"case {case}: you returned only the change, not the new bias.",
                          "The function returns the NEW bias: bias + gamma * sign(...).")  # fmt: skip
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


# ------------------------------------------------------------------------------------------------
# Exercise: the sequence-wise balance loss ([V3] eq. 17-20)
# ------------------------------------------------------------------------------------------------
def _loss_cases():
    g = torch.Generator().manual_seed(7)
    for B, T, E, k, alpha in ((3, 6, 6, 2, 0.01), (2, 9, 8, 3, 0.1), (4, 5, 4, 1, 1.0)):
        scores = torch.rand(B, T, E, generator=g) * 0.9 + 0.05  # sigmoid affinities
        skew = (
            torch.linspace(0.4, -0.4, E)[None, None]
            * torch.tensor([1.0, -1.0] * (B // 2) + [1.0] * (B % 2))[:, None, None]
        )
        indices = (scores + skew).topk(k, dim=-1).indices  # each sequence skewed its own way
        yield scores, indices, alpha


def _loss_variants(scores: torch.Tensor, indices: torch.Tensor, alpha: float) -> dict[str, float]:
    B, T, E = scores.shape
    k = indices.shape[-1]
    hits = torch.zeros(B, E).scatter_add_(1, indices.reshape(B, -1), torch.ones(B, T * k))
    probs = scores / scores.sum(-1, keepdim=True)
    f, P = hits * E / (k * T), probs.mean(1)
    flat_f = hits.sum(0) * E / (k * B * T)
    return {
        "batch_wise": alpha * float((flat_f * probs.mean((0, 1))).sum()),
        "raw_scores": alpha * float((f * scores.mean(1)).sum(-1).mean()),
        "fraction_f": alpha * float((hits / (k * T) * P).sum(-1).mean()),
        "fraction_f_per_token": alpha * float((hits / T * P).sum(-1).mean()),
        "no_alpha": float((f * P).sum(-1).mean()),
        "summed_over_sequences": alpha * float((f * P).sum(-1).sum()),
        "soft_f": alpha * float((probs.sum(1) * E / T * P).sum(-1).mean()),
    }


_LOSS = {
    "batch_wise": ("f and P are computed over the whole batch",
                   "V3's loss is SEQUENCE-wise: compute f_i and P_i for each sequence (over its T "
                   "tokens), take sum_i f_i P_i per sequence, then average over the sequences."),
    "raw_scores": ("P uses the raw sigmoid scores",
                   "Normalise each token's affinities first, s' = s / s.sum(-1, keepdim=True) "
                   "([V3] eq. 19), then average them over the sequence to get P_i."),
    "fraction_f": ("f is the plain fraction of routing decisions",
                   "Scale the counts by N_r / (K_r T), i.e. E / (k * T) ([V3] eq. 18), so that a "
                   "perfectly balanced sequence has f_i = 1 and the loss is 1 * alpha."),
    "fraction_f_per_token": ("f is divided by T only",
                             "Each token makes k routing decisions: f_i = E / (k T) * count_i."),
    "no_alpha": ("alpha is missing", "Multiply the loss by alpha."),
    "summed_over_sequences": ("the sequences are summed, not averaged",
                              "Average sum_i f_i P_i over the B sequences (.mean()), so the loss "
                              "does not grow with the batch size."),
    "soft_f": ("f uses the affinities instead of the choices",
               "f_i counts the tokens whose top-k CHOSE expert i (an indicator, from indices); "
               "only P_i uses the affinities."),
}  # fmt: skip


def check_balance_loss(fn: Callable) -> CheckResult:
    """Check ``fn(scores (B, T, E), indices (B, T, k), alpha) -> scalar``: V3's sequence-wise
    balance loss ``alpha * mean_b sum_i f_i P_i`` (:func:`course_lib.moe.sequence_balance_loss`,
    sigmoid scores), and that it carries a gradient to the scores."""
    for case, (scores, indices, alpha) in enumerate(_loss_cases()):
        s = scores.clone().requires_grad_(True)
        out, error = call_learner(fn, (s, indices.clone(), alpha), "scores, indices, alpha",
                                  "Return one number, a 0-dim tensor: alpha * (the loss).")  # fmt: skip
        if error is not None:
            return error
        got = _tensor(out) if not isinstance(out, torch.Tensor) else out
        if got is None or got.numel() != 1:
            shape = "nothing usable" if got is None else f"shape {tuple(got.shape)}"
            return failed(f"case {case}: expected one number, got {shape}.",
                          "Sum over experts, average over sequences: the loss is a scalar.")  # fmt: skip
        want = alpha * float(sequence_balance_loss(scores, indices, scores.shape[-1], "sigmoid"))
        value = float(got.detach().reshape(()))
        if abs(value - want) <= 1e-5 * max(1.0, abs(want)):
            if not (isinstance(out, torch.Tensor) and out.requires_grad):
                return failed(f"case {case}: the value is right but it has no gradient.",
                              "Keep it a tensor computed from scores (no .item(), no float(), no "
                              ".detach()): the router learns from this loss through P_i.")  # fmt: skip
            continue
        for name, v in _loss_variants(scores, indices, alpha).items():
            if abs(value - v) <= 1e-5 * max(1.0, abs(v)):
                return failed(f"case {case}: {_LOSS[name][0]}.", _LOSS[name][1])
        return failed(f"case {case}: you gave {value:.6f}, the loss is {want:.6f}.",
                      "Per sequence: f_i = E/(k T) * (times expert i was chosen), P_i = mean over "
                      "tokens of s_i / sum_j s_j; loss = alpha * mean over sequences of sum_i f_i P_i.")  # fmt: skip
    return passed("alpha * mean over sequences of sum_i f_i P_i: V3's sequence-wise balance loss.")


# ------------------------------------------------------------------------------------------------
# Exercise: group-limited routing (V3's node-limited routing)
# ------------------------------------------------------------------------------------------------
def _group_cases():
    g = torch.Generator().manual_seed(3)
    for N, E, k, G, TG in ((12, 8, 2, 4, 2), (16, 16, 4, 4, 2), (10, 12, 3, 6, 2)):
        scores = torch.rand(N, E, generator=g)
        bias = (torch.rand(E, generator=g) - 0.5) * 0.6 - 0.8  # mostly negative biased scores
        yield scores, bias, k, G, TG


def _top_k_in(choice: torch.Tensor, keep: torch.Tensor, k: int, fill: float) -> torch.Tensor:
    return choice.masked_fill(~keep, fill).topk(k, dim=-1).indices


def _group_variants(scores, bias, k, G, TG) -> dict[str, torch.Tensor]:
    N, E = scores.shape
    biased = scores + bias

    def keep_by(group_score: torch.Tensor) -> torch.Tensor:
        best = group_score.topk(TG, dim=-1).indices
        keep = torch.zeros(N, G, dtype=torch.bool).scatter_(1, best, True)
        return keep[:, :, None].expand(N, G, E // G).reshape(N, E)

    per_group = biased.view(N, G, E // G)
    v3 = keep_by(group_scores(biased, G, "top2_sum"))
    return {
        "group_max": _top_k_in(biased, keep_by(per_group.amax(-1)), k, float("-inf")),
        "group_sum_all": _top_k_in(biased, keep_by(per_group.sum(-1)), k, float("-inf")),
        "groups_without_bias": _top_k_in(
            biased, keep_by(group_scores(scores, G)), k, float("-inf")
        ),
        "masked_with_zero": _top_k_in(biased, v3, k, 0.0),
        "no_group_limit": biased.topk(k, dim=-1).indices,
        "experts_without_bias": _top_k_in(scores, v3, k, float("-inf")),
    }


_GROUP = {
    "group_max": ("groups are ranked by their best score (V2's device-limited rule)",
                  "V3 ranks a group by the SUM of its two best (biased) expert scores: "
                  "view(N, G, E // G).topk(2, dim=-1).values.sum(-1)."),
    "group_sum_all": ("groups are ranked by the sum of ALL their scores",
                      "Only the two best experts of a group count: topk(2) inside each group, then sum."),
    "groups_without_bias": ("groups are ranked without the bias",
                            "Add the bias before grouping: the reference ranks groups by the "
                            "biased scores, so balancing steers groups too."),
    "masked_with_zero": ("experts outside the chosen groups were masked with 0",
                         "Biased scores can be negative, so a 0 can still win the top-k: mask the "
                         "other groups' experts with float('-inf')."),
    "no_group_limit": ("some tokens use experts outside their best groups",
                       "First keep only the experts of the topk_groups best groups, then take the "
                       "top-k experts among them."),
    "experts_without_bias": ("the experts inside the groups were chosen without the bias",
                             "Inside the eligible groups, choose the top-k of scores + bias."),
}  # fmt: skip


def check_group_routing(fn: Callable) -> CheckResult:
    """Check ``fn(scores (N, E), bias (E,), k, n_groups, topk_groups) -> indices (N, k)``: V3's
    group-limited choice (groups ranked by the sum of their two best biased scores, the others
    masked with -inf, then the top-k of scores + bias). Compared as sets per token."""
    first_wrong, consistent = None, set(_GROUP)  # mistakes that explain every case so far
    for case, (scores, bias, k, G, TG) in enumerate(_group_cases()):
        out, error = call_learner(fn, (scores.clone(), bias.clone(), k, G, TG),
                                  "scores, bias, k, n_groups, topk_groups",
                                  "Return the chosen experts' indices, shape (N, k).")  # fmt: skip
        if error is not None:
            return error
        got = _tensor(out)
        if got is None or got.shape != (scores.shape[0], k):
            shape = "nothing usable" if got is None else f"shape {tuple(got.shape)}"
            return failed(f"case {case}: expected indices of shape {(scores.shape[0], k)}, got {shape}.",
                          "Return only the indices: one row per token, k experts each.")  # fmt: skip
        got = got.long().sort(-1).values
        want = topk_route(scores, k, bias, G, TG)[1].sort(-1).values
        if first_wrong is None and not torch.equal(got, want):
            first_wrong = case
        variants = _group_variants(scores, bias, k, G, TG)
        consistent &= {n for n, v in variants.items() if torch.equal(got, v.sort(-1).values)}
    if first_wrong is not None:
        for name in _GROUP:  # several mistakes can coincide on one case, rarely on all of them
            if name in consistent:
                return failed(f"case {first_wrong}: {_GROUP[name][0]}.", _GROUP[name][1])
        return failed(f"case {first_wrong}: some tokens chose other experts than V3's router.",
                      "Rank groups by the sum of their two best biased scores, keep the best "
                      "topk_groups, mask the rest with -inf, then topk of scores + bias.")  # fmt: skip
    return passed(
        "groups ranked by their top-2 sum, the rest masked with -inf, top-k inside: V3's routing."
    )
