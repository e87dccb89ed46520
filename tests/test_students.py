"""course_lib.students: the careful, careless, lazy and plain students and the base model's corpus."""

import pytest
import torch

from course_lib import grpo, students, tasks
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return TinySeek(TinySeekConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_seq_len=64))


def test_needs_carry_matches_the_careful_trace():
    for ex in tasks.arithmetic(200, seed=4, digits=(1, 3)):
        terms = [int(t) for t in ex.prompt.rstrip("=").split("+")]
        assert students.needs_carry(ex.prompt) == any(
            sum(int(str(t)[::-1][c]) for t in terms if c < len(str(t))) >= 10
            for c in range(
                max(len(str(t)) for t in terms) - 1
            )  # a carry out of the top column is harmless
        )


def test_students_by_hand():
    ex = tasks.Example("47+85=", "", "132", "arithmetic")
    assert (
        students.student_text(ex, "careful") == "<think>7+5=12;4+8+1=13</think><answer>132</answer>"
    )
    assert (
        students.student_text(ex, "careless") == "<think>7+5=12;4+8=12</think><answer>122</answer>"
    )
    assert students.student_text(ex, "lazy") == "<answer>122"
    assert students.student_text(ex, "plain") == "7+5=12;4+8+1=13 so 132"
    rewards = {
        s: (
            grpo.accuracy_reward(ex.prompt, students.student_text(ex, s), ex.answer),
            grpo.strict_format_reward(ex.prompt, students.student_text(ex, s)),
            grpo.naive_format_reward(ex.prompt, students.student_text(ex, s)),
        )
        for s in students.STUDENTS
    }
    assert rewards == {
        "careful": (1, 1, 1),
        "careless": (0, 1, 1),
        "lazy": (0, 0, 1),
        "plain": (0, 0, 0),
    }
    with pytest.raises(ValueError, match="student"):
        students.student_text(ex, "sloppy")


def test_base_corpus_follows_the_mix_and_trains():
    exs = tasks.arithmetic(800, seed=5, digits=2)
    corpus = students.base_corpus(exs, {"careful": 0.25, "lazy": 0.75}, seed=0)
    assert [p for p, _ in corpus] == [e.prompt for e in exs]
    lazy = sum(t.startswith("<answer>") and "</answer>" not in t for _, t in corpus) / len(corpus)
    assert 0.7 < lazy < 0.8
    assert students.base_corpus(exs, {"careful": 1.0}) == [
        (e.prompt, students.student_text(e, "careful")) for e in exs
    ]
    for bad in ({"sloppy": 1.0}, {}, {"careful": -1.0}):
        with pytest.raises(ValueError, match="mix"):
            students.base_corpus(exs, bad)
    with pytest.raises(ValueError, match="additions"):
        students.base_corpus(tasks.arithmetic(3, seed=0, ops="*"), {"careful": 1.0})
    model = _tiny_model()
    tok = default_tokenizer()
    history = students.pretrain_base(
        model, corpus[:64], tok, steps=30, batch_size=16, lr=3e-3, progress=False
    )
    assert history.rows[-1]["loss"] < history.rows[0]["loss"] - 0.5
