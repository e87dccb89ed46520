"""Notebook 02's experiment: the variants' caches are matched as the notebook says, runs record curves."""

import pytest
import torch

from course_lib import attention_lab


def test_variants_have_the_cache_sizes_the_notebook_compares():
    caches = {}
    for name in attention_lab.VARIANTS:
        cfg = attention_lab.config(name)
        caches[name] = attention_lab.TinySeek(cfg).blocks[0].attn.cache_elements_per_token()
    assert caches == {"MHA": 128, "GQA, 2 KV heads": 32, "MLA, d_c = 28": 32, "MQA": 16,
                      "MLA, d_c = 12": 16}  # fmt: skip
    base = attention_lab.BASE
    for name in ("MLA, d_c = 28", "MLA, d_c = 12"):  # the latent really compresses the keys
        assert attention_lab.config(name).kv_lora_rank < base["n_heads"] * base["qk_nope_head_dim"]
    with pytest.raises(ValueError, match="unknown variant"):
        attention_lab.config("MLA")


def test_run_variant_trains_on_the_given_batches_and_records_validation():
    data = attention_lab.make_data(
        6, n_train=200, n_val=40, batch_size=4, seq_len=32, val_batches=2
    )
    assert len(data.train) == 6 and len(data.val) == 2
    again = attention_lab.make_data(
        6, n_train=200, n_val=40, batch_size=4, seq_len=32, val_batches=2
    )
    assert all(torch.equal(a.x, b.x) for a, b in zip(data.train, again.train))  # same batches
    run = attention_lab.run_variant("MLA, d_c = 12", data, eval_every=3, progress=False)
    assert run.val_steps == [3, 6] and len(run.val_losses) == 2 and run.cache_per_token == 16
    assert run.val_loss == run.val_losses[-1] and run.params == run.model.num_parameters()
