import torch

from course_lib.checks.moe import (
    check_balance_loss,
    check_bias_update,
    check_group_routing,
    check_topk_gate,
)


# --- top-k gate ------------------------------------------------------------------------------
def gate_right(scores, bias, k, route_scale):
    idx = (scores + bias).topk(k, dim=-1).indices
    w = scores.gather(1, idx)
    return route_scale * w / w.sum(-1, keepdim=True), idx


def gate_right_other_order(scores, bias, k, route_scale):
    w, idx = gate_right(scores, bias, k, route_scale)
    return w.flip(-1), idx.flip(-1)


def gate_bias_in_weights(scores, bias, k, route_scale):
    biased = scores + bias
    idx = biased.topk(k, dim=-1).indices
    w = biased.gather(1, idx)
    return route_scale * w / w.sum(-1, keepdim=True), idx


def gate_no_renorm(scores, bias, k, route_scale):
    idx = (scores + bias).topk(k, dim=-1).indices
    return route_scale * scores.gather(1, idx), idx


def gate_bias_ignored(scores, bias, k, route_scale):
    idx = scores.topk(k, dim=-1).indices
    w = scores.gather(1, idx)
    return route_scale * w / w.sum(-1, keepdim=True), idx


def gate_no_scale(scores, bias, k, route_scale):
    return gate_right(scores, bias, k, 1.0)


def gate_wrong_shape(scores, bias, k, route_scale):
    w, idx = gate_right(scores, bias, k, route_scale)
    return w.T, idx.T


def gate_crashes(scores, bias, k, route_scale):
    raise NotImplementedError("TODO")


def test_topk_gate_checker_accepts_right_answers():
    assert check_topk_gate(gate_right)
    assert check_topk_gate(gate_right_other_order)


def test_topk_gate_checker_rejects_typical_mistakes_with_the_right_hint():
    cases = {
        gate_bias_in_weights: "unbiased",
        gate_no_renorm: "Divide",
        gate_bias_ignored: "scores + bias",
        gate_no_scale: "route_scale",
        gate_wrong_shape: "shape",
        gate_crashes: "NotImplementedError",
    }
    for fn, words in cases.items():
        result = check_topk_gate(fn)
        assert not result, fn.__name__
        assert words in str(result), (fn.__name__, str(result))


# --- bias update -----------------------------------------------------------------------------
def update_right(bias, counts, gamma):
    return bias + gamma * torch.sign(counts.mean() - counts)


def update_right_in_place(bias, counts, gamma):
    bias += gamma * torch.sign(counts.float().mean() - counts)
    return bias


def update_wrong_sign(bias, counts, gamma):
    return bias + gamma * torch.sign(counts - counts.mean())


def update_proportional(bias, counts, gamma):
    return bias + gamma * (counts.mean() - counts)


def update_where(bias, counts, gamma):  # moves experts exactly at the mean too
    return bias + torch.where(counts > counts.mean(), -gamma, gamma)


def update_noop(bias, counts, gamma):
    return bias


def test_bias_update_checker():
    assert check_bias_update(update_right)
    assert check_bias_update(update_right_in_place)
    expected = {
        update_wrong_sign: "wrong sign",
        update_proportional: "not gamma",
        update_where: "at the mean",
        update_noop: "did not change",
    }
    for fn, words in expected.items():
        result = check_bias_update(fn)
        assert not result, fn.__name__
        assert words in str(result), (fn.__name__, str(result))


# --- more gate mistakes (the old checker answered these with the bias-in-weights hint) ---------
def gate_softmax_over_chosen(scores, bias, k, route_scale):
    idx = (scores + bias).topk(k, dim=-1).indices
    return route_scale * scores.gather(1, idx).softmax(-1), idx


def gate_normalised_over_all(scores, bias, k, route_scale):
    idx = (scores + bias).topk(k, dim=-1).indices
    return route_scale * scores.gather(1, idx) / scores.sum(-1, keepdim=True), idx


def gate_v2_softmax(scores, bias, k, route_scale):
    idx = (scores + bias).topk(k, dim=-1).indices
    return route_scale * scores.softmax(-1).gather(1, idx), idx


def test_topk_gate_checker_names_softmax_and_wrong_normalisation():
    expected = {
        gate_softmax_over_chosen: "softmax over the chosen",
        gate_normalised_over_all: "sum over ALL experts",
        gate_v2_softmax: "V2's gate",
    }
    for fn, words in expected.items():
        result = check_topk_gate(fn)
        assert not result and words in result.message, (fn.__name__, str(result))
        assert not result.hint.startswith("The bias may only CHOOSE"), fn.__name__


def test_checkers_call_positionally_and_name_the_expected_signature():
    def renamed(s, b, top, scale):  # other parameter names: still fine
        return gate_right(s, b, top, scale)

    assert check_topk_gate(renamed)
    result = check_topk_gate(lambda scores, bias: None)
    assert not result and "scores, bias, k, route_scale" in result.message


def update_delta_only(bias, counts, gamma):
    return gamma * torch.sign(counts.mean() - counts)


def test_bias_update_checker_names_a_returned_delta():
    result = check_bias_update(update_delta_only)
    assert not result and "only the change" in result.message, str(result)


# --- the sequence-wise balance loss ------------------------------------------------------------
def _parts(scores, indices):
    B, T, E = scores.shape
    k = indices.shape[-1]
    hits = torch.zeros(B, E).scatter_add_(1, indices.reshape(B, -1), torch.ones(B, T * k))
    return B, T, E, k, hits, scores / scores.sum(-1, keepdim=True)


def loss_right(scores, indices, alpha):
    B, T, E, k, hits, probs = _parts(scores, indices)
    return alpha * (hits * E / (k * T) * probs.mean(1)).sum(-1).mean()


def loss_batch_wise(scores, indices, alpha):
    B, T, E, k, hits, probs = _parts(scores, indices)
    return alpha * (hits.sum(0) * E / (k * B * T) * probs.mean((0, 1))).sum()


def loss_raw_scores(scores, indices, alpha):
    B, T, E, k, hits, probs = _parts(scores, indices)
    return alpha * (hits * E / (k * T) * scores.mean(1)).sum(-1).mean()


def loss_fraction(scores, indices, alpha):
    B, T, E, k, hits, probs = _parts(scores, indices)
    return alpha * (hits / (k * T) * probs.mean(1)).sum(-1).mean()


def loss_no_alpha(scores, indices, alpha):
    return loss_right(scores, indices, 1.0)


def loss_summed(scores, indices, alpha):
    B, T, E, k, hits, probs = _parts(scores, indices)
    return alpha * (hits * E / (k * T) * probs.mean(1)).sum()


def loss_soft_f(scores, indices, alpha):
    B, T, E, k, hits, probs = _parts(scores, indices)
    return alpha * (probs.sum(1) * E / T * probs.mean(1)).sum(-1).mean()


def loss_detached(scores, indices, alpha):
    return loss_right(scores, indices, alpha).item()


def test_balance_loss_checker():
    assert check_balance_loss(loss_right), str(check_balance_loss(loss_right))
    expected = {
        loss_batch_wise: "whole batch",
        loss_raw_scores: "raw sigmoid",
        loss_fraction: "plain fraction",
        loss_no_alpha: "alpha is missing",
        loss_summed: "summed, not averaged",
        loss_soft_f: "affinities instead of the choices",
        loss_detached: "no gradient",
    }
    for fn, words in expected.items():
        result = check_balance_loss(fn)
        assert not result and words in result.message, (fn.__name__, str(result))
    assert "scores, indices, alpha" in check_balance_loss(lambda s, i: 0).message


# --- group-limited routing ------------------------------------------------------------------
def _route(scores, bias, k, G, TG, rank_by, fill=float("-inf"), choose_with_bias=True, limit=True):
    N, E = scores.shape
    biased = scores + bias
    group = rank_by.group(rank_by(scores, biased).view(N, G, E // G))  # (N, G)
    keep = torch.zeros(N, G, dtype=torch.bool).scatter_(1, group.topk(TG, -1).indices, True)
    keep = keep[:, :, None].expand(N, G, E // G).reshape(N, E)
    choice = biased if choose_with_bias else scores
    if limit:
        choice = choice.masked_fill(~keep, fill)
    return choice.topk(k, dim=-1).indices


class _Rank:
    def __init__(self, use_bias, group):
        self.use_bias, self.group = use_bias, group

    def __call__(self, scores, biased):
        return biased if self.use_bias else scores


TOP2 = _Rank(True, lambda g: g.topk(2, -1).values.sum(-1))


def groups_right(scores, bias, k, n_groups, topk_groups):
    return _route(scores, bias, k, n_groups, topk_groups, TOP2)


def test_group_routing_checker():
    assert check_group_routing(groups_right), str(check_group_routing(groups_right))
    expected = {
        "best score": lambda s, b, k, G, TG: _route(
            s, b, k, G, TG, _Rank(True, lambda g: g.amax(-1))
        ),
        "ALL their scores": lambda s, b, k, G, TG: _route(
            s, b, k, G, TG, _Rank(True, lambda g: g.sum(-1))
        ),
        "without the bias": lambda s, b, k, G, TG: _route(
            s, b, k, G, TG, _Rank(False, lambda g: g.topk(2, -1).values.sum(-1))
        ),
        "masked with 0": lambda s, b, k, G, TG: _route(s, b, k, G, TG, TOP2, fill=0.0),
        "outside their best groups": lambda s, b, k, G, TG: _route(
            s, b, k, G, TG, TOP2, limit=False
        ),
        "chosen without the bias": lambda s, b, k, G, TG: _route(
            s, b, k, G, TG, TOP2, choose_with_bias=False
        ),
    }
    for words, fn in expected.items():
        result = check_group_routing(fn)
        assert not result and words in result.message, (words, str(result))
    assert "expected indices of shape" in check_group_routing(lambda s, b, k, G, TG: s).message
