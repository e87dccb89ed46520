import pytest
import torch

from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tasks import arithmetic, domain_mixture
from course_lib.tokenizer import default_tokenizer
from course_lib.train import (
    IGNORE,
    evaluate_loss,
    fixed_batches,
    lr_at,
    pack_examples,
    sample_batch,
    sft_batch,
    train,
)


def test_pack_and_sample_are_next_token_windows():
    tok = default_tokenizer()
    stream = pack_examples(domain_mixture(50, 0))
    assert stream.tokens[0] == tok.bos_id and len(stream.domains) == len(stream)
    b = sample_batch(stream, 4, 16, torch.Generator().manual_seed(0))
    assert b.x.shape == b.y.shape == b.domains.shape == (4, 16)
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    vb = fixed_batches(stream, 2, 4, 16, seed=5)
    assert torch.equal(vb[0].x, fixed_batches(stream, 2, 4, 16, seed=5)[0].x)
    with pytest.raises(ValueError, match="seq_len"):
        sample_batch(stream, 1, len(stream))


def test_sft_batch_masks_prompt_and_padding():
    tok = default_tokenizer()
    exs = arithmetic(3, 0, digits=(1, 3))
    b = sft_batch(exs, tok)
    for i, ex in enumerate(exs):
        n_prompt = len(ex.prompt) + 1  # with bos
        assert (b.y[i, : n_prompt - 1] == IGNORE).all()
        target = b.y[i][b.y[i] != IGNORE]
        assert tok.decode(target) == f"<think>{ex.trace}</think><answer>{ex.answer}</answer><eos>"
        assert b.domains[i].sum() == n_prompt + len(target) - 1


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)
    assert lr_at(10, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)


def test_training_lowers_loss_and_records_history():
    torch.manual_seed(0)
    m = TinySeek(TinySeekConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, ffn="moe",
                                n_routed_experts=4, d_expert=16, balance="aux_loss"))  # fmt: skip
    stream = pack_examples(domain_mixture(300, 0))
    val = fixed_batches(stream, 2, 8, 32, seed=1)
    g = torch.Generator().manual_seed(0)
    before = evaluate_loss(m, val)
    calls = []
    h = train(
        m, lambda s: sample_batch(stream, 8, 32, g), steps=40, lr=1e-2,
        eval_fn=lambda mod: {"val": evaluate_loss(mod, val)}, eval_every=20,
        hook=lambda hist: calls.append(len(hist)), hook_every=10, progress=False,
        record_fn=lambda mod, b: {"n_tokens": b.x.numel()},
    )  # fmt: skip
    assert len(h) == 40 and calls == [10, 20, 30, 40]
    assert h.series("val")[0] == [19, 39]
    assert h.last("val") < before - 1.0
    assert h.last("aux") > 0 and len(h.last("load")) == 1 and len(h.last("load")[0]) == 4
    assert sum(h.last("load")[0]) == 8 * 32 * 2 and h.last("n_tokens") == 256
    with pytest.raises(ValueError, match="steps"):
        train(m, lambda s: None, 0)
