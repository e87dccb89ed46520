"""course_lib.r1_pipeline: the stages' rewards, data and compute accounting, and every stage on a
tiny model."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import grpo_trainer, languages, r1_pipeline, students
from course_lib.formats import TAGS
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tasks import Example
from course_lib.tokenizer import default_tokenizer
from tests.test_test_time import Scripted

TOK = default_tokenizer()
CAREFUL_LETTERS = "<think>h+f=bc;e+i+b=bd</think><answer>bdc</answer>"
MIXED = "<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>"


def _tiny(seed=0):
    torch.manual_seed(seed)
    return TinySeek(TinySeekConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_seq_len=64))


# ---------------------------------------------------------------- rewards


def test_helpfulness_stand_in_by_hand():
    h = r1_pipeline.helpfulness_stand_in
    assert h("tr:472=", "<answer>ehc</answer>", "ehc") == 1.0  # right and direct
    assert h("tr:472=", " <answer>ehc</answer> ", "ehc") == 1.0
    assert h("tr:472=", "<think>4=e;7=h;2=c</think><answer>ehc</answer>", "ehc") == 0.5
    assert h("tr:472=", "<answer>ehd</answer>", "ehc") == 0.0  # wrong
    assert h("tr:472=", "ehc", "ehc") == 0.0  # no answer tags: nothing to read
    assert h("tr:472=", None, "ehc") == 0.0


_TEXT = st.lists(st.sampled_from(list("ehc472 ;=") + list(TAGS)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(completion=_TEXT)
def test_helpfulness_stand_in_never_raises_and_pays_one_of_three_values(completion):
    assert r1_pipeline.helpfulness_stand_in("tr:472=", completion, "ehc") in (0.0, 0.5, 1.0)


def test_reasoning_and_all_scenario_rewards_route_by_prompt():
    assert [r.name for r in r1_pipeline.reasoning_rewards(language=False)] == ["accuracy", "format"]
    parts = r1_pipeline.reasoning_rewards(language_weight=0.5)
    assert [(r.name, r.weight) for r in parts][-1] == ("language", 0.5)
    rewards = {r.name: r for r in r1_pipeline.all_scenario_rewards()}
    assert list(rewards) == ["accuracy", "format", "language", "helpfulness"]
    # On an addition: the reasoning rewards pay, the stand-in is silent.
    scores = {n: r.fn("eh+if=", MIXED, "bdc") for n, r in rewards.items()}
    assert scores == {
        "accuracy": 1.0,
        "format": 1.0,
        "language": pytest.approx(3 / 7),
        "helpfulness": 0.0,
    }
    # On a translation: only the stand-in, even for a well-formed, "accurate" reply.
    reply = "<think>4=e;7=h;2=c</think><answer>ehc</answer>"
    scores = {n: r.fn("tr:472=", reply, "ehc") for n, r in rewards.items()}
    assert scores == {"accuracy": 0.0, "format": 0.0, "language": 0.0, "helpfulness": 0.5}
    assert r1_pipeline.is_reasoning("eh+if=") and not r1_pipeline.is_reasoning("tr:eh=")


# ---------------------------------------------------------------- data


def test_annotate_fixes_the_language_not_the_arithmetic():
    assert r1_pipeline.annotate("eh+if=", MIXED) == CAREFUL_LETTERS
    careless = "<think>h+f=bc;4+8=12</think><answer>bcc</answer>"
    assert (
        r1_pipeline.annotate("eh+if=", careless)
        == "<think>h+f=bc;e+i=bc</think><answer>bcc</answer>"
    )
    assert r1_pipeline.annotate("47+85=", CAREFUL_LETTERS).startswith("<think>7+5=12;4+8+1=13")


def test_cold_start_data_keeps_well_formed_samples_cleaned_up():
    exs = [Example("eh+if=", "", "bdc", "arithmetic"), Example("47+85=", "", "132", "arithmetic")]
    model = Scripted([MIXED, "<answer>132"])  # the second is not well formed: dropped
    prompts, texts = r1_pipeline.cold_start_data(model, TOK, exs)
    assert prompts == ["eh+if="] and texts == [CAREFUL_LETTERS]
    with pytest.raises(ValueError, match="no well-formed"):
        r1_pipeline.cold_start_data(Scripted(["x", "y"]), TOK, exs)


def test_non_reasoning_data_thinks_on_a_share():
    exs = languages.translations(400, seed=0)
    prompts, texts = r1_pipeline.non_reasoning_data(exs, thinking_share=0.25, seed=1)
    assert prompts == [e.prompt for e in exs]
    thinking = [t.startswith("<think>") for t in texts]
    assert 0.18 < sum(thinking) / len(texts) < 0.32
    for e, t, th in zip(exs, texts, thinking):
        assert t == (f"<think>{e.trace}</think>" if th else "") + f"<answer>{e.answer}</answer>"
    assert r1_pipeline.non_reasoning_data(exs, 0.0)[1][0] == f"<answer>{exs[0].answer}</answer>"
    with pytest.raises(ValueError, match="thinking_share"):
        r1_pipeline.non_reasoning_data(exs, 1.5)


def test_rejection_sample_keeps_one_correct_readable_sample_per_prompt():
    exs = [Example("eh+if=", "", "bdc", "arithmetic"), Example("47+85=", "", "132", "arithmetic")]
    written = [
        MIXED,  # right, well formed, mixed language: unreadable
        CAREFUL_LETTERS,  # kept
        CAREFUL_LETTERS,  # kept too, but the prompt already has one
        "<think>7+5=12;4+8=12</think><answer>122</answer>",  # wrong
        "<answer>132</answer>",  # bad format
        "<think>7+5=12;4+8+1=13</think><answer>132</answer>",  # kept
    ]
    got = r1_pipeline.rejection_sample(Scripted(written), TOK, exs, samples_per_prompt=3)
    assert got.prompts == ["eh+if=", "47+85="]
    assert got.completions == [CAREFUL_LETTERS, written[5]]
    assert got.report.counts()["unreadable"] == 1 and got.report.kept_fraction == pytest.approx(
        1 / 2
    )
    assert got.prompts_covered == 1.0
    none_kept = r1_pipeline.rejection_sample(Scripted([MIXED] * 3 + written[3:]), TOK, exs, 3)
    assert none_kept.prompts == ["47+85="] and none_kept.prompts_covered == 0.5


def test_problems_hold_out_what_every_stage_trains_on():
    sizes = r1_pipeline.Sizes.fast()
    pr = r1_pipeline.problems(sizes)
    assert len(pr.held_out) == len(pr.held_out_other) == sizes.eval_problems
    trained = pr.rl + pr.cold + pr.rejection
    digits = {languages.to_script(e.prompt, "digits") for e in trained}
    assert not any(languages.to_script(e.prompt, "digits") in digits for e in pr.held_out)
    seen = {languages.to_script(e.prompt, "digits") for e in pr.non_reasoning}
    assert not any(languages.to_script(e.prompt, "digits") in seen for e in pr.held_out_other)
    assert all(students.needs_carry(languages.to_script(e.prompt, "digits")) for e in pr.held_out)
    assert r1_pipeline.problems(sizes) == pr  # fixed across calls (and seeds)


# ---------------------------------------------------------------- compute


def test_flop_meter_counts_every_pass_of_a_grpo_step():
    model = _tiny()
    n = model.num_parameters()
    exs = languages.bilingual_additions(8, seed=0)
    cfg = grpo_trainer.GRPOConfig(group_size=2, prompts_per_step=2, max_new_tokens=6, iterations=3)
    trainer, meter = r1_pipeline.rl(model, TOK, exs, r1_pipeline.reasoning_rewards(), 2, cfg,
                                    progress=False)  # fmt: skip
    assert trainer.policy is not model  # the stage trains a copy
    rows, positions = trainer.last_rollouts.input_ids.shape
    last = (2 * 3 + 6 * 3) * n * rows * positions  # sampling, old, reference; 3 updates
    first = trainer.history[0]["flops"]
    assert trainer.history[1]["flops"] == pytest.approx(first + last)
    assert meter.flops == trainer.history[-1]["flops"]
    no_ref = r1_pipeline.FlopMeter(n, 1, with_reference=False)
    no_ref(trainer, {})
    assert no_ref.flops == pytest.approx((2 * 2 + 6) * n * rows * positions)


def test_sft_flops_replay_the_batches_and_steps_match_a_budget():
    rows = r1_pipeline.sft_rows(
        TOK, ["1+1=", "12+34="], ["<answer>2</answer>", "<answer>46</answer>"]
    )
    batches = rows.batches(4, seed=3)
    by_hand = sum(6 * 100 * batches(s).x.numel() for s in range(5))
    assert r1_pipeline.sft_flops(100, rows, 4, 5, seed=3) == by_hand
    budget = r1_pipeline.sft_flops(100, rows, 4, 7, seed=3)
    assert r1_pipeline.sft_steps_for(100, rows, 4, budget, seed=3) == 7
    assert r1_pipeline.sft_steps_for(100, rows, 4, 0.0, seed=3) == 1


# ---------------------------------------------------------------- every stage, tiny


def test_every_stage_runs_on_a_tiny_model():
    """The pipeline's stages in order on a tiny model and tiny sizes: each returns a new model (the
    one it started from unchanged) and the numbers the notebook tabulates."""
    tok = TOK
    exs = languages.bilingual_additions(64, seed=0)
    base = _tiny()
    corpus = languages.mixed_corpus(exs, r1_pipeline.STUDENT_MIX, 0.5, seed=0)
    students.pretrain_base(base, corpus, tok, steps=150, batch_size=16, lr=1e-2, progress=False)
    before = copy.deepcopy(base.state_dict())
    cfg = grpo_trainer.GRPOConfig(group_size=2, prompts_per_step=2, max_new_tokens=24)
    zero, _ = r1_pipeline.rl(base, tok, exs, r1_pipeline.reasoning_rewards(False), 2, cfg,
                             progress=False)  # fmt: skip
    assert "reward/format" in zero.history[-1] and "reward/language" not in zero.history[-1]
    prompts, texts = r1_pipeline.cold_start_data(base, tok, exs[:32], 24)
    cold, history, rows = r1_pipeline.sft(base, tok, prompts, texts, 3, batch_size=4,
                                          progress=False)  # fmt: skip
    assert len(history) == 3 and len(rows) == len(prompts)
    reasoning, _ = r1_pipeline.rl(cold, tok, exs, r1_pipeline.reasoning_rewards(), 2, cfg,
                                  progress=False)  # fmt: skip
    assert "reward/language" in reasoning.history[-1]
    kept = r1_pipeline.rejection_sample(reasoning.policy, tok, exs[:8], 2, 24)
    assert len(kept.report.verdicts) == 16
    other = languages.translations(8, seed=0)
    p2, t2 = r1_pipeline.non_reasoning_data(other)
    sft_model, _, _ = r1_pipeline.sft(base, tok, kept.prompts + p2, kept.completions + t2, 2,
                                      batch_size=4, progress=False)  # fmt: skip
    final, _ = r1_pipeline.rl(sft_model, tok, exs + other, r1_pipeline.all_scenario_rewards(), 2,
                              cfg, progress=False)  # fmt: skip
    numbers = r1_pipeline.measure(
        final.policy, tok, exs[:4], other[:4], samples=2, max_new_tokens=24
    )
    assert set(numbers) == {
        "accuracy",
        "format",
        "language",
        "length",
        "other_accuracy",
        "helpfulness",
    }
    assert all(0 <= v <= 1 for k, v in numbers.items() if k != "length") and numbers["length"] >= 1
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
