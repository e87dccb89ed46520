"""The stand-in: a tiny local model and tokenizer in R1's chat format, for tests and FAST mode.

:func:`build` writes a tiny random Qwen2 model and a small byte-level BPE tokenizer with a chat
template in R1's format to a folder, so tests and FAST mode run the real loading code
(:func:`course_lib.r1.loader.load`) with no network and no GPU. Its text is gibberish unless
``train_steps`` teaches it R1's *format* (thinking, ``</think>``, a boxed answer) with the course's
SFT rows and training loop; it still cannot do math.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from course_lib import runtime, validate
from course_lib.architectures import TransformerConfig
from course_lib.data import Batch, sft_rows_from_ids
from course_lib.formats import THINK, THINK_END
from course_lib.r1.chat import TEMPERATURE, TOP_P, chat_prompt, math_question
from course_lib.r1.loader import STAND_IN_MARKER
from course_lib.train import History, lm_loss, train

# R1's special tokens (the stand-in uses the same strings).
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
PAD = "<｜▁pad▁｜>"

# R1's chat template, written here in our own words: BOS, (no system prompt), user turns after
# <｜User｜>, assistant turns after <｜Assistant｜> keeping only the text after the last </think>, and
# with add_generation_prompt the reply is opened with "<think>\n" (as later R1 templates do).
_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}{{ '" + USER + "' + m['content'] }}"
    "{% elif m['role'] == 'assistant' %}"
    "{% set c = m['content'] %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}"
    "{{ '" + ASSISTANT + "' + c + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '" + ASSISTANT + "'OPEN }}{% endif %}"
)


def stand_in_chat_template(opens_think: bool = True) -> str:
    """A Jinja chat template in R1's format; ``opens_think=False`` gives the older variant."""
    return _TEMPLATE.replace("OPEN", " + '<think>\\n'" if opens_think else "")


def _stand_in_corpus() -> list[str]:
    from course_lib.math_problems import math_problems

    lines = []
    for p in math_problems():
        lines.append(math_question(p.question))
        lines.append(f"{THINK}\n{p.trace}\n{THINK_END}\n\nThe answer is \\boxed{{{p.answer}}}.")
    return lines


def _stand_in_tokenizer(vocab_size: int, opens_think: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = [BOS, EOS, PAD, USER, ASSISTANT]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_stand_in_corpus(), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    # As in R1's tokenizer: <think> and </think> are single added tokens that are NOT special, so
    # decode(skip_special_tokens=True) keeps them in the text.
    tok.add_tokens([THINK, THINK_END])
    tok.add_special_tokens({"additional_special_tokens": [USER, ASSISTANT]})
    tok.chat_template = stand_in_chat_template(opens_think)
    tok.padding_side = "left"
    return tok


def shape_of(like: str | TransformerConfig) -> TransformerConfig:
    """The architecture a stand-in copies: a supported distill's name (its base's config) or a
    ``TransformerConfig``. Only Qwen2-shaped ones (biases on q, k, v) can be copied."""
    from course_lib import published
    from course_lib.r1.models import resolve_model

    cfg = (
        like
        if isinstance(like, TransformerConfig)
        else published.R1_MODELS[resolve_model(like)].config
    )
    if not cfg.qkv_bias or cfg.attention != "gqa":
        raise ValueError(
            f"{cfg.name} is not Qwen2-shaped (GQA with q/k/v biases); the stand-in is a Qwen2 model. "
            "Use a Qwen distill, e.g. like='R1-Distill-Qwen-1.5B'."
        )
    return cfg


def qwen2_dims(shape: TransformerConfig) -> dict:
    """The size fields of a transformers ``Qwen2Config`` for ``shape`` (the one mapping from the
    course's config names to transformers', used here and by ``benchmarks/real_model.py``)."""
    return dict(
        vocab_size=shape.vocab_size,
        hidden_size=shape.d_model,
        intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads,
        head_dim=shape.head_dim,
    )


def build(
    path: str | os.PathLike,
    opens_think: bool = True,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab_size: int = 400,
    train_steps: int = 0,
    seed: int = 0,
    overwrite: bool = False,
    like: str | TransformerConfig | None = None,
) -> Path:
    """Write a random Qwen2 model + byte-level BPE tokenizer in R1's chat format to ``path``.

    By default the model is tiny (``hidden``, ``layers``, ...). ``like="R1-Distill-Qwen-1.5B"`` gives
    it that distill's exact shape instead (random weights, saved in bfloat16: 3.6 GB for the 1.5B),
    so memory and speed can be measured on a GPU without downloading anything; its embedding has the
    real vocabulary's rows, of which the small tokenizer uses the first few hundred.
    ``loader.load(path=...)`` then runs the real loading code on it. ``train_steps > 0`` fits it
    briefly to R1-style traces of the course's math problems (:func:`fit_format`), so its replies
    have R1's *shape*; it still cannot do math. Deterministic given ``seed``.

    ``path`` must be a new or empty folder: a folder that already holds files (a model you
    downloaded, an earlier stand-in) is refused unless ``overwrite=True``. For a folder that
    disappears on its own, build into ``tempfile.TemporaryDirectory()`` (notebook 05 does).
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    for name, value, low in (("hidden", hidden, 2), ("layers", layers, 1), ("heads", heads, 1),
                             ("kv_heads", kv_heads, 1), ("vocab_size", vocab_size, 300),
                             ("train_steps", train_steps, 0), ("seed", seed, 0)):  # fmt: skip
        validate.number(name, value, f"e.g. the default {name}.", low=low, integer=True)
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file; pass a folder for the stand-in.")
    existing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if existing and not overwrite:
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise FileExistsError(
            f"{folder} already holds files ({shown}); the stand-in would overwrite them. Fix: "
            "pass an empty or new folder (e.g. tempfile.TemporaryDirectory().name), or "
            "overwrite=True to replace what is there."
        )
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _stand_in_tokenizer(vocab_size, opens_think)
    dims = dict(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
    )
    name, dtype = "R1 stand-in (tiny random Qwen2)", torch.float32
    if like is not None:
        shape = shape_of(like)
        dims.update(qwen2_dims(shape), max_position_embeddings=32_768)
        dims["vocab_size"] = max(len(tok), shape.vocab_size)
        name, dtype = f"R1 stand-in (random weights in the shape of {shape.name})", torch.bfloat16
    if dims["hidden_size"] % dims["num_attention_heads"] or (
        dims["num_attention_heads"] % dims["num_key_value_heads"]
    ):
        raise ValueError("hidden must divide by heads and heads by kv_heads, e.g. 64/4/2.")
    cfg = Qwen2Config(
        **dims,
        rope_theta=10_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    # A full-size stand-in initialises far faster on a GPU, where there is one.
    where = "cuda" if like is not None and torch.cuda.is_available() else "cpu"
    with torch.device(where):
        model = Qwen2ForCausalLM(cfg)
    if train_steps > 0:
        fit_format(model, tok, train_steps, seed)
    model.generation_config.do_sample = True
    model.generation_config.temperature = TEMPERATURE
    model.generation_config.top_p = TOP_P
    with runtime.quiet_progress_bars():  # no "Writing model shards" bar left on screen
        model.to(dtype).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    marker = {
        "name": name,
        "opens_think": opens_think,
        "train_steps": train_steps,
        "seed": seed,
    }
    (folder / STAND_IN_MARKER).write_text(json.dumps(marker, indent=1))
    return folder


def fit_format(model, tok, steps: int, seed: int = 0) -> History:
    """Teach the stand-in R1's format: SFT on R1-style replies to the course's math problems, with
    the course's SFT rows and training loop (the reply is learned, not the question)."""
    from course_lib.math_problems import math_problems

    pairs = []
    for p in math_problems():
        prompt = chat_prompt(tok, math_question(p.question)).text
        reply = f"{p.trace}\n{THINK_END}\n\nThe answer is \\boxed{{{p.answer}}}."
        pairs.append(
            (
                tok(prompt, add_special_tokens=False)["input_ids"],
                tok(reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id],
            )
        )
    rows = sft_rows_from_ids(pairs, tok.pad_token_id)

    def loss_fn(model, batch: Batch) -> tuple[torch.Tensor, dict]:
        return lm_loss(model(input_ids=batch.x).logits, batch.y), {}

    history = train(
        model, rows.batches(16, seed), steps, loss_fn, lr=1e-2, desc="stand-in", progress=False
    )
    model.eval()
    return history
