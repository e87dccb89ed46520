"""Looking inside a causal LM while it reasons: token confidence, attention maps, the logit lens.

Works on any transformers Qwen2/Llama-architecture causal LM (the R1 distills, the course stand-in),
quantised with bitsandbytes or not. Everything comes back as plain tensors in dataclasses; figures
live in ``course_lib.plots.look_inside``, dashboards in ``course_lib.widgets.look_inside``.

- Token confidence: one forward pass over prompt + completion gives, for each generated token, the
  probability the model gave it, the entropy of the distribution it was drawn from, and the top-k
  alternatives. "Wait"/"Hmm" moments of R1-style reasoning [R1 §2.2.4, the "aha moment"] are found
  by matching the token text.
- Attention maps: softmax(QK^T/sqrt(d)) per layer and head. PyTorch's fused SDPA kernel never
  materialises those weights, so the inspection pass switches the model to the "eager" attention
  implementation and switches it back afterwards.
- Logit lens (nostalgebraist, 2020): each decoder layer's output residual stream is sent through the
  model's final RMSNorm and LM head, as if the model stopped there. The last layer reproduces the
  model's own logits exactly (tested). Simplified: no tuned lens (no learned per-layer translators).

Probabilities are the model's raw distribution (temperature 1), not the temperature-0.6 sampling
distribution; the two rank tokens identically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

HESITATION_WORDS: tuple[str, ...] = ("wait", "hmm", "but", "alternatively", "actually", "check")


def _decoder_parts(model):
    """(layers, final norm, LM head) of a Qwen2/Llama-style causal LM."""
    decoder = (
        model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    )
    layers = getattr(decoder, "layers", None)
    norm = getattr(decoder, "norm", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if layers is None or norm is None or head is None:
        raise ValueError(
            f"{type(model).__name__} does not look like a Qwen2/Llama causal LM (needs "
            ".model.layers, .model.norm and an LM head). Pass e.g. a Qwen2ForCausalLM."
        )
    return layers, norm, head


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _as_ids(input_ids) -> torch.Tensor:
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() == 2:
        if ids.shape[0] != 1:
            raise ValueError(
                "Inspect one sequence at a time: pass input_ids of shape (T,) or (1, T)."
            )
        ids = ids[0]
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("input_ids must be a 1-D sequence of at least 2 token ids.")
    return ids


def token_strings(tokenizer, ids: Sequence[int]) -> list[str]:
    """Each id decoded on its own (so a byte-level token shows as readable text where it can)."""
    return [tokenizer.decode([int(i)]) for i in ids]


# --------------------------------------------------------------------------------------------------
# Token confidence
# --------------------------------------------------------------------------------------------------


@dataclass
class TokenConfidence:
    """Per generated token: its probability, the entropy it was drawn from, the top-k alternatives."""

    tokens: list[str]  # (C,) the generated tokens' text
    token_ids: torch.Tensor  # (C,)
    probs: torch.Tensor  # (C,) p(token | everything before it)
    entropy: torch.Tensor  # (C,) in nats
    topk_ids: torch.Tensor  # (C, k)
    topk_probs: torch.Tensor  # (C, k)
    topk_tokens: list[list[str]]  # (C, k)

    def __len__(self) -> int:
        return len(self.tokens)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of softmax(logits) over the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def token_confidence(
    model, tokenizer, input_ids, prompt_len: int, k: int = 5, chunk: int = 256
) -> TokenConfidence:
    """Score the tokens after ``prompt_len`` in ``input_ids`` (prompt + completion) in one pass."""
    ids = _as_ids(input_ids)
    if not 1 <= prompt_len < len(ids):
        raise ValueError(
            f"prompt_len={prompt_len} must leave at least one completion token in {len(ids)} ids."
        )
    logits = model(ids[None].to(_device(model))).logits[0]  # (T, V)
    target = ids[prompt_len:]  # (C,)
    k = min(k, logits.shape[-1])
    probs, ents, top_ps, top_is = [], [], [], []
    for lo in range(prompt_len - 1, len(ids) - 1, chunk):  # chunks keep (C, V) floats small
        hi = min(lo + chunk, len(ids) - 1)
        pred = logits[lo:hi].float()  # position t predicts token t+1
        p_all = torch.softmax(pred, dim=-1)
        probs.append(
            p_all.gather(
                1, target[lo - prompt_len + 1 : hi - prompt_len + 1, None].to(p_all.device)
            )[:, 0].cpu()
        )
        ents.append(entropy(pred).cpu())
        tp, ti = p_all.topk(k, dim=-1)
        top_ps.append(tp.cpu())
        top_is.append(ti.cpu())
    top_i = torch.cat(top_is)
    return TokenConfidence(
        tokens=token_strings(tokenizer, target.tolist()),
        token_ids=target,
        probs=torch.cat(probs),
        entropy=torch.cat(ents),
        topk_ids=top_i,
        topk_probs=torch.cat(top_ps),
        topk_tokens=[token_strings(tokenizer, row.tolist()) for row in top_i],
    )


def hesitation_moments(tokens: Sequence[str], words: Sequence[str] = HESITATION_WORDS) -> list[int]:
    """Indices of tokens that start a hesitation word ("Wait", " hmm", "But", ...), case-blind."""
    wanted = {w.lower() for w in words}
    hits = []
    for i, tok in enumerate(tokens):
        word = tok.strip()
        if not word[:1].isalpha():
            continue
        if i > 0 and tok[:1].isalpha() and tokens[i - 1][-1:].isalpha():
            continue  # the middle of a word ("Wa" + "it"), not its start
        j = i + 1
        while j < len(tokens) and tokens[j][:1].isalpha():  # a word split over several tokens
            word += tokens[j]
            j += 1
        core = re.match(r"[^\W\d_]+", word)
        if core and core.group(0).lower() in wanted:
            hits.append(i)
    return hits


# --------------------------------------------------------------------------------------------------
# Attention maps
# --------------------------------------------------------------------------------------------------


@contextmanager
def eager_attention(model):
    """Temporarily switch ``model`` to eager attention so it can return attention weights."""
    before = getattr(model.config, "_attn_implementation", None)
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if before not in (None, "eager"):
            model.set_attn_implementation(before)


@dataclass
class AttentionMaps:
    """Attention weights of one sequence: ``weights[layer, head, query, key]``, rows sum to 1."""

    tokens: list[str]  # (T,)
    weights: torch.Tensor  # (L, H, T, T) float32, causal: zero above the diagonal

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1]


@torch.no_grad()
def attention_maps(model, tokenizer, input_ids, max_tokens: int = 256) -> AttentionMaps:
    """All layers' and heads' attention for one sequence (the last ``max_tokens`` tokens)."""
    ids = _as_ids(input_ids)[-max_tokens:]
    with eager_attention(model):
        out = model(ids[None].to(_device(model)), output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise RuntimeError(
            "The model returned no attention weights even in eager mode; this transformers "
            "version may not support output_attentions for it. Fix: upgrade transformers."
        )
    weights = torch.stack([a[0].float().cpu() for a in out.attentions])  # (L, H, T, T)
    return AttentionMaps(token_strings(tokenizer, ids.tolist()), weights)


# --------------------------------------------------------------------------------------------------
# Logit lens
# --------------------------------------------------------------------------------------------------


@dataclass
class LogitLens:
    """Each layer's prediction of the next token, read through the final norm and LM head.

    Row 0 is the embedding output (before any layer), row ``l`` the output of decoder layer ``l``;
    the last row equals the model's own prediction.
    """

    tokens: list[str]  # (T,) input tokens; position t predicts token t+1
    layer_names: list[str]  # (L+1,)
    top_ids: torch.Tensor  # (L+1, T, k)
    top_probs: torch.Tensor  # (L+1, T, k)
    top_tokens: list[list[list[str]]]  # (L+1, T, k)
    entropy: torch.Tensor  # (L+1, T)
    next_prob: torch.Tensor  # (L+1, T-1) probability each layer gives the token that came next
    logits_last: torch.Tensor  # (T, V) the last layer's lens logits (for checks)


@torch.no_grad()
def logit_lens(model, tokenizer, input_ids, k: int = 5, max_tokens: int = 128) -> LogitLens:
    """Run the logit lens over one sequence (the last ``max_tokens`` tokens)."""
    ids = _as_ids(input_ids)[-max_tokens:]
    layers, norm, head = _decoder_parts(model)
    captured: list[torch.Tensor] = []

    def grab(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden.detach())

    # Hook the layers themselves: transformers' output_hidden_states puts the *normed* last state in
    # its final slot, which would apply the norm twice here.
    handles = [layer.register_forward_hook(grab) for layer in layers]
    embed_out: list[torch.Tensor] = []
    handles.append(
        model.get_input_embeddings().register_forward_hook(
            lambda _m, _i, out: embed_out.append(out.detach())
        )
    )
    try:
        model(ids[None].to(_device(model)))
    finally:
        for h in handles:
            h.remove()
    states = embed_out[:1] + captured  # L+1 tensors (1, T, D)
    nxt = ids[1:]
    top_ps, top_is, ents, next_ps = [], [], [], []
    for s in states:  # one layer at a time: (T, V) floats, never (L+1, T, V)
        logits = head(norm(s))[0].float().cpu()  # (T, V)
        probs = torch.softmax(logits, dim=-1)
        tp, ti = probs.topk(min(k, probs.shape[-1]), dim=-1)  # (T, k)
        top_ps.append(tp)
        top_is.append(ti)
        ents.append(entropy(logits))
        next_ps.append(probs[:-1].gather(1, nxt[:, None])[:, 0])
    top_i, top_p = torch.stack(top_is), torch.stack(top_ps)  # (L+1, T, k)
    vocab_cache: dict[int, str] = {}

    def text(i: int) -> str:
        if i not in vocab_cache:
            vocab_cache[i] = tokenizer.decode([i])
        return vocab_cache[i]

    return LogitLens(
        tokens=token_strings(tokenizer, ids.tolist()),
        layer_names=["embed"] + [f"layer {i}" for i in range(len(captured))],
        top_ids=top_i,
        top_probs=top_p,
        top_tokens=[[[text(int(i)) for i in pos] for pos in layer] for layer in top_i],
        entropy=torch.stack(ents),
        next_prob=torch.stack(next_ps),
        logits_last=logits,
    )
