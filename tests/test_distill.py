"""Tests for course_lib.distill: KD losses on hand-worked cases, the rejection filter, trace data."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import distill, formats
from course_lib.data import IGNORE, sft_rows
from course_lib.train import lm_loss


def _logits_of(probs: list[float]) -> torch.Tensor:
    return torch.log(torch.tensor(probs, dtype=torch.float64))


# ---------------------------------------------------------------- losses


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 5.0])
def test_kl_is_zero_when_student_equals_teacher(temperature):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=g)
    assert distill.kd_loss(logits, logits.clone(), temperature).item() == pytest.approx(
        0.0, abs=1e-6
    )
    # shifting all logits of a row by a constant changes nothing either
    assert distill.kd_loss(logits + 3.0, logits, temperature).item() == pytest.approx(0.0, abs=1e-5)


def test_kl_is_positive_when_they_differ():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    per = distill.kd_kl_per_position(s, t, 1.0)
    assert per.shape == (5,)
    assert (per > 0).all()


def test_kl_matches_a_hand_worked_case():
    # teacher p = (1/2, 1/4, 1/4), student q uniform: KL(p||q) = 1/2 ln 1.5 + 1/2 ln 0.75
    teacher = _logits_of([0.5, 0.25, 0.25])
    student = torch.zeros(3, dtype=torch.float64)
    expected = 0.5 * math.log(1.5) + 0.5 * math.log(0.75)
    assert expected == pytest.approx(0.0588915, abs=1e-6)
    got = distill.kd_kl_per_position(student, teacher, 1.0).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # at T = 1 the T**2 factor is 1; the reverse direction is a different number
    assert distill.kd_loss(student[None], teacher[None], 1.0).item() == pytest.approx(
        expected, rel=1e-5
    )
    reverse = distill.kd_kl_per_position(teacher, student, 1.0).item()
    assert reverse == pytest.approx(
        math.log(1 / 3) - (math.log(0.5) + 2 * math.log(0.25)) / 3, rel=1e-5
    )
    assert abs(reverse - expected) > 1e-3


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_loss_matches_a_direct_computation(temperature):
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 6, 9, generator=g), torch.randn(2, 6, 9, generator=g)
    p = torch.softmax(t / temperature, -1)
    q = torch.softmax(s / temperature, -1)
    direct = (p * (p.log() - q.log())).sum(-1).mean() * temperature**2
    torch_ref = (
        F.kl_div(
            F.log_softmax(s / temperature, -1).reshape(-1, 9),
            p.reshape(-1, 9),
            reduction="batchmean",
        )
        * temperature**2
    )
    got = distill.kd_loss(s, t, temperature)
    torch.testing.assert_close(got, direct, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got, torch_ref, rtol=1e-5, atol=1e-6)


def test_temperature_softens_the_distribution():
    logits = torch.tensor([4.0, 2.0, 1.0, 0.0, -1.0])
    entropies = []
    for temperature in [0.25, 0.5, 1.0, 2.0, 4.0, 16.0]:
        p = distill.soft_targets(logits, temperature)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-6)
        assert torch.argmax(p).item() == 0  # the ranking never changes
        entropies.append(-(p * p.log()).sum().item())
    assert all(a < b for a, b in zip(entropies, entropies[1:]))
    assert entropies[-1] == pytest.approx(math.log(5), abs=0.02)  # near uniform
    assert distill.soft_targets(logits, 0.05)[0].item() > 0.999  # near one-hot
    torch.testing.assert_close(distill.soft_targets(logits, 1.0), torch.softmax(logits, -1))


def test_t_squared_keeps_gradients_comparable_across_temperatures():
    g = torch.Generator().manual_seed(3)
    s0, t = torch.randn(64, 10, generator=g), torch.randn(64, 10, generator=g) * 0.5
    norms = []
    for temperature in [2.0, 4.0, 8.0]:
        s = s0.clone().requires_grad_(True)
        distill.kd_loss(s, t, temperature).backward()
        norms.append(s.grad.norm().item())
        # without T**2 the gradient would shrink like 1/T**2
        s2 = s0.clone().requires_grad_(True)
        (distill.kd_loss(s2, t, temperature) / temperature**2).backward()
        assert s2.grad.norm().item() == pytest.approx(norms[-1] / temperature**2, rel=1e-4)
    # with T**2 the gradient stays within a small factor (it tends to a constant as T grows)
    assert max(norms) / min(norms) < 1.5


def test_gradient_points_the_student_towards_the_teacher():
    temperature = 2.0
    teacher = torch.tensor([[3.0, 0.0, -1.0, 0.5]])
    student = torch.zeros(1, 4, requires_grad=True)
    distill.kd_loss(student, teacher, temperature).backward()
    p = distill.soft_targets(teacher, temperature)
    q = distill.soft_targets(student.detach(), temperature)
    # d/dz [T^2 KL(p || softmax(z/T))] = T (q - p)
    torch.testing.assert_close(student.grad, temperature * (q - p), rtol=1e-5, atol=1e-6)
    assert student.grad[0, 0] < 0  # the teacher's favourite token gets pushed up
    # and a small step against the gradient lowers the loss
    before = distill.kd_loss(student.detach(), teacher, temperature)
    after = distill.kd_loss(student.detach() - 0.1 * student.grad, teacher, temperature)
    assert after < before


def test_masked_positions_carry_no_loss():
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    labels = torch.randint(0, 8, (2, 5), generator=g)
    labels[0, :2] = IGNORE  # prompt
    labels[1, 3:] = IGNORE  # padding
    mask = labels != IGNORE
    base = distill.kd_loss(s, t, 2.0, labels=labels)
    torch.testing.assert_close(base, distill.kd_loss(s, t, 2.0, mask=mask))
    s2 = s.clone()
    s2[~mask] = torch.randn(int((~mask).sum()), 8, generator=g) * 10
    torch.testing.assert_close(distill.kd_loss(s2, t, 2.0, labels=labels), base)
    per = distill.kd_kl_per_position(s, t, 2.0)
    torch.testing.assert_close(base, 4.0 * per[mask].mean())
    ce = lm_loss(s2, labels)
    torch.testing.assert_close(ce, F.cross_entropy(s[mask], labels[mask]))


def test_distillation_loss_mixes_soft_and_hard_terms():
    g = torch.Generator().manual_seed(5)
    s, t = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    labels = torch.randint(0, 6, (3, 4), generator=g)
    labels[:, 0] = IGNORE
    hard = lm_loss(s, labels)
    soft = distill.kd_loss(s, t, 3.0, labels=labels)
    torch.testing.assert_close(distill.distillation_loss(s, t, labels, 3.0, 0.0), hard)
    torch.testing.assert_close(distill.distillation_loss(s, t, labels, 3.0, 1.0), soft)
    torch.testing.assert_close(
        distill.distillation_loss(s, t, labels, 3.0, 0.3), 0.3 * soft + 0.7 * hard
    )


def test_teacher_gets_no_gradient():
    s = torch.randn(2, 5, requires_grad=True)
    t = torch.randn(2, 5, requires_grad=True)
    distill.kd_loss(s, t, 2.0).backward()
    assert t.grad is None and s.grad is not None


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_temperature_is_refused(bad):
    with pytest.raises(ValueError, match="temperature"):
        distill.soft_targets(torch.zeros(3), bad)


def test_bad_inputs_are_refused_with_a_fix():
    with pytest.raises(ValueError, match="same shape"):
        distill.kd_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="masked"):
        distill.kd_loss(torch.zeros(2, 3), torch.ones(2, 3), mask=torch.zeros(2))
    with pytest.raises(ValueError, match="mask has shape"):
        distill.kd_loss(torch.zeros(2, 3), torch.ones(2, 3), mask=torch.ones(3))
    with pytest.raises(ValueError, match="kd_weight"):
        distill.distillation_loss(
            torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2).long(), 2.0, 1.5
        )
    with pytest.raises(ValueError, match="no target"):
        lm_loss(torch.zeros(1, 2, 3), torch.full((1, 2), IGNORE))


# ---------------------------------------------------------------- rejection sampling

GOOD = "<think>12+30=42</think><answer>42</answer>"


def test_rejection_filter_keeps_only_correct_and_well_formed():
    prompts = ["12+30=", "12+30=", "5+5=", "5+5=", "9+1="]
    completions = [
        GOOD,  # kept
        "<think>12+30=43</think><answer>43</answer>",  # wrong answer
        "<think>5+5=10</think><answer>10</answer> and more",  # bad format, right answer
        "<think>5+5</think><answer>11</answer><answer>",  # bad format and wrong answer
        "<think>9+1=10</think><answer>10</answer>",  # kept
    ]
    answers = ["42", "42", "10", "10", "10"]
    report = distill.rejection_filter(prompts, completions, answers)
    assert [v.kept for v in report.verdicts] == [True, False, False, False, True]
    assert report.kept_fraction == pytest.approx(2 / 5)
    assert report.counts() == {
        "kept": 2,
        "wrong answer": 1,
        "bad format": 1,
        "bad format and wrong answer": 1,
    }
    assert [v.completion for v in report.kept] == [completions[0], completions[4]]
    assert "kept 2 of 5 (40%)" in str(report)
    # a custom checker is honoured
    lenient = distill.rejection_filter(prompts, completions, answers, check=lambda c, a: True)
    assert lenient.kept_fraction == pytest.approx(3 / 5)
    # a readability rule (R1 dropped mixed-language traces) rejects on top of answer and format
    no_nine = distill.rejection_filter(
        prompts, completions, answers, readable=lambda p, c: not p.startswith("9")
    )
    assert [v.kept for v in no_nine.verdicts] == [True, False, False, False, False]
    assert no_nine.verdicts[4].reason == "unreadable"
    assert no_nine.counts() == {
        "kept": 1, "wrong answer": 1, "bad format": 1, "bad format and wrong answer": 1,
        "unreadable": 1,
    }  # fmt: skip
    both = distill.rejection_filter(["9+1="], [completions[1]], ["10"], readable=lambda p, c: False)
    assert both.verdicts[0].reason == "wrong answer and unreadable"


def test_rejection_filter_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one completion"):
        distill.rejection_filter(["a"], [GOOD, GOOD], ["1"])
    with pytest.raises(ValueError, match="no completions"):
        _ = distill.FilterReport().kept_fraction


# ---------------------------------------------------------------- trace data, sampling, training

from course_lib import tasks  # noqa: E402
from course_lib.model import TinySeek, TinySeekConfig  # noqa: E402
from course_lib.tokenizer import default_tokenizer  # noqa: E402

TOK = default_tokenizer()


def _tiny(seed: int = 0, d_model: int = 16) -> TinySeek:
    torch.manual_seed(seed)
    return TinySeek(TinySeekConfig(d_model=d_model, n_layers=1, n_heads=2, d_ff=32, max_seq_len=48))


def test_student_datasets_split_kept_and_all():
    report = distill.rejection_filter(
        ["1+1=", "2+2="],
        ["<think>1+1=2</think><answer>2</answer>", "<think>2+2=5</think><answer>5</answer>"],
        ["2", "4"],
    )
    sets = distill.student_datasets(report, TOK)

    def targets(rows):
        return [TOK.decode(r[r != IGNORE].tolist()) for r in rows.labels]

    assert targets(sets["answers only"]) == ["<answer>2</answer><eos>"]
    assert targets(sets["traces"]) == ["<think>1+1=2</think><answer>2</answer><eos>"]
    assert len(sets["unfiltered traces"]) == 2
    with pytest.raises(ValueError, match="kept no completion"):
        distill.student_datasets(distill.rejection_filter(["1+1="], ["x"], ["2"]), TOK)


def test_train_on_learns_and_repeats_exactly():
    exs = tasks.arithmetic(16, seed=2, digits=1)
    data = sft_rows(TOK, [e.prompt for e in exs], [formats.format_target(e.answer) for e in exs])
    runs = []
    for _ in range(2):
        model = _tiny(3)
        hist = distill.train_on(model, data, 40, batch_size=8, lr=1e-2, progress=False)
        runs.append(hist.series("loss")[1])
    assert runs[0] == runs[1]
    assert sum(runs[0][-5:]) / 5 < 0.5 * sum(runs[0][:5]) / 5


def test_logit_distillation_pulls_the_student_to_the_teacher():
    exs = tasks.arithmetic(16, seed=4, digits=1)
    data = sft_rows(
        TOK, [e.prompt for e in exs], [formats.format_target(e.answer, e.trace) for e in exs]
    )
    teacher = _tiny(5)
    distill.train_on(teacher, data, 30, batch_size=8, lr=1e-2, progress=False)
    # a student that IS the teacher starts with zero KD loss
    clone = _tiny(6)
    clone.load_state_dict(teacher.state_dict())
    hist = distill.train_on(
        clone, data, 1, batch_size=8, lr=0.0, teacher=teacher, kd_weight=1.0, progress=False
    )
    assert hist.series("loss")[1][0] == pytest.approx(0.0, abs=1e-5)

    def kl_to_teacher(student):
        x, y = data.input_ids, data.labels
        with torch.no_grad():
            return distill.kd_loss(student(x), teacher(x), 2.0, labels=y).item()

    student = _tiny(7)
    before = kl_to_teacher(student)
    distill.train_on(
        student, data, 40, batch_size=8, lr=1e-2, teacher=teacher, kd_weight=1.0, progress=False
    )
    assert kl_to_teacher(student) < 0.5 * before


def test_train_on_with_a_teacher_minimises_distillation_loss():
    """The KD mix is written once: train_on's loss is distillation_loss on the same batch."""
    exs = tasks.arithmetic(8, seed=6, digits=1)
    data = sft_rows(
        TOK, [e.prompt for e in exs], [formats.format_target(e.answer, e.trace) for e in exs]
    )
    teacher, student = _tiny(10), _tiny(11)
    hist = distill.train_on(
        student, data, 1, batch_size=4, lr=0.0, teacher=teacher, temperature=3.0, kd_weight=0.3,
        seed=5, progress=False,
    )  # fmt: skip
    batch = data.batches(4, seed=5)(0)
    with torch.no_grad():
        s_logits, t_logits = student(batch.x), teacher(batch.x)
    want = distill.distillation_loss(s_logits, t_logits, batch.y, 3.0, 0.3)
    assert hist.rows[0]["loss"] == pytest.approx(want.item(), rel=1e-6)
    assert hist.rows[0]["ce"] == pytest.approx(lm_loss(s_logits, batch.y).item(), rel=1e-6)


def test_one_kd_step_is_the_loss_backward_clip_and_adamw():
    """What notebook 03 does by hand: train_on's first step (warm-up 0) is distillation_loss on the
    first batch its seed draws, backward, gradient clipping at 1, one AdamW step at lr."""
    exs = tasks.arithmetic(8, seed=6, digits=1)
    data = sft_rows(
        TOK, [e.prompt for e in exs], [formats.format_target(e.answer, e.trace) for e in exs]
    )
    teacher = _tiny(10)
    by_lib, by_hand = _tiny(11), _tiny(11)
    distill.train_on(
        by_lib, data, 1, batch_size=4, lr=1e-2, teacher=teacher, temperature=3.0, kd_weight=0.3,
        seed=5, warmup_steps=0, progress=False,
    )  # fmt: skip
    opt = torch.optim.AdamW(by_hand.parameters(), lr=1e-2, weight_decay=0.0)
    batch = data.batches(4, seed=5)(0)
    with torch.no_grad():
        t_logits = teacher(batch.x)
    loss = distill.distillation_loss(by_hand(batch.x), t_logits, batch.y, 3.0, 0.3)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(by_hand.parameters(), 1.0)
    opt.step()
    for (name, a), b in zip(by_lib.named_parameters(), by_hand.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)


def test_next_token_logits_is_the_forward_pass():
    model = _tiny(8)
    logits = distill.next_token_logits(model, TOK, "1+2=<think>")
    ids = torch.tensor([TOK.encode("1+2=<think>", add_bos=True)])
    torch.testing.assert_close(logits, model(ids)[0])


# ---------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 4),
    vocab=st.integers(2, 9),
    temperature=st.floats(0.25, 8.0),
    seed=st.integers(0, 10_000),
)
def test_kd_loss_is_never_negative_and_zero_only_at_equality(rows, vocab, temperature, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(rows, vocab, generator=g, dtype=torch.float64) * 3
    t = torch.randn(rows, vocab, generator=g, dtype=torch.float64) * 3
    assert distill.kd_loss(s, t, temperature).item() >= -1e-9
    assert abs(distill.kd_loss(t, t, temperature).item()) < 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), digits=st.integers(1, 4), terms=st.integers(2, 3))
def test_every_ground_truth_target_passes_the_filter(seed, digits, terms):
    exs = tasks.arithmetic(5, seed=seed, digits=digits, terms=terms, ops="+*")
    report = distill.rejection_filter(
        [e.prompt for e in exs],
        [formats.format_target(e.answer, e.trace) for e in exs],
        [e.answer for e in exs],
    )
    assert report.kept_fraction == 1.0
    # and the answers-only target is never mistaken for a trace
    assert not any(formats.is_well_formed(formats.format_target(e.answer)) for e in exs)
