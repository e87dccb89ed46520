"""Notebook 02's experiment: does compressing the KV cache cost quality? TinySeek with MHA, GQA,
MQA and MLA, the KV caches of GQA and MLA matched, trained on the same batches until the loss
flattens.

* :data:`VARIANTS`: the attentions compared, all on one width (d_model 64, 8 heads of 8, 2 layers):
  MHA caches 2 x 8 x 8 = 128 numbers per token and layer; GQA with 2 KV heads 32, and MLA with a
  latent d_c = 28 plus a shared RoPE key of 4 also 32 (d_c = 28 < n_h d_h = 64: it really
  compresses); MQA 16, and MLA with d_c = 12 also 16.
* :func:`make_data`: fixed training batches (the same, in the same order, for every variant) and
  validation batches, from :func:`course_lib.tasks.arithmetic`.
* :func:`run_variant`: train one variant with the course's loop (:func:`course_lib.train.train`,
  cosine schedule to 10% of the learning rate) and record its validation curve.

``benchmarks/mla_quality.py`` runs every variant over several seeds; the notebook runs one seed.
Simplified: a 2-layer toy for a thousand steps; DeepSeek-V2's comparisons ([V2] Appendix D) are
7B-and-larger models on hundreds of billions of tokens, so only the direction of a gap can carry over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from course_lib.data import Batch, fixed_batches, pack_examples
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tasks import arithmetic
from course_lib.train import evaluate_loss, train

BASE = dict(
    d_model=64, n_layers=2, n_heads=8, max_seq_len=128, d_ff=192,
    qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
)  # fmt: skip
VARIANTS: dict[str, dict] = {
    "MHA": dict(attention="mha"),
    "GQA, 2 KV heads": dict(attention="gqa", n_kv_heads=2),
    "MLA, d_c = 28": dict(attention="mla", kv_lora_rank=28),
    "MQA": dict(attention="mqa"),
    "MLA, d_c = 12": dict(attention="mla", kv_lora_rank=12),
}


def config(name: str) -> TinySeekConfig:
    """The TinySeek config of one of :data:`VARIANTS`."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; pick one of {list(VARIANTS)}.")
    return TinySeekConfig(**(BASE | VARIANTS[name]))


@dataclass
class LabData:
    train: list[Batch]  # one batch per training step
    val: list[Batch]


def make_data(
    steps: int, n_train: int = 8000, n_val: int = 400, batch_size: int = 16, seq_len: int = 64,
    val_batches: int = 8, seed: int = 0,
) -> LabData:  # fmt: skip
    """``steps`` training batches and ``val_batches`` validation batches of arithmetic with traces
    (training and validation problems from different seeds)."""
    stream = pack_examples(arithmetic(n_train, seed=seed))
    val = pack_examples(arithmetic(n_val, seed=seed + 1000))
    return LabData(
        fixed_batches(stream, steps, batch_size, seq_len, seed),
        fixed_batches(val, val_batches, batch_size, seq_len, seed),
    )


@dataclass
class AttentionRun:
    name: str
    config: TinySeekConfig
    params: int
    cache_per_token: int  # numbers cached per token and layer
    val_steps: list[int]
    val_losses: list[float]
    seconds: float
    model: TinySeek

    @property
    def val_loss(self) -> float:
        return self.val_losses[-1]


def run_variant(
    name: str, data: LabData, lr: float = 3e-3, seed: int = 0, eval_every: int = 100,
    progress: bool = True,
) -> AttentionRun:  # fmt: skip
    """Train variant ``name`` from seed ``seed`` on every batch of ``data.train`` (one per step)."""
    cfg = config(name)
    torch.manual_seed(seed)
    model = TinySeek(cfg)
    steps = len(data.train)
    start = time.perf_counter()
    history = train(
        model, lambda step: data.train[step], steps, lr=lr, warmup_steps=min(20, steps // 5),
        eval_fn=lambda m: {"val": evaluate_loss(m, data.val)}, eval_every=eval_every,
        desc=f"TinySeek {name}", progress=progress,
    )  # fmt: skip
    val_steps, val_losses = history.series("val")
    return AttentionRun(
        name, cfg, model.num_parameters(), model.blocks[0].attn.cache_elements_per_token(),
        [s + 1 for s in val_steps], val_losses, time.perf_counter() - start, model,
    )  # fmt: skip
