import torch

from course_lib.checks.moe import check_bias_update, check_topk_gate


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
