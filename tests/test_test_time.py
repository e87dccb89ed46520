"""course_lib.test_time: the majority vote, cons@k and the thinking budget on scripted models."""

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib import test_time
from course_lib.tasks import Example
from course_lib.tokenizer import default_tokenizer
from tests.test_sampling import Scripted  # writes given texts: one test double, kept there

TOK = default_tokenizer()


class Careful(nn.Module):
    """Writes the careful completion of its prompt, going on from any prefix of it; after a forced
    ``<answer>`` in the middle of its thinking it guesses 0."""

    def __init__(self, completions: dict[str, str]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.completions = completions

    def generate(self, idx, max_new_tokens, eos_id, **_):
        rows = []
        for row in idx.tolist():
            text = TOK.decode([t for t in row if t not in (TOK.pad_id, TOK.bos_id)])
            prompt = next(p for p in self.completions if text.startswith(p))
            written, full = text[len(prompt) :], self.completions[prompt]
            rest = full[len(written) :] if full.startswith(written) else "0</answer>"
            rows.append(TOK.encode(rest, add_eos=True)[:max_new_tokens])
        out = torch.full((len(idx), max(len(r) for r in rows)), eos_id)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return torch.cat([idx, out], dim=1)


def test_majority_vote_by_hand():
    assert test_time.majority_vote(["12", None, "13", "13", "12"]) == "12"  # tie: sampled first
    assert test_time.majority_vote([None, None, "5"]) == "5"  # unreadable answers do not vote
    assert test_time.majority_vote(["7", "5", "5"]) == "5"
    assert test_time.majority_vote([None, None]) is None
    assert test_time.majority_vote([]) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "10"])), max_size=12))
def test_majority_vote_is_a_most_common_answer_sampled_first(answers):
    got = test_time.majority_vote(answers)
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        assert got is None
        return
    top = max(counts.values())
    assert counts[got] == top
    assert answers.index(got) == min(answers.index(a) for a in counts if counts[a] == top)


def _answer(a: str) -> str:
    return f"<think>x</think><answer>{a}</answer>"


def test_cons_at_k_votes_in_disjoint_blocks():
    exs = [Example("1+1=", "", "2", "arithmetic"), Example("2+2=", "", "4", "arithmetic")]
    # 4 samples per problem, consecutive: problem 1 right 1 of 4 (but 3 the same wrong answer
    # would win any vote); problem 2 right twice, once unreadable.
    first = [_answer("2"), _answer("3"), _answer("3"), _answer("3")]
    second = [_answer("4"), "no answer", _answer("4"), _answer("5")]
    got = test_time.cons_at_k(Scripted(first + second), TOK, exs, ks=(1, 2, 4), max_new_tokens=40)
    # k=1: pass@1 = (1/4 + 2/4) / 2
    # k=2: blocks [2,3] -> 2 (tie, first), [3,3] -> 3; [4,None] -> 4, [4,5] -> 4: (1/2 + 1) / 2
    # k=4: problem 1 -> 3 (wrong), problem 2 -> 4 (right): 1/2
    assert got == {1: pytest.approx(3 / 8), 2: pytest.approx(3 / 4), 4: pytest.approx(1 / 2)}
    with pytest.raises(ValueError, match="divide"):
        test_time.cons_at_k(Scripted([]), TOK, exs, ks=(1, 3, 4))
    with pytest.raises(ValueError, match="at least one example"):
        test_time.cons_at_k(Scripted([]), TOK, [], ks=(1,))


def test_budget_cuts_the_thinking_and_forces_an_answer():
    completion = "<think>7+5=12;4+8+1=13</think><answer>132</answer>"
    model = Careful({"47+85=": completion})
    ex = [Example("47+85=", "", "132", "arithmetic")]
    thinking = len(TOK.encode("7+5=12;4+8+1=13"))  # 15 tokens
    got = test_time.budget_accuracy(model, TOK, ex, budgets=(0, 5, thinking - 1, thinking, 40))
    # Cut before the thinking closes: </think><answer> is forced and the model guesses 0.
    assert got == {0: 0.0, 5: 0.0, thinking - 1: 0.0, thinking: 1.0, 40: 1.0}
    with pytest.raises(ValueError, match="budgets"):
        test_time.budget_accuracy(model, TOK, ex, budgets=(-1,))


def test_accuracy_by_length_counts_right_samples_per_thinking_length():
    exs = [Example("1+1=", "", "2", "arithmetic"), Example("2+2=", "", "4", "arithmetic")]
    written = [
        "<think>1+1=2</think><answer>2</answer>",  # 5 tokens, right
        "<think>1+1=3</think><answer>3</answer>",  # 5 tokens, wrong
        "<answer>2</answer>",  # no thinking: left out
        "<think>2+2=4;ok</think><answer>4</answer>",  # 8 tokens, right
    ]
    got = test_time.accuracy_by_length(Scripted(written), TOK, exs, samples=2)
    assert got == {5: (1, 2), 8: (1, 1)}
    with pytest.raises(ValueError, match="samples"):
        test_time.accuracy_by_length(Scripted([]), TOK, exs, samples=0)
