"""The road to scale: TinySeek's tokenizer, a dense TinySeek and the GRPO rewards in Hugging Face.

Notebook 04 ends by running the course's reward functions in TRL's ``GRPOTrainer``, the trainer
people use at real scale. Three adapters make that possible without a download:

* :func:`hf_tokenizer`: the character tokenizer as a ``transformers`` fast tokenizer, same ids;
* :func:`to_llama`: a dense MHA/GQA/MQA TinySeek copied into ``LlamaForCausalLM`` (TinySeek's
  dense block *is* the Llama block), same logits;
* :func:`to_trl_reward`: one of :mod:`course_lib.grpo`'s rewards in the calling convention TRL uses.

Each of them turns Hugging Face telemetry off (:func:`course_lib.runtime.hub_telemetry_off`):
TRL's trainers otherwise report their use from a background thread.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from course_lib.formats import TAGS
from course_lib.grpo import RewardFn
from course_lib.runtime import hub_telemetry_off
from course_lib.tokenizer import BOS, EOS, PAD, CharTokenizer, default_tokenizer

# Keyword arguments TRL adds to every reward call besides the dataset's columns.
_TRL_KWARGS = frozenset(
    {"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


def _content(x) -> str:
    """A completion or prompt as TRL passes it: plain text, or a conversation whose last turn counts."""
    if isinstance(x, str):
        return x
    if isinstance(x, (list, tuple)):  # conversational datasets: [{"role": ..., "content": ...}]
        return str(x[-1].get("content", "")) if x else ""
    raise ValueError(
        f"TRL passed a {type(x).__name__} where text or a list of chat messages belongs; "
        "check the dataset's 'prompt' column (strings, or lists of {'role', 'content'} dicts)."
    )


def to_trl_reward(fn: RewardFn, answer_column: str | None = "answer") -> Callable[..., list[float]]:
    """Wrap one of our reward functions into the shape TRL's ``GRPOTrainer`` calls.

    TRL calls ``reward(prompts=..., completions=..., **dataset_columns)`` and expects one float
    per completion; the dataset's ``answer`` column arrives as a keyword list. The wrapper refuses,
    with a ValueError that names the fix, what would make silent wrong rewards: a dataset without
    the answer column, an empty answer in it (which would pay an empty ``<answer></answer>``), and
    lists of different lengths (``zip`` would drop the extra completions). For a reward that never
    reads the answer (the format rewards) pass ``answer_column=None``; it then gets ``None``.
    """
    if not callable(fn):
        raise ValueError(
            f"to_trl_reward wraps a reward function such as grpo.accuracy_reward, got {fn!r}."
        )
    if answer_column is not None and (not isinstance(answer_column, str) or not answer_column):
        raise ValueError(
            f"answer_column must be a column name such as 'answer' (or None), got {answer_column!r}."
        )
    name = getattr(fn, "__name__", "reward")
    hub_telemetry_off()  # the wrapped reward goes into TRL, which would report its use

    def reward(prompts, completions, **kwargs) -> list[float]:
        n = len(completions)
        if len(prompts) != n:
            raise ValueError(
                f"{name}: {len(prompts)} prompts for {n} completions; TRL passes one prompt per "
                "completion (each prompt repeated num_generations times). Call it the same way."
            )
        if answer_column is None:
            answers: list = [None] * n
        else:
            if kwargs.get(answer_column) is None:
                columns = sorted(k for k in kwargs if k not in _TRL_KWARGS)
                raise ValueError(
                    f"{name} grades against the dataset's {answer_column!r} column, but TRL "
                    f"passed none (dataset columns it passed: {columns or 'none'}). Fix: add an "
                    f"{answer_column!r} column to the training dataset, or name yours with "
                    f"to_trl_reward({name}, answer_column='...'); a reward that never reads the "
                    "answer takes answer_column=None."
                )
            answers = list(kwargs[answer_column])
            if len(answers) != n:
                raise ValueError(
                    f"{name}: {len(answers)} answers for {n} completions; the {answer_column!r} "
                    "column must hold one answer per completion (TRL repeats it per generation)."
                )
            empty = [i for i, a in enumerate(answers) if a is None or not str(a).strip()]
            if empty:
                raise ValueError(
                    f"{name}: the {answer_column!r} column is empty in row(s) {empty[:5]}; an "
                    "empty reference would pay an empty <answer></answer>. Fix: drop those rows "
                    "or fill in their answers."
                )
        return [
            float(fn(_content(p), _content(c), a)) for p, c, a in zip(prompts, completions, answers)
        ]

    reward.__name__ = name
    return reward


def hf_tokenizer(tokenizer: CharTokenizer | None = None):
    """Our character tokenizer as a ``transformers`` fast tokenizer, built locally (no download).

    Same ids as ours; ``<bos>`` is prepended to every encoded text; ``<pad> <bos> <eos>`` are
    special tokens (TRL drops them when decoding completions) while the four format tags are
    ordinary single tokens, so decoded completions keep them for the format reward.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    hub_telemetry_off()
    tok = tokenizer or default_tokenizer()
    core = Tokenizer(models.WordLevel(vocab=dict(tok.stoi), unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")  # one char each
    core.decoder = decoders.Fuse()
    core.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (PAD, BOS, EOS)]
    )
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, tok.bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )


def to_llama(model: nn.Module):
    """Copy a dense MHA/GQA/MQA TinySeek into a ``transformers`` ``LlamaForCausalLM``.

    TinySeek's dense block *is* the Llama block (pre-norm RMSNorm, RoPE in the rotate-half layout,
    SwiGLU, no biases, tied embeddings), so the weights map one to one and the logits agree.
    MLA and MoE have no Llama counterpart: use ``transformers``' DeepSeek-V3 classes for those.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    hub_telemetry_off()
    c = model.config
    if (
        c.attention == "mla"
        or c.ffn != "dense"
        or (c.head_dim not in (None, c.d_model // c.n_heads))
    ):
        raise ValueError(
            "to_llama copies dense TinySeeks with MHA/GQA/MQA and head_dim = d_model // n_heads; "
            f"got attention={c.attention!r}, ffn={c.ffn!r}, head_dim={c.head_dim}."
        )
    tok = default_tokenizer()
    cfg = LlamaConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        intermediate_size=c.d_ff,
        num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads,
        num_key_value_heads=c.n_kv_heads,
        head_dim=c.d_model // c.n_heads,
        max_position_embeddings=c.max_seq_len,
        rms_norm_eps=c.norm_eps,
        rope_theta=c.rope_theta,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )
    hf = LlamaForCausalLM(cfg)
    state = {
        "model.embed_tokens.weight": model.embed.weight,
        "model.norm.weight": model.norm.weight,
    }
    for i, block in enumerate(model.blocks):
        pre = f"model.layers.{i}."
        state[pre + "input_layernorm.weight"] = block.attn_norm.weight
        state[pre + "post_attention_layernorm.weight"] = block.ffn_norm.weight
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            state[pre + f"self_attn.{name}.weight"] = getattr(block.attn, name).weight
        for name in ("gate_proj", "up_proj", "down_proj"):
            state[pre + f"mlp.{name}.weight"] = getattr(block.ffn, name).weight
    missing, unexpected = hf.load_state_dict(
        {k: v.detach().clone() for k, v in state.items()}, strict=False
    )
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"weight mapping is off: missing {missing}, unexpected {unexpected}.")
    hf.tie_weights()
    return hf
