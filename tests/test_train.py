import pytest
import torch

from course_lib.data import IGNORE, fixed_batches, pack_examples, sample_batch
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tasks import domain_mixture
from course_lib.train import evaluate_loss, lm_loss, lr_at, next_token_loss, train


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)
    assert lr_at(10, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)


def test_lm_loss_averages_over_the_targets_only():
    logits = torch.randn(1, 3, 5)
    labels = torch.tensor([[IGNORE, 2, 4]])
    by_hand = -(logits[0, 1].log_softmax(-1)[2] + logits[0, 2].log_softmax(-1)[4]) / 2
    torch.testing.assert_close(lm_loss(logits, labels), by_hand)
    with pytest.raises(ValueError, match="line up"):
        lm_loss(logits, labels[:, :2])
    with pytest.raises(ValueError, match="no target token"):
        lm_loss(logits, torch.full((1, 3), IGNORE))


def test_next_token_loss_adds_the_moe_balance_loss():
    torch.manual_seed(0)
    m = TinySeek(TinySeekConfig(d_model=16, n_layers=1, n_heads=2, ffn="moe", n_routed_experts=4,
                                d_expert=8, balance="aux_loss", aux_alpha=0.5))  # fmt: skip
    b = sample_batch(pack_examples(domain_mixture(50, 0)), 2, 16, torch.Generator().manual_seed(0))
    loss, row = next_token_loss(m, b)
    assert row["aux"] > 0 and loss.item() == pytest.approx(row["ce"] + row["aux"])


def test_training_lowers_loss_evaluates_and_calls_after_step():
    torch.manual_seed(0)
    m = TinySeek(TinySeekConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64))
    stream = pack_examples(domain_mixture(300, 0))
    val = fixed_batches(stream, 2, 8, 32, seed=1)
    g = torch.Generator().manual_seed(0)
    before = evaluate_loss(m, val)
    calls = []
    h = train(
        m, lambda s: sample_batch(stream, 8, 32, g), steps=40, lr=1e-2,
        eval_fn=lambda mod: {"val": evaluate_loss(mod, val)}, eval_every=15,
        after_step=lambda mod: calls.append(mod.training), progress=False,
    )  # fmt: skip
    assert len(h) == 40 and calls == [True] * 40
    assert h.series("val")[0] == [14, 29, 39]  # every 15th step and the last one
    assert h.last("val") < before - 1.0
    assert {"step", "loss", "lr", "ce", "aux"} <= set(h.rows[0])
    with pytest.raises(ValueError, match="steps"):
        train(m, lambda s: None, 0)


def test_a_custom_loss_is_what_gets_minimised():
    torch.manual_seed(0)
    m = TinySeek(TinySeekConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32))
    stream = pack_examples(domain_mixture(100, 0))
    g = torch.Generator().manual_seed(0)

    def logit_norm(model, batch):  # pushes every logit to zero
        loss = model(batch.x).pow(2).mean()
        return loss, {"norm": loss.item()}

    h = train(m, lambda s: sample_batch(stream, 4, 16, g), 30, logit_norm, lr=1e-2, progress=False)
    norms = h.series("norm")[1]
    assert norms[-1] < 0.1 * norms[0] and h.series("loss")[1] == norms


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(lr=-1e-3), "lr must be >= 0"),
        (dict(steps=2.5), "steps must be a whole number"),
        (dict(grad_clip=float("inf")), "grad_clip must be a finite number"),
        (dict(warmup_steps=-1), "warmup_steps must be >= 0"),
    ],
)
def test_train_refuses_bad_settings_before_touching_the_model(kwargs, needle):
    model = TinySeek(TinySeekConfig(d_model=16, n_heads=2, d_ff=32, max_seq_len=16))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError) as err:
        train(model, lambda step: None, **({"steps": 3} | kwargs), progress=False)
    assert needle in str(err.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
