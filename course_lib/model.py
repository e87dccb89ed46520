"""TinySeek: the course's one small decoder, switchable by config between DeepSeek's ideas.

The block is the pre-norm decoder of Llama/Qwen/DeepSeek ([V2] §2, [V3] §2.1, Figure 2):
``x + attn(RMSNorm(x))`` then ``x + ffn(RMSNorm(x))`` with RoPE inside attention.

* ``attention``: ``"mha" | "gqa" | "mqa"`` (course_lib.attention) or ``"mla"`` (Multi-head Latent
  Attention, [V2] §2.1, course_lib.mla), picked by :func:`build_attention`.
* ``ffn``: ``"dense"`` (a SwiGLU of width ``d_ff``) or ``"moe"`` (DeepSeekMoE, course_lib.moe;
  like V3 the first ``first_k_dense`` layers may stay dense).
* ``generate``: autoregressive sampling with a KV cache, temperature and top-p (nucleus).

After ``forward`` an MoE model exposes ``model.aux_loss`` (sum of the layers' balance losses,
already weighted; zero for a dense model) and ``model.routing()`` (one
:class:`course_lib.moe.RoutingInfo` per MoE layer). Whoever trains an MoE with the
auxiliary-loss-free bias calls ``model.after_optimizer_step()`` after each optimizer step, so the
bias can move ([V3] §2.1.2; ``course_lib.moe_lab`` does).

The building blocks come from ``course_lib.layers`` (RMSNorm, RoPE, SwiGLU), ``attention``,
``mla`` and ``moe``; this module only composes them.

Simplified: no dropout, no multi-token prediction ([V3] §2.2), float32 everywhere, tied input
and output embeddings (saves parameters at this scale).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import validate
from course_lib.attention import GroupedQueryAttention, cache_nbytes
from course_lib.layers import RMSNorm, SwiGLU
from course_lib.mla import MultiHeadLatentAttention
from course_lib.moe import DeepSeekMoE, RoutingInfo
from course_lib.tokenizer import default_tokenizer

ATTENTIONS = ("mha", "gqa", "mqa", "mla")
FFNS = ("dense", "moe")
# Sizes that must be whole numbers >= 1.
_AT_LEAST_ONE = (
    "vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len", "d_ff", "n_routed_experts",
    "n_activated_experts", "d_expert", "n_expert_groups", "topk_groups", "kv_lora_rank",
    "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
)  # fmt: skip


_EXAMPLES = {
    "n_kv_heads": "leave n_kv_heads=None (the default for the attention) or pick a divisor of n_heads",
    "head_dim": "leave head_dim=None (d_model // n_heads) or pick an even size such as 16",
    "q_lora_rank": "leave q_lora_rank=None (queries not compressed) or pick a rank such as 32",
    "vocab_size": "leave vocab_size to its default, the tokenizer's (tokenizer.vocab_size)",
}


def _whole(name: str, value, low: int) -> None:
    """A size field must be an int (not 64.0, not True) and at least ``low``."""
    default = TinySeekConfig.__dataclass_fields__[name].default
    fix = _EXAMPLES.get(name, f"e.g. {name}={default} (the default)")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r} (a {type(value).__name__}); {fix}.")
    validate.number(name, value, fix + ".", low=low, integer=True)


@dataclass
class TinySeekConfig:
    """Every size and switch of TinySeek. Defaults: a ~0.1M-parameter dense MHA model."""

    vocab_size: int = field(default_factory=lambda: default_tokenizer().vocab_size)
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None  # None: n_heads for MHA, 1 for MQA, n_heads // 2 for GQA
    head_dim: int | None = None  # None: d_model // n_heads
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    attention: str = "mha"  # "mha" | "gqa" | "mqa" | "mla"
    ffn: str = "dense"  # "dense" | "moe"
    d_ff: int = 192  # hidden width of the dense SwiGLU
    # --- DeepSeekMoE ([V3] §2.1.2) ---
    n_routed_experts: int = 8
    n_shared_experts: int = 1
    n_activated_experts: int = 2  # K_r: routed experts chosen per token
    d_expert: int = 64  # hidden width of one (fine-grained) expert
    score_func: str = "sigmoid"  # "softmax" (V2) | "sigmoid" (V3)
    n_expert_groups: int = 1
    topk_groups: int = 1
    route_scale: float = 1.0
    norm_topk_prob: bool = True
    balance: str = "none"  # "none" | "aux_loss" | "aux_free"
    aux_alpha: float = 0.01  # weight of the sequence-wise balance loss ("aux_loss")
    bias_gamma: float = 0.001  # bias update speed ("aux_free")
    complementary_alpha: float = 0.0  # V3's tiny sequence-wise loss next to the bias (1e-4)
    first_k_dense: int = 0  # V3 keeps its first 3 layers dense
    # --- Multi-head Latent Attention ([V2] §2.1), used when attention == "mla" ---
    q_lora_rank: int | None = None  # None: queries are not compressed (V2-Lite)
    kv_lora_rank: int = 32  # d_c
    qk_nope_head_dim: int = 16
    qk_rope_head_dim: int = 8  # d_h^R
    v_head_dim: int = 16
    mla_cache: str = "absorbed"  # generation's cache: "absorbed" (c_kv + k_rope) or "naive" (K, V)

    def __post_init__(self):
        # Every field is checked here, at the boundary, so a wrong size stops with a course
        # message instead of NaN logits or an error from deep inside torch.
        validate.choice("attention", self.attention, ATTENTIONS)
        validate.choice("ffn", self.ffn, FFNS)
        for name in _AT_LEAST_ONE:
            _whole(name, getattr(self, name), 1)
        for name in ("n_shared_experts", "first_k_dense"):
            _whole(name, getattr(self, name), 0)
        for name in ("n_kv_heads", "q_lora_rank"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), 1)
        validate.number(
            "rope_theta", self.rope_theta, "RoPE's base; 10000 (Llama, DeepSeek) is usual.",
            low=1, low_open=True,
        )  # fmt: skip
        validate.number(
            "norm_eps", self.norm_eps, "RMSNorm's epsilon; 1e-6 is usual.",
            low=0, high=1, low_open=True, high_open=True,
        )  # fmt: skip
        validate.number("route_scale", self.route_scale, "1.0 is usual.", low=0, low_open=True)
        for name in ("aux_alpha", "bias_gamma", "complementary_alpha"):
            validate.number(name, getattr(self, name), "0 turns it off.", low=0)
        validate.choice("score_func", self.score_func, ("softmax", "sigmoid"))
        validate.choice("balance", self.balance, ("none", "aux_loss", "aux_free"))
        validate.choice(
            "mla_cache", self.mla_cache, ("absorbed", "naive"),
            "the MLA cache mode: the latent and the RoPE key, or full keys and values",
        )  # fmt: skip
        if self.first_k_dense > self.n_layers:
            raise ValueError(
                f"first_k_dense={self.first_k_dense} is more than n_layers={self.n_layers}; "
                "at most every layer can be dense."
            )
        if self.n_kv_heads is None:
            self.n_kv_heads = {"mha": self.n_heads, "mqa": 1}.get(
                self.attention, max(1, self.n_heads // 2)
            )
        if self.attention == "mha" and self.n_kv_heads != self.n_heads:
            raise ValueError(
                f"MHA has one K/V head per query head: n_kv_heads={self.n_kv_heads} != "
                f"n_heads={self.n_heads}; use attention='gqa' for fewer K/V heads."
            )
        if self.attention == "mqa" and self.n_kv_heads != 1:
            raise ValueError("MQA has one K/V head: set n_kv_heads=1 (or None), or use 'gqa'.")
        if self.attention in ("gqa", "mha", "mqa"):
            if self.n_heads % self.n_kv_heads:
                raise ValueError(
                    f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}."
                )
            if self.head_dim is None and self.d_model % self.n_heads:
                raise ValueError(
                    f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                    "change one of them or set head_dim explicitly."
                )
            hd = self.d_model // self.n_heads if self.head_dim is None else self.head_dim
            _whole("head_dim", hd, 2)
            if hd % 2:
                raise ValueError(
                    f"head_dim={hd} must be even: RoPE rotates pairs of dimensions; try {hd + 1}."
                )
        if self.attention == "mla" and self.qk_rope_head_dim % 2:
            raise ValueError(
                f"qk_rope_head_dim={self.qk_rope_head_dim} must be even (RoPE rotates pairs); "
                f"try {self.qk_rope_head_dim + 1}."
            )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class KVCache:
    """What generation keeps between steps: one opaque cache per layer, and how many tokens it holds.

    Each attention module decides what its cache holds (K and V for MHA/GQA, a latent for MLA).
    """

    layers: list
    length: int

    def nbytes(self) -> int:
        """Bytes held by every cached tensor of every layer."""
        return cache_nbytes(self.layers)


def build_attention(config: TinySeekConfig) -> nn.Module:
    """The one place attention modules are made: ``config.attention`` picks the mechanism."""
    if config.attention == "mla":
        return MultiHeadLatentAttention(
            config.d_model, config.n_heads, config.kv_lora_rank, config.qk_nope_head_dim,
            config.qk_rope_head_dim, config.v_head_dim, q_lora_rank=config.q_lora_rank,
            rope_theta=config.rope_theta, norm_eps=config.norm_eps, cache_mode=config.mla_cache,
        )  # fmt: skip
    return GroupedQueryAttention(
        config.d_model, config.n_heads, config.n_kv_heads, config.head_dim, config.rope_theta
    )


class Block(nn.Module):
    """One pre-norm decoder layer: attention then a dense or MoE feed-forward."""

    def __init__(self, config: TinySeekConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = build_attention(config)
        self.ffn_norm = RMSNorm(config.d_model, config.norm_eps)
        if config.ffn == "moe" and layer_idx >= config.first_k_dense:
            self.ffn: nn.Module = DeepSeekMoE(
                config.d_model, config.d_expert, config.n_routed_experts, config.n_shared_experts,
                config.n_activated_experts, config.score_func, config.n_expert_groups,
                config.topk_groups, config.route_scale, config.norm_topk_prob, config.balance,
                config.aux_alpha, config.bias_gamma, config.complementary_alpha,
            )  # fmt: skip
        else:
            self.ffn = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x, positions, past=None, key_mask=None):
        """x: (B, T, d) -> (B, T, d), and this layer's KV cache."""
        a, present = self.attn(self.attn_norm(x), positions, past, key_mask)
        x = x + a
        x = x + self.ffn(self.ffn_norm(x))
        return x, present


class TinySeek(nn.Module):
    """A small decoder-only transformer; see the module docstring for the switches."""

    def __init__(self, config: TinySeekConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.embed.weight  # tied embeddings
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    # --- forward ---------------------------------------------------------------------------
    def forward_with_cache(
        self,
        idx: torch.Tensor,
        past: KVCache | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """idx: (B, T) new tokens; past: the cache returned by the previous call (or None).

        key_mask: (B, S) True for real tokens over the whole sequence so far (cache + new), for
        left-padded batches; None when nothing is padded. Returns logits (B, T, V) and the cache.
        """
        check_token_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        start = 0 if past is None else past.length
        if start + T > self.config.max_seq_len:
            raise ValueError(
                f"sequence length {start + T} exceeds max_seq_len={self.config.max_seq_len}; "
                "shorten the input or build the model with a larger max_seq_len."
            )
        positions = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.embed(idx)  # (B, T, d)
        presents = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, positions, None if past is None else past.layers[i], key_mask)
            presents.append(present)
        logits = self.lm_head(self.norm(x))  # (B, T, V)
        return logits, KVCache(presents, start + T)

    def forward(self, idx: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """idx: (B, T) token ids -> logits (B, T, vocab_size). key_mask: (B, T), see above."""
        return self.forward_with_cache(idx, None, key_mask)[0]

    # --- MoE bookkeeping -------------------------------------------------------------------
    def moe_layers(self) -> list[DeepSeekMoE]:
        return [b.ffn for b in self.blocks if isinstance(b.ffn, DeepSeekMoE)]

    @property
    def aux_loss(self) -> torch.Tensor:
        """Sum of the MoE layers' weighted balance losses from the last forward (0 if none)."""
        losses = [m.aux_loss for m in self.moe_layers()]
        return sum(losses[1:], losses[0]) if losses else torch.zeros(())

    def routing(self) -> list[RoutingInfo]:
        """One RoutingInfo per MoE layer, from the last forward."""
        return [m.last_routing for m in self.moe_layers() if m.last_routing is not None]

    def after_optimizer_step(self) -> None:
        """Move the auxiliary-loss-free biases (no-op for dense models or other balance modes)."""
        for m in self.moe_layers():
            m.update_bias()

    # --- sizes -----------------------------------------------------------------------------
    def num_parameters(self, active_only: bool = False) -> int:
        """All parameters (tied embeddings counted once), or those used per token (MoE: k experts)."""
        total = sum(p.numel() for p in self.parameters())
        if active_only:
            for m in self.moe_layers():
                total -= m.num_parameters() - m.num_parameters(active_only=True)
        return total

    # --- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample up to ``max_new_tokens`` after the prompts ``idx`` (B, T), with a KV cache.

        temperature 0 means greedy. top_p < 1 samples from the smallest set of tokens whose
        probability adds up to top_p. With ``eos_id``, a finished row keeps emitting eos and
        generation stops early once every row has finished. key_mask: (B, T) False at left
        padding of the prompts. Returns (B, T + new) ids: prompts followed by the samples.
        """
        validate.number(
            "max_new_tokens", max_new_tokens, "e.g. 32.", low=0, integer=True
        )  # fmt: skip
        check_sampling(temperature, top_p)
        was_training = self.training
        self.eval()
        out = idx
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        logits, past = self.forward_with_cache(idx, None, key_mask)
        for _ in range(max_new_tokens):
            nxt = sample_next(logits[:, -1], temperature, top_p, generator)  # (B,)
            if eos_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
                done = done | (nxt == eos_id)
            out = torch.cat([out, nxt[:, None]], dim=1)
            if key_mask is not None:
                key_mask = torch.cat([key_mask, key_mask.new_ones(idx.shape[0], 1)], dim=1)
            if eos_id is not None and bool(done.all()):
                break
            if out.shape[1] >= self.config.max_seq_len:
                break
            logits, past = self.forward_with_cache(nxt[:, None], past, key_mask)
        self.train(was_training)
        return out


def check_token_ids(idx: torch.Tensor, vocab_size: int) -> None:
    """Raise a ValueError that says what to do unless ``idx`` is a non-empty (B, T) batch of ids
    in ``[0, vocab_size)`` (otherwise torch's embedding fails with an IndexError, or an MoE layer
    with a reshape error on an empty batch)."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be a (batch, time) tensor of token ids, got {shape}; "
            "e.g. torch.tensor([tok.encode(text)]) (add the batch axis with [None])."
        )
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise ValueError(f"idx must hold integer token ids, got dtype {idx.dtype}; use .long().")
    if idx.numel() == 0:
        raise ValueError(
            f"the batch is empty (shape {tuple(idx.shape)}); pass at least one sequence of at "
            "least one token, e.g. the <bos> id alone."
        )
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"token id {bad} is outside the model's vocabulary [0, {vocab_size - 1}]. Encode text "
            "with the tokenizer the model was built for (tok.encode), and build the model with "
            "TinySeekConfig(vocab_size=tok.vocab_size)."
        )


def check_sampling(temperature: float, top_p: float) -> None:
    """temperature: a finite number >= 0 (0 is greedy); top_p: in (0, 1]. Else a ValueError."""
    validate.number(
        "temperature", temperature, "use 0 for greedy decoding or e.g. 1.0 to sample.", low=0
    )
    validate.number(
        "top_p", top_p, "use 1.0 to sample from every token, or e.g. 0.95 (nucleus sampling).",
        low=0, high=1, low_open=True,
    )  # fmt: skip


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row from logits (B, V): greedy at temperature 0, else temperature + top-p."""
    check_sampling(temperature, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = F.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        cum = sorted_p.cumsum(dim=-1)
        drop = cum - sorted_p >= top_p  # tokens outside the nucleus (the top one is always kept)
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
