"""course_lib.sampling: the one batched sampler (== one-by-one generation, seeded, ids and masks
that line up) and the one evaluation, on completions written by a scripted model, including the
inputs where the old distillation and GRPO copies disagreed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib import tasks
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.sampling import completion_mask, evaluate, sample
from course_lib.tokenizer import default_tokenizer

TOK = default_tokenizer()


def _tiny(seed: int = 0) -> TinySeek:
    torch.manual_seed(seed)
    return TinySeek(TinySeekConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, max_seq_len=48))


class Scripted(nn.Module):
    """A 'model' whose generate writes the given texts, in order, one per row, then <eos>."""

    def __init__(self, texts: list[str]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.texts = list(texts)

    def generate(self, idx, max_new_tokens, eos_id, **_):
        rows = [TOK.encode(t, add_eos=True)[:max_new_tokens] for t in self.texts[: len(idx)]]
        self.texts = self.texts[len(idx) :]
        out = torch.full((len(idx), max(len(r) for r in rows)), eos_id)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return torch.cat([idx, out], dim=1)


def test_sample_matches_one_by_one_generation():
    model = _tiny(1)
    prompts = ["12+3=", "1+1=", "45+67=", "2+2="]  # two lengths, interleaved: left padding
    batched = sample(model, TOK, prompts, max_new_tokens=8, temperature=0.0, batch_size=2)
    for p, got in zip(prompts, batched.texts):
        x = torch.tensor([TOK.encode(p, add_bos=True)])
        y = model.generate(x, 8, temperature=0.0, eos_id=TOK.eos_id)[0, x.shape[1] :].tolist()
        assert got == TOK.decode(y[: y.index(TOK.eos_id)] if TOK.eos_id in y else y)
    # seeded sampling repeats exactly, another seed differs somewhere
    a = sample(model, TOK, prompts * 4, max_new_tokens=8, temperature=1.5, seed=3).texts
    b = sample(model, TOK, prompts * 4, max_new_tokens=8, temperature=1.5, seed=3).texts
    c = sample(model, TOK, prompts * 4, max_new_tokens=8, temperature=1.5, seed=4).texts
    assert a == b and a != c


def test_samples_ids_and_masks_line_up_across_chunks():
    model = _tiny(2)
    prompts = ["1+1=", "45+67=", "3="]
    s = sample(model, TOK, prompts, n=2, max_new_tokens=6, temperature=1.0, batch_size=4)
    assert s.ids.shape[0] == s.mask.shape[0] == len(s.texts) == 6
    assert s.prompt_len == len(TOK.encode("45+67=", add_bos=True))
    gen = s.ids[:, s.prompt_len :]
    for i, text in enumerate(s.texts):
        prompt = prompts[i // 2]  # n consecutive rows per prompt
        real = s.ids[i, : s.prompt_len][s.key_mask[i, : s.prompt_len]].tolist()
        assert real == TOK.encode(prompt, add_bos=True)
        tokens = gen[i][s.mask[i].bool()].tolist()  # completion tokens, up to the first <eos>
        assert TOK.decode([t for t in tokens if t != TOK.eos_id]) == text
        assert bool(s.truncated[i]) == (TOK.eos_id not in tokens)


def test_completion_mask_stops_after_the_first_eos():
    gen = torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8], [2, 2, 2, 2]])
    mask, truncated = completion_mask(gen, eos_id=2)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert truncated.tolist() == [False, True, False]


def test_evaluate_scores_answers_and_the_strict_format():
    exs = [tasks.Example(f"{a}+1=", "", str(a + 1), "arithmetic") for a in range(5)]
    written = [
        "<think>0+1=1</think><answer>1</answer>",  # right, well formed
        "<answer>2</answer>",  # right, answers only: not well formed (old distill counted it)
        "<think>2+1=3</think><answer>3</answer><pad>",  # a sampled <pad> is kept in the text now
        " <think>3+1=4</think> <answer>5</answer> ",  # wrong, well formed (white space is fine)
        "<think> </think><answer>5</answer>",  # right, but nothing inside <think>
    ]
    res = evaluate(Scripted(written), TOK, exs, max_new_tokens=40)
    assert res.completions == written
    assert res.correct == [True, True, True, False, True]
    assert res.accuracy == pytest.approx(4 / 5) and res.format_rate == pytest.approx(2 / 5)


def test_evaluate_averages_pass_at_1_over_samples():
    exs = [tasks.Example(f"{a}+1=", "", str(a + 1), "arithmetic") for a in range(2)]
    first = ["<think>a</think><answer>1</answer>", "<think>b</think><answer>0</answer>"]
    second = ["<think>a</think><answer>1</answer>", "<think>b</think><answer>2</answer>"]
    res = evaluate(Scripted(first + second), TOK, exs, 40, temperature=1.0, samples=2)
    assert res.completions == first and res.correct == [True, False]
    assert res.accuracy == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="greedy"):
        evaluate(_tiny(), TOK, exs, 6, samples=3)
    with pytest.raises(ValueError, match="at least one example"):
        evaluate(_tiny(), TOK, [], 6)


def test_evaluate_averages_extra_scores_and_length_over_every_sample():
    exs = [tasks.Example(f"{a}+1=", "", str(a + 1), "arithmetic") for a in range(2)]
    first = ["<think>a</think><answer>1</answer>", "<answer>0</answer>"]
    second = ["<think>ab</think><answer>1</answer>", "<think>b</think><answer>2</answer>"]
    thinks = {"thinks": lambda p, c, a: float(c.startswith("<think>"))}
    res = evaluate(Scripted(first + second), TOK, exs, 40, 1.0, samples=2, scores=thinks)
    assert res.scores == {"thinks": pytest.approx(3 / 4)}  # not the first sample's 1/2
    lengths = [len(TOK.encode(t, add_eos=True)) for t in first + second]
    assert res.mean_length == pytest.approx(sum(lengths) / 4)


def test_sample_and_evaluate_refuse_bad_settings():
    tok, model = default_tokenizer(), TinySeek(TinySeekConfig(d_model=16, n_heads=2, d_ff=32))
    for kwargs, needle in [
        (dict(temperature=float("nan")), "temperature must be a finite number"),
        (dict(top_p=1.5), "top_p must be in (0, 1]"),
        (dict(n=0), "n must be >= 1"),
        (dict(max_new_tokens=2.5), "max_new_tokens must be a whole number"),
    ]:
        with pytest.raises(ValueError) as err:
            sample(model, tok, ["1+2="], **kwargs)
        assert needle in str(err.value)
    with pytest.raises(ValueError, match="a list of prompts"):
        sample(model, tok, "1+2=")  # a string is not a list of prompts
    with pytest.raises(ValueError, match="temperature must be a finite number"):
        evaluate(model, tok, tasks.arithmetic(2), 4, temperature=float("nan"), samples=2)
