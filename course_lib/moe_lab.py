"""Notebook 01's experiments: train TinySeek variants on the domain mixture and keep routing stats.

* :func:`make_data`: a training stream and fixed validation batches from ``tasks.domain_mixture``.
* :func:`moe_config`: the notebook's V3-like MoE (sigmoid gate, top-2 of 8, one shared expert);
  :func:`collapse_config`: a V2-like router that really collapses without balancing (softmax
  gate, top-1 of 16 experts, no shared expert; ``benchmarks/moe_balance.py`` shows it over seeds).
* :func:`dense_twin`: the dense model with the SAME active parameters and FLOPs per token as an MoE
  config: a SwiGLU of width ``(n_shared_experts + n_activated_experts) * d_expert`` (the router's ``d_model * E``
  multiply-adds are the only extra work of the MoE, under 10% here).
* :func:`run_variant`: train one config with the course's loop (its loss records the tokens per
  expert at every step; the auxiliary-loss-free bias moves after every optimizer step), evaluate on
  the validation batches, and return a :class:`MoERun` with the loss curves, the loads, max/mean
  load and the per-domain expert usage measured on the validation tokens.

Simplified: a few hundred steps on a CPU; the DeepSeek papers train for trillions of tokens, so
absolute numbers here only show the direction of each effect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from course_lib.data import Batch, TokenStream, fixed_batches, pack_examples, sample_batch
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.moe import domain_expert_usage, max_over_mean, max_violation
from course_lib.tasks import DOMAINS, domain_mixture
from course_lib.train import History, evaluate_loss, next_token_loss, train


@dataclass
class LabData:
    """The training stream, fixed validation batches and the batch shape used for training."""

    train: TokenStream
    val: list[Batch]
    batch_size: int
    seq_len: int
    domain_names: tuple[str, ...] = DOMAINS


def make_data(
    n_train: int = 6000, n_val: int = 600, batch_size: int = 32, seq_len: int = 64,
    val_batches: int = 4, seed: int = 0,
) -> LabData:  # fmt: skip
    """Training and validation data from disjoint seeds of :func:`course_lib.tasks.domain_mixture`."""
    stream = pack_examples(domain_mixture(n_train, seed))
    val = fixed_batches(
        pack_examples(domain_mixture(n_val, seed + 1000)), val_batches, batch_size, seq_len, seed
    )
    return LabData(stream, val, batch_size, seq_len)


def moe_config(**overrides) -> TinySeekConfig:
    """The notebook's MoE TinySeek: 2 layers, d_model 64, 1 shared + 8 routed experts (top-2) of width 32."""
    base = dict(
        d_model=64, n_layers=2, n_heads=4, max_seq_len=128, ffn="moe", n_routed_experts=8,
        n_shared_experts=1, n_activated_experts=2, d_expert=32, score_func="sigmoid",
    )  # fmt: skip
    return TinySeekConfig(**(base | overrides))


def collapse_config(**overrides) -> TinySeekConfig:
    """A router that collapses without balancing: V2's softmax gate (not renormalised), top-1 of 16
    experts of width 16, no shared expert; same attention and width as :func:`moe_config`."""
    base = dict(score_func="softmax", n_routed_experts=16, n_activated_experts=1, d_expert=16,
                n_shared_experts=0)  # fmt: skip
    return moe_config(**(base | overrides))


def dense_twin(config: TinySeekConfig) -> TinySeekConfig:
    """The dense config with the same active parameters per token as the MoE ``config``."""
    width = (config.n_shared_experts + config.n_activated_experts) * config.d_expert
    return replace(config, ffn="dense", d_ff=width)


@dataclass
class MoERun:
    """Everything the notebook plots about one trained variant."""

    name: str
    config: TinySeekConfig
    history: History
    val_steps: list[int]
    val_losses: list[float]
    loads: np.ndarray | None  # (steps, n_moe_layers, E) tokens per expert; None for dense
    domain_usage: np.ndarray | None  # (n_moe_layers, n_domains, E) on the validation tokens
    params_total: int
    params_active: int
    seconds: float
    model: TinySeek

    @property
    def val_loss(self) -> float:
        return self.val_losses[-1]

    def max_over_mean_curve(self) -> tuple[list[int], list[float]]:
        """Per step, max/mean load averaged over the MoE layers."""
        return self.history.series("max_over_mean")

    def end_loads(self, last_fraction: float = 0.1) -> np.ndarray:
        """(n_moe_layers, E) tokens per expert summed over the last ``last_fraction`` of the steps
        (so one noisy batch does not decide)."""
        if self.loads is None:
            raise ValueError(f"run {self.name!r} is dense: it has no experts to balance.")
        n = max(1, int(round(len(self.loads) * last_fraction)))
        return self.loads[-n:].sum(axis=0)

    def end_max_over_mean(self, last_fraction: float = 0.1) -> float:
        """Max/mean load of :meth:`end_loads`, averaged over MoE layers."""
        return float(np.mean([max_over_mean(layer) for layer in self.end_loads(last_fraction)]))

    def end_max_violation(self, last_fraction: float = 0.1) -> float:
        """MaxVio (max/mean - 1, :func:`course_lib.moe.max_violation`) of :meth:`end_loads`, the
        worst MoE layer's."""
        return float(max(max_violation(layer) for layer in self.end_loads(last_fraction)))

    def end_min_share(self, last_fraction: float = 0.1) -> float:
        """The smallest share of routing decisions any expert of any MoE layer got at the end."""
        late = self.end_loads(last_fraction)
        return float((late / late.sum(axis=1, keepdims=True)).min())

    def dead_experts(self, threshold: float = 0.01, last_fraction: float = 0.1) -> list[int]:
        """Per MoE layer, how many experts got under ``threshold`` of the routing decisions at the end."""
        late = self.end_loads(last_fraction)
        return [int(n) for n in ((late / late.sum(axis=1, keepdims=True)) < threshold).sum(axis=1)]

    def layer_loads(self, layer: int = -1) -> np.ndarray:
        """(steps, E) tokens per expert of one MoE layer."""
        if self.loads is None:
            raise ValueError(f"run {self.name!r} is dense: it has no expert loads.")
        return self.loads[:, layer]


@torch.no_grad()
def validation_domain_usage(model: TinySeek, data: LabData) -> np.ndarray | None:
    """(n_moe_layers, n_domains, E): share of each domain's validation tokens sent to each expert."""
    layers = model.moe_layers()
    if not layers:
        return None
    model.eval()
    D, E = len(data.domain_names), layers[0].n_routed_experts
    totals = torch.zeros(len(layers), D, E)
    for b in data.val:
        model(b.x)
        for i, r in enumerate(model.routing()):
            # counts, not shares, so batches add up: share * tokens-per-domain * k
            share = domain_expert_usage(r.indices, b.domains, D, E)
            n_dom = torch.bincount(b.domains.reshape(-1), minlength=D).float()[:, None]
            totals[i] += share * n_dom
    return (totals / totals.sum(-1, keepdim=True).clamp_min(1e-12)).numpy()


def loss_with_loads(model: TinySeek, batch: Batch) -> tuple[torch.Tensor, dict]:
    """:func:`course_lib.train.next_token_loss`, plus what the routers did on this batch:
    ``load`` (n_moe_layers, E) tokens per expert and ``max_over_mean`` (mean over the layers)."""
    loss, row = next_token_loss(model, batch)
    routing = model.routing()
    if routing:
        loads = torch.stack([r.counts.float() for r in routing])  # (L, E)
        row["load"] = loads.tolist()
        row["max_over_mean"] = float((loads.max(1).values / loads.mean(1)).mean())
    return loss, row


def run_variant(
    name: str,
    config: TinySeekConfig,
    data: LabData,
    steps: int,
    lr: float = 3e-3,
    seed: int = 0,
    eval_every: int = 0,
    progress: bool = True,
) -> MoERun:
    """Train ``config`` from seed ``seed`` on ``data`` for ``steps`` steps and collect its stats."""
    torch.manual_seed(seed)
    model = TinySeek(config)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    history = train(
        model,
        lambda step: sample_batch(data.train, data.batch_size, data.seq_len, g),
        steps,
        loss_with_loads,
        lr=lr,
        warmup_steps=min(10, steps // 5),
        eval_fn=lambda m: {"val": evaluate_loss(m, data.val)},
        eval_every=eval_every or max(1, steps // 6),
        after_step=TinySeek.after_optimizer_step,  # the aux-loss-free bias update [V3 §2.1.2]
        desc=name,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    val_steps, val_losses = history.series("val")
    loads = None
    if model.moe_layers():
        loads = np.array([row["load"] for row in history.rows], dtype=np.float64)  # (S, L, E)
    return MoERun(
        name, config, history, [s + 1 for s in val_steps], val_losses, loads,
        validation_domain_usage(model, data), model.num_parameters(),
        model.num_parameters(active_only=True), seconds, model,
    )  # fmt: skip
