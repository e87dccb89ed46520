"""Checkers of notebook 05 accept right answers and explain wrong ones."""

from __future__ import annotations

import math

import torch

from course_lib import formats
from course_lib import look_inside as li
from course_lib.checks import look_inside as checks


def test_check_entropy():
    def right(logits):
        logp = torch.log_softmax(logits, -1)
        return float(-(logp.exp() * logp).sum())

    def bits(logits):
        return right(logits) / math.log(2)

    def naive(logits):
        p = logits.exp() / logits.exp().sum()
        return float(-(p * p.log()).sum())

    assert checks.check_entropy(right)
    assert "bits" in checks.check_entropy(bits).message
    res = checks.check_entropy(naive)
    assert not res and ("nan" in res.message or "expected" in res.message)
    assert not checks.check_entropy(lambda x: 1 / 0)


def test_check_split():
    def right(text):
        t = formats.split_thinking(text)
        return t.thinking, t.answer

    def first_tag(text):
        a, _, b = text.partition("</think>")
        return a.strip(), b.strip()

    assert checks.check_split(right)
    res = checks.check_split(first_tag)
    # the real mistake is first vs last </think>, not the tags left in the answer
    assert not res and "FIRST" in res.hint and "rfind" in res.hint

    def first_tag_cleaned(text):
        a, _, b = text.partition("</think>")
        return tuple(p.replace("</think>", "").replace("<think>", "").strip() for p in (a, b))

    res = checks.check_split(first_tag_cleaned)
    assert not res and "FIRST" in res.hint

    def tags_kept(text):  # splits at the last </think> but leaves <think> in the thinking
        i = text.rfind("</think>")
        return (text.strip(), "") if i < 0 else (text[:i].strip(), text[i + 8 :].strip())

    res = checks.check_split(tags_kept)
    assert not res and "Remove the <think>" in res.hint


def _lens(top_rows):
    top = torch.tensor(top_rows)[:, None, None]  # (L+1, T=1, k=1)
    return li.LogitLens(
        tokens=["x"],
        layer_names=["embed"] + [f"layer {i}" for i in range(len(top_rows) - 1)],
        top_ids=top,
        top_probs=torch.ones_like(top, dtype=torch.float),
        top_tokens=[[[str(v)]] for v in top_rows],
        entropy=torch.zeros(len(top_rows), 1),
        next_prob=torch.zeros(len(top_rows), 0),
        logits_last=torch.zeros(1, 3),
    )


def test_settled_layer():
    lens = _lens([5, 7, 7, 2, 7, 7])
    assert checks.first_settled_layer(lens) == 4
    assert checks.check_settled_layer(4, lens)
    assert not checks.check_settled_layer(1, lens)
    assert checks.first_settled_layer(_lens([3, 3, 3])) == 0
