"""DeepSeekMoE: fine-grained routed experts, shared experts, gates and load balancing.

Follows DeepSeek-V2 §2.2 and DeepSeek-V3 §2.1.2 (DeepSeekMoE: Dai et al., arXiv 2401.06066), and
the gate of deepseek-ai/DeepSeek-V3 ``inference/model.py`` (class ``Gate``) and transformers'
``DeepseekV3TopkRouter`` / ``DeepseekV2TopkRouter``:

* The FFN of a layer is ``shared(x) + sum_{i in top-K_r} g_i * expert_i(x)``: ``n_shared_experts``
  experts see every token; of ``n_routed_experts`` small ("fine-grained") experts, the
  ``n_activated_experts`` (the papers' K_r) with the highest scores are chosen per token.
* Gates: ``"softmax"`` over all experts (V2) or ``"sigmoid"`` affinities (V3, [V3] eq. 15). V3
  renormalises the chosen weights to sum to one ([V3] eq. 13); V2 does not, so its weights sum to
  less than one. Both then multiply by ``route_scale`` (2.5 in V3's released config, 16 in V2's:
  neither paper's text gives it). ``normalize=None`` follows the paper of the gate: renormalise for
  sigmoid, not for softmax (the reference code's rule too).
* Group-limited routing: experts sit in ``n_groups`` groups; only the best ``topk_groups`` groups
  are eligible. How a group is scored is ``group_score``: ``"top2_sum"``, the sum of its two best
  (biased) scores (V3's node-limited routing: the sum of the best K_r/M = 8/4 = 2 affinities per
  node, [V3] §2.1.2), or ``"max"``, its single best score (V2's device-limited routing ranks
  devices by their highest affinity, [V2] §2.2.2). ``group_score=None`` picks V3's rule for
  sigmoid and V2's for softmax; DeepSeek's reference ``Gate`` takes the max exactly when it has no
  bias (its V2-style configs), transformers' V3 router always sums the top 2, its V2 router takes
  the max.
* Balancing: ``"none"``; ``"aux_loss"``, the sequence-wise balance loss ``alpha * sum_i f_i P_i``
  ([V3] eq. 17-20; V2's expert-level loss §2.2.3 is its batch-wise cousin); ``"aux_free"``, a
  per-expert bias added to the scores ONLY to choose experts ([V3] eq. 16: the gate weights come
  from the unbiased scores), moved by ``gamma`` after each optimizer step toward the under-loaded
  experts ([V3] §2.1.2; Wang et al., arXiv 2408.15664). V3 also keeps a tiny sequence-wise loss
  next to the bias (alpha = 1e-4): ``complementary_alpha`` turns that on.

Dispatch is vectorised: token-expert pairs are sorted by expert into an (E, capacity, d) buffer,
every expert runs as one batched matmul, and results are scattered back. No token is ever dropped
(capacity = the busiest expert's count), as in DeepSeek-V3 (§2.1.2, "No Token-Dropping").
The price of the padding: the work is E x (busiest expert's tokens), so a collapsed router makes
it slower than a loop over experts, a balanced one makes them equal (benchmarks/moe_dispatch.py).

Simplified: no expert parallelism or communication, no device-level / communication balance
losses of V2 §2.2.3, no capacity factor. Routing is computed in float32 like the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.layers import SwiGLU

BALANCE_MODES = ("none", "aux_loss", "aux_free")
SCORE_FUNCS = ("softmax", "sigmoid")
GROUP_SCORES = ("top2_sum", "max")


def paper_defaults(score_func: str) -> tuple[bool, str]:
    """``(normalize, group_score)`` of the paper whose gate ``score_func`` is: V3's
    ``(True, "top2_sum")`` for sigmoid, V2's ``(False, "max")`` for softmax."""
    if score_func not in SCORE_FUNCS:
        raise ValueError(f"score_func={score_func!r}; use 'softmax' (V2) or 'sigmoid' (V3).")
    return (True, "top2_sum") if score_func == "sigmoid" else (False, "max")


# --------------------------------------------------------------------------------------------
# The gate, as pure functions (used by the modules, the tests and the exercises)
# --------------------------------------------------------------------------------------------
def gate_scores(logits: torch.Tensor, score_func: str = "sigmoid") -> torch.Tensor:
    """Token-to-expert affinities from router logits (N, E): softmax over experts, or sigmoid."""
    if score_func == "softmax":
        return logits.float().softmax(dim=-1)
    if score_func == "sigmoid":
        return logits.float().sigmoid()
    raise ValueError(f"score_func={score_func!r}; use 'softmax' (V2) or 'sigmoid' (V3).")


def group_scores(
    scores_for_choice: torch.Tensor, n_groups: int, rule: str = "top2_sum"
) -> torch.Tensor:
    """Each token's score for each group of experts: (N, E) -> (N, n_groups).

    ``"top2_sum"``: the sum of the group's two best scores (its best one for groups of one expert),
    V3's rule; ``"max"``: the group's best score, V2's rule.
    """
    if rule not in GROUP_SCORES:
        raise ValueError(f"group_score={rule!r}; use 'top2_sum' (V3) or 'max' (V2).")
    N, E = scores_for_choice.shape
    per_group = scores_for_choice.view(N, n_groups, E // n_groups)  # (N, G, E/G)
    if rule == "max":
        return per_group.amax(dim=-1)
    return per_group.topk(min(2, E // n_groups), dim=-1).values.sum(dim=-1)


def group_mask(
    scores_for_choice: torch.Tensor, n_groups: int, topk_groups: int, rule: str = "top2_sum"
) -> torch.Tensor:
    """Boolean (N, E) mask of the experts inside each token's best ``topk_groups`` groups, the
    groups ranked by :func:`group_scores` with ``rule``."""
    N, E = scores_for_choice.shape
    best = group_scores(scores_for_choice, n_groups, rule).topk(topk_groups, dim=-1).indices
    keep = torch.zeros(N, n_groups, dtype=torch.bool, device=scores_for_choice.device)
    keep.scatter_(1, best, True)  # (N, G)
    return keep[:, :, None].expand(N, n_groups, E // n_groups).reshape(N, E)


def topk_route(
    scores: torch.Tensor,
    n_activated_experts: int,
    bias: torch.Tensor | None = None,
    n_groups: int = 1,
    topk_groups: int = 1,
    route_scale: float = 1.0,
    normalize: bool = True,
    group_score: str = "top2_sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``n_activated_experts`` experts per token and their gate weights.

    scores: (N, E) unbiased affinities. bias: (E,) added to the scores only to CHOOSE (groups and
    experts, [V3] eq. 16); the weights are gathered from the unbiased ``scores``, renormalised over
    the chosen experts when ``normalize`` and multiplied by ``route_scale``. The defaults are V3's
    (sigmoid scores); V2's softmax gate is ``normalize=False, group_score="max"``.
    Returns (weights (N, k), indices (N, k)).
    """
    choice = scores if bias is None else scores + bias  # (N, E)
    if n_groups > 1:
        keep = group_mask(choice, n_groups, topk_groups, group_score)
        choice = choice.masked_fill(~keep, float("-inf"))  # -inf, not 0: biased scores can be < 0
    indices = choice.topk(n_activated_experts, dim=-1).indices  # (N, k)
    weights = scores.gather(1, indices)  # (N, k), from the UNBIASED scores
    if normalize:
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return weights * route_scale, indices


def update_bias(bias: torch.Tensor, counts: torch.Tensor, gamma: float) -> torch.Tensor:
    """Auxiliary-loss-free balancing step ([V3] §2.1.2): ``b_i += gamma * sign(mean load - load_i)``.

    Overloaded experts (more tokens than the mean) go down by gamma, under-loaded ones go up.
    Returns the new bias (the input is not changed).
    """
    counts = counts.to(bias.dtype)
    return bias + gamma * torch.sign(counts.mean() - counts)


def sequence_balance_loss(
    scores: torch.Tensor, indices: torch.Tensor, n_experts: int, score_func: str = "sigmoid"
) -> torch.Tensor:
    """Sequence-wise balance loss ``sum_i f_i P_i`` averaged over sequences ([V3] eq. 17-20).

    scores: (B, T, E) affinities; indices: (B, T, k) chosen experts.
    ``f_i = E / (k T) * #tokens of the sequence routed to i`` and ``P_i`` = the mean over the
    sequence of the affinities normalised to sum to one per token. Perfect balance gives 1.
    Multiply by alpha yourself.
    """
    B, T, k = indices.shape
    probs = scores if score_func == "softmax" else scores / scores.sum(dim=-1, keepdim=True)
    hits = torch.zeros(B, n_experts, device=scores.device, dtype=scores.dtype)
    hits.scatter_add_(
        1, indices.reshape(B, T * k), torch.ones_like(indices.reshape(B, T * k), dtype=scores.dtype)
    )
    f = hits * n_experts / (k * T)  # (B, E)
    P = probs.mean(dim=1)  # (B, E)
    return (f * P).sum(dim=-1).mean()


# --------------------------------------------------------------------------------------------
# Routing statistics
# --------------------------------------------------------------------------------------------
def expert_counts(indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Tokens routed to each expert: (E,) from indices (..., k)."""
    return torch.bincount(indices.reshape(-1), minlength=n_experts)


def max_over_mean(counts: torch.Tensor) -> float:
    """Max expert load divided by the mean load: 1.0 is perfect balance, E/k is total collapse."""
    counts = torch.as_tensor(counts).float()
    return float(counts.max() / counts.mean().clamp_min(1e-12))


def max_violation(counts: torch.Tensor) -> float:
    """MaxVio, the auxiliary-loss-free paper's balance metric (Wang et al., arXiv 2408.15664 §4.1):
    ``(max load - mean load) / mean load`` = max/mean - 1; 0 is perfect balance, E/k - 1 total
    collapse."""
    return max_over_mean(counts) - 1.0


def domain_expert_usage(
    indices: torch.Tensor, domains: torch.Tensor, n_domains: int, n_experts: int
) -> torch.Tensor:
    """Share of each domain's routing decisions that go to each expert: (n_domains, E), rows sum to 1.

    indices: (N, k) or (B, T, k); domains: (N,) or (B, T) integer domain id per token.
    """
    k = indices.shape[-1]
    idx = indices.reshape(-1, k)
    dom = domains.reshape(-1, 1).expand(-1, k)
    usage = torch.zeros(n_domains * n_experts, dtype=torch.float32)
    usage.index_add_(0, (dom * n_experts + idx).reshape(-1).cpu(), torch.ones(idx.numel()))
    usage = usage.view(n_domains, n_experts)
    return usage / usage.sum(dim=1, keepdim=True).clamp_min(1)


@dataclass
class RoutingInfo:
    """What the router did in one forward pass. In training, ``weights`` and ``scores`` keep their
    gradient, so a balance loss written from them (as notebook 01 does) trains the router; call
    ``.detach()`` before turning them into numbers."""

    indices: torch.Tensor  # (B, T, k) chosen experts
    weights: torch.Tensor  # (B, T, k) gate weights
    scores: torch.Tensor  # (B, T, E) unbiased affinities
    counts: torch.Tensor  # (E,) tokens per expert

    @property
    def max_over_mean(self) -> float:
        return max_over_mean(self.counts)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------
class Router(nn.Module):
    """The gate: a linear map to one logit per expert, scores, optional groups, top-k.

    ``bias`` is the auxiliary-loss-free balancing bias (transformers calls it
    ``e_score_correction_bias``): a buffer, not trained by gradients. ``normalize`` and
    ``group_score`` left at None follow the paper of ``score_func`` (:func:`paper_defaults`).
    """

    def __init__(
        self,
        d_model: int,
        n_experts: int,
        n_activated_experts: int,
        score_func: str = "sigmoid",
        n_groups: int = 1,
        topk_groups: int = 1,
        route_scale: float = 1.0,
        normalize: bool | None = None,
        group_score: str | None = None,
    ):
        super().__init__()
        if score_func not in SCORE_FUNCS:
            raise ValueError(f"score_func={score_func!r}; use one of {SCORE_FUNCS}.")
        paper_normalize, paper_group_score = paper_defaults(score_func)
        normalize = paper_normalize if normalize is None else normalize
        group_score = paper_group_score if group_score is None else group_score
        if group_score not in GROUP_SCORES:
            raise ValueError(f"group_score={group_score!r}; use one of {GROUP_SCORES}.")
        if n_groups < 1 or n_experts % n_groups:
            raise ValueError(
                f"n_experts={n_experts} must split into n_groups={n_groups} equal groups."
            )
        if not 1 <= topk_groups <= n_groups:
            raise ValueError(
                f"topk_groups={topk_groups} must be between 1 and n_groups={n_groups}."
            )
        if not 1 <= n_activated_experts <= topk_groups * (n_experts // n_groups):
            raise ValueError(
                f"n_activated_experts={n_activated_experts} must be between 1 and the experts in the eligible groups "
                f"({topk_groups * (n_experts // n_groups)}); lower n_activated_experts or raise topk_groups."
            )
        self.n_experts, self.n_activated_experts, self.score_func = (
            n_experts,
            n_activated_experts,
            score_func,
        )
        self.n_groups, self.topk_groups = n_groups, topk_groups
        self.route_scale, self.normalize, self.group_score = route_scale, normalize, group_score
        self.weight = nn.Parameter(torch.empty(n_experts, d_model))
        nn.init.normal_(self.weight, std=d_model**-0.5)
        self.register_buffer("bias", torch.zeros(n_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (N, d) -> weights (N, k), indices (N, k), scores (N, E)."""
        logits = F.linear(x.float(), self.weight.float())  # (N, E)
        scores = gate_scores(logits, self.score_func)
        weights, indices = topk_route(
            scores, self.n_activated_experts, self.bias, self.n_groups, self.topk_groups,
            self.route_scale, self.normalize, self.group_score,
        )  # fmt: skip
        return weights.to(x.dtype), indices, scores


class RoutedExperts(nn.Module):
    """``n_experts`` SwiGLU experts stored as stacked weights so they run as batched matmuls."""

    def __init__(self, n_experts: int, d_model: int, d_hidden: int):
        super().__init__()
        self.n_experts, self.d_model, self.d_hidden = n_experts, d_model, d_hidden
        self.w_gate = nn.Parameter(torch.empty(n_experts, d_model, d_hidden))  # (E, d, h)
        self.w_up = nn.Parameter(torch.empty(n_experts, d_model, d_hidden))  # (E, d, h)
        self.w_down = nn.Parameter(torch.empty(n_experts, d_hidden, d_model))  # (E, h, d)
        for w, fan_in in ((self.w_gate, d_model), (self.w_up, d_model), (self.w_down, d_hidden)):
            nn.init.uniform_(w, -(fan_in**-0.5), fan_in**-0.5)  # like nn.Linear's default

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``e`` on x (..., d) -> (..., d). Used by the naive reference loop."""
        return (F.silu(x @ self.w_gate[e]) * (x @ self.w_up[e])) @ self.w_down[e]

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        """x: (N, d); weights, indices: (N, k). Returns sum_j weights[:, j] * expert_{indices[:, j]}(x)."""
        N, k = indices.shape
        E = self.n_experts
        flat_e = indices.reshape(-1)  # (N*k,) expert of each token-expert pair
        order = torch.argsort(flat_e, stable=True)  # pairs grouped by expert
        e_sorted = flat_e[order]  # (N*k,)
        tok_sorted = order // k  # (N*k,) which token each pair came from
        counts = torch.bincount(flat_e, minlength=E)  # (E,)
        starts = torch.cumsum(counts, 0) - counts  # (E,) first slot of each expert
        slot = torch.arange(N * k, device=x.device) - starts[e_sorted]  # (N*k,) slot in its bucket
        capacity = int(counts.max()) if N else 0
        buf = x.new_zeros(E, capacity, self.d_model)  # (E, C, d)
        buf[e_sorted, slot] = x[tok_sorted]
        h = F.silu(torch.bmm(buf, self.w_gate)) * torch.bmm(buf, self.w_up)  # (E, C, h)
        out = torch.bmm(h, self.w_down)  # (E, C, d)
        pair_out = out[e_sorted, slot] * weights.reshape(-1)[order, None]  # (N*k, d)
        return x.new_zeros(N, self.d_model).index_add_(0, tok_sorted, pair_out)


class DeepSeekMoE(nn.Module):
    """The DeepSeekMoE feed-forward: shared experts + top-k of fine-grained routed experts.

    After ``forward``: ``last_routing`` (a :class:`RoutingInfo`) and ``aux_loss`` (already
    multiplied by alpha; zero without a balance loss). In training mode the tokens per expert are
    accumulated until :meth:`update_bias` (call it after each optimizer step) uses them.
    ``normalize`` and ``group_score`` left at None follow the paper of ``score_func``.
    """

    def __init__(
        self,
        d_model: int,
        d_expert: int,
        n_routed_experts: int = 8,
        n_shared_experts: int = 1,
        n_activated_experts: int = 2,
        score_func: str = "sigmoid",
        n_groups: int = 1,
        topk_groups: int = 1,
        route_scale: float = 1.0,
        normalize: bool | None = None,
        balance: str = "none",
        aux_alpha: float = 0.01,
        bias_gamma: float = 0.001,
        complementary_alpha: float = 0.0,
        group_score: str | None = None,
    ):
        super().__init__()
        if balance not in BALANCE_MODES:
            raise ValueError(f"balance={balance!r}; use one of {BALANCE_MODES}.")
        if n_shared_experts < 0 or n_routed_experts < 1:
            raise ValueError("need n_routed_experts >= 1 and n_shared_experts >= 0 experts.")
        self.n_routed_experts, self.n_shared_experts, self.n_activated_experts = (
            n_routed_experts,
            n_shared_experts,
            n_activated_experts,
        )
        self.balance, self.aux_alpha, self.bias_gamma = balance, aux_alpha, bias_gamma
        self.complementary_alpha = complementary_alpha
        self.router = Router(
            d_model, n_routed_experts, n_activated_experts, score_func, n_groups, topk_groups,
            route_scale, normalize, group_score,
        )  # fmt: skip
        self.experts = RoutedExperts(n_routed_experts, d_model, d_expert)
        self.shared = SwiGLU(d_model, d_expert * n_shared_experts) if n_shared_experts else None
        self.register_buffer("step_counts", torch.zeros(n_routed_experts), persistent=False)
        self.last_routing: RoutingInfo | None = None
        self.aux_loss: torch.Tensor = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, d) -> (B, T, d)."""
        B, T, d = x.shape
        flat = x.reshape(B * T, d)  # (N, d)
        weights, indices, scores = self.router(flat)  # (N, k), (N, k), (N, E)
        y = self.experts(flat, weights, indices)  # (N, d)
        if self.shared is not None:
            y = y + self.shared(flat)
        counts = expert_counts(indices, self.n_routed_experts)
        alpha = {"aux_loss": self.aux_alpha, "aux_free": self.complementary_alpha}.get(
            self.balance, 0.0
        )
        if alpha > 0:
            self.aux_loss = alpha * sequence_balance_loss(
                scores.view(B, T, -1),
                indices.view(B, T, -1),
                self.n_routed_experts,
                self.router.score_func,
            )
        else:
            self.aux_loss = torch.zeros((), device=x.device)
        if self.training:
            self.step_counts += counts.to(self.step_counts.dtype)
        self.last_routing = RoutingInfo(
            indices.view(B, T, -1), weights.view(B, T, -1), scores.view(B, T, -1), counts
        )
        return y.view(B, T, d)

    @torch.no_grad()
    def update_bias(self) -> None:
        """Auxiliary-loss-free step: move the bias by gamma using the loads since the last call."""
        if self.balance == "aux_free" and self.step_counts.sum() > 0:
            self.router.bias.copy_(update_bias(self.router.bias, self.step_counts, self.bias_gamma))
        self.step_counts.zero_()

    def num_parameters(self, active_only: bool = False) -> int:
        """Parameters of this layer; ``active_only`` counts the shared, the router and k routed experts."""
        total = sum(p.numel() for p in self.parameters())
        if not active_only:
            return total
        per_expert = self.experts.w_gate[0].numel() * 3
        return total - (self.n_routed_experts - self.n_activated_experts) * per_expert


def naive_moe_loop(moe: DeepSeekMoE, x: torch.Tensor) -> torch.Tensor:
    """The reference the vectorised dispatch is tested against: one token at a time, in Python."""
    B, T, d = x.shape
    flat = x.reshape(B * T, d)
    weights, indices, _ = moe.router(flat)
    out = torch.zeros_like(flat)
    for t in range(flat.shape[0]):
        for j in range(indices.shape[1]):
            out[t] += weights[t, j] * moe.experts.expert(int(indices[t, j]), flat[t])
        if moe.shared is not None:
            out[t] += moe.shared(flat[t])
    return out.view(B, T, d)


@torch.no_grad()
def from_transformers(hf_moe: nn.Module, balance: str = "aux_free") -> DeepSeekMoE:
    """Our :class:`DeepSeekMoE` holding a copy of transformers' ``DeepseekV3MoE`` or ``DeepseekV2Moe``.

    Reads the sizes from ``hf_moe.config``; copies the router (and V3's
    ``e_score_correction_bias``), the experts (stored by transformers as ``gate_up_proj``
    (E, 2I, d) and ``down_proj`` (E, d, I)) and the shared experts. V3: sigmoid, renormalised,
    groups scored by their top-2 sum. V2: softmax, not renormalised, groups (``topk_method=
    "group_limited_greedy"``) scored by their max.
    """
    cfg = hf_moe.config
    v3 = cfg.model_type == "deepseek_v3"
    if cfg.model_type not in ("deepseek_v2", "deepseek_v3"):
        raise ValueError(
            f"expected a DeepSeek-V2 or V3 MoE layer, got model_type={cfg.model_type!r}."
        )
    if bool(cfg.norm_topk_prob) != v3:
        raise ValueError(
            f"this copy expects norm_topk_prob={v3} ({'V3' if v3 else 'V2'}'s setting); "
            f"got {cfg.norm_topk_prob}."
        )
    grouped = v3 or cfg.topk_method == "group_limited_greedy"
    I = cfg.moe_intermediate_size  # noqa: E741
    ours = DeepSeekMoE(
        cfg.hidden_size, I, n_routed_experts=cfg.n_routed_experts,
        n_shared_experts=cfg.n_shared_experts, n_activated_experts=cfg.num_experts_per_tok,
        score_func="sigmoid" if v3 else "softmax", n_groups=cfg.n_group if grouped else 1,
        topk_groups=cfg.topk_group if grouped else 1, route_scale=cfg.routed_scaling_factor,
        normalize=v3, group_score="top2_sum" if v3 else "max", balance=balance,
    )  # fmt: skip
    ours.router.weight.copy_(hf_moe.gate.weight)
    if v3:
        ours.router.bias.copy_(hf_moe.gate.e_score_correction_bias)
    gate_up = hf_moe.experts.gate_up_proj  # (E, 2I, d): rows [:I] gate, [I:] up
    ours.experts.w_gate.copy_(gate_up[:, :I, :].transpose(1, 2))  # (E, d, I)
    ours.experts.w_up.copy_(gate_up[:, I:, :].transpose(1, 2))
    ours.experts.w_down.copy_(hf_moe.experts.down_proj.transpose(1, 2))  # (E, I, d)
    if ours.shared is not None:
        for name in ("gate_proj", "up_proj", "down_proj"):
            getattr(ours.shared, name).weight.copy_(getattr(hf_moe.shared_experts, name).weight)
    return ours.to(hf_moe.gate.weight.device)
