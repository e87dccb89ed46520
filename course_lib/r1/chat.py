"""Talking to an R1 distill: its chat template, one streamed reply, a batch of sampled replies.

How to use the distills follows their model card (docs/references.md "The distills"): temperature
0.6, top-p 0.95, no system prompt; for math, "reason step by step" and a ``\\boxed{}`` answer; the
reply starts with ``"<think>\\n"`` (later chat templates put it in the prompt themselves). Replies
are cut into thinking and answer by :func:`course_lib.formats.split_thinking`. :func:`stream` runs
``generate`` in a thread and reads transformers' ``TextIteratorStreamer``, so a widget can show the
thinking while it is being written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from course_lib import validate
from course_lib.formats import THINK, THINK_END, Thought, split_thinking
from course_lib.r1.loader import LoadedModel
from course_lib.r1.models import generation_guard

# Model card: temperature 0.5-0.7 (0.6 recommended), top-p 0.95, no system prompt.
TEMPERATURE = 0.6


TOP_P = 0.95


MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# Extra ``generate`` arguments used everywhere; one place to change the decoding setup.
GENERATE_EXTRA: dict = {}


# On CUDA a static KV cache decodes faster: benchmarks/real_model.py measured 9.3 -> 28 tokens/s for
# the 1.5B distill in NF4 and 27 -> 236 tokens/s in bf16 (where transformers also compiles the
# decoding step) on an H100 (docs/benchmarks.md). On the CPU it brings nothing, so it stays off there.
CUDA_GENERATE_EXTRA: dict = {"cache_implementation": "static"}


@dataclass(frozen=True)
class ChatPrompt:
    """A prompt made by the model's own chat template, ending inside ``<think>``."""

    text: str
    template_opened_think: bool  # True when the template itself added "<think>\n"


def chat_prompt(
    tokenizer,
    question: str,
    history: Sequence[dict] = (),
) -> ChatPrompt:
    """Format ``question`` (after optional earlier ``history`` turns) with the tokenizer's template.

    No system prompt (model card). If the template does not already open ``<think>`` at the start
    of the reply, ``"<think>\\n"`` is added, as the model card asks.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string, e.g. 'What is 12 * 13?'.")
    for turn in history:
        if turn.get("role") == "system":
            raise ValueError(
                "R1 distills are used without a system prompt (model card). Fix: put the "
                "instructions into the user message instead."
            )
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            "This tokenizer has no chat template. Fix: load the tokenizer that ships with the "
            "model (tokenizer_config.json / chat_template.jinja in its folder)."
        )
    messages = [*history, {"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    opened = text.rstrip().endswith(THINK)
    if not opened:
        text = text + THINK + "\n"
    return ChatPrompt(text, opened)


def math_question(problem: str) -> str:
    """The model card's math prompt: the problem, then "reason step by step ... \\boxed{}"."""
    return f"{problem.strip()}\n{MATH_INSTRUCTION}"


@dataclass
class Completion:
    """One generated reply with its token ids and its thinking/answer split.

    ``truncated``: the reply ran into ``max_new_tokens`` before the model ended it. Then an unclosed
    thinking (``thought.finished`` False) or a missing ``\\boxed{}`` says nothing about what the model
    would have answered: count it apart (:attr:`status`), never as a wrong answer.
    """

    prompt: str
    prompt_ids: torch.Tensor  # (P,)
    completion_ids: torch.Tensor  # (C,), no padding, up to and including the end token if any
    text: str
    truncated: bool = False
    thought: Thought = field(init=False)
    thinking_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.thought = split_thinking(self.text, think_open_in_prompt=True)
        self.thinking_tokens = len(self.completion_ids)

    @property
    def thinking(self) -> str:
        return self.thought.thinking

    @property
    def answer(self) -> str:
        return self.thought.answer

    @property
    def status(self) -> str:
        """ "complete", "cut off while thinking", "cut off while answering" or "ended while
        thinking" (the model stopped without closing its thinking)."""
        if self.truncated:
            return "cut off while answering" if self.thought.finished else "cut off while thinking"
        return "complete" if self.thought.finished else "ended while thinking"


def _token_id(tokenizer, token: str) -> int | None:
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _make_completion(lm: LoadedModel, prompt: str, prompt_ids, new_ids) -> Completion:
    tok = lm.tokenizer
    new_ids = new_ids.detach().cpu()
    ends = (new_ids == tok.eos_token_id).nonzero()
    if len(ends):
        new_ids = new_ids[: int(ends[0]) + 1]
    text = tok.decode(new_ids, skip_special_tokens=True)
    # No end token: generate stopped at max_new_tokens (padding only follows an end token).
    c = Completion(prompt, prompt_ids.detach().cpu(), new_ids, text, truncated=not len(ends))
    close_id = _token_id(tok, THINK_END)
    if close_id is not None:
        hits = (new_ids == close_id).nonzero()
        c.thinking_tokens = int(hits[0]) if len(hits) else len(new_ids)
    return c


def sampling_kwargs(
    lm: LoadedModel,
    max_new_tokens: int,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
) -> dict:
    """``generate`` arguments for the model card's sampling (greedy when temperature is 0)."""
    max_new_tokens = validate.number(
        "max_new_tokens", max_new_tokens, "e.g. 512.", low=1, integer=True
    )
    card = f"the model card uses temperature={TEMPERATURE}, top_p={TOP_P} (0 is greedy)."
    validate.number("temperature", temperature, card, low=0)
    validate.number("top_p", top_p, card, low=0, high=1, low_open=True)
    tok = lm.tokenizer
    kw = {
        "max_new_tokens": int(max_new_tokens),
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    if temperature == 0:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kw.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=None)
    extra = (
        {**CUDA_GENERATE_EXTRA, **GENERATE_EXTRA} if lm.device.type == "cuda" else GENERATE_EXTRA
    )
    return {**extra, **kw}


def _encode(lm: LoadedModel, texts: list[str]) -> dict:
    enc = lm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return {k: v.to(lm.device) for k, v in enc.items()}


def stream(
    lm: LoadedModel,
    question: str,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    history: Sequence[dict] = (),
    ids_out: list[int] | None = None,
) -> Iterator[str]:
    """Yield the reply's text piece by piece while ``generate`` runs in a background thread.

    Pass a list as ``ids_out`` to receive the generated token ids as well.
    """
    from transformers import TextIteratorStreamer

    class RecordingStreamer(TextIteratorStreamer):
        def put(self, value) -> None:
            if ids_out is not None and not self.next_tokens_are_prompt:
                ids_out.extend(int(i) for i in value.reshape(-1).tolist())
            super().put(value)

    prompt = chat_prompt(lm.tokenizer, question, history)
    enc = _encode(lm, [prompt.text])
    streamer = RecordingStreamer(
        lm.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
    )
    kw = sampling_kwargs(lm, max_new_tokens, temperature, top_p)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.no_grad(), generation_guard("streaming a reply"):
                lm.model.generate(**enc, **kw, streamer=streamer)
        except BaseException as err:  # re-raised in the caller's thread below
            failure.append(err)
            streamer.end()

    torch.manual_seed(seed)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        thread.join()
    if failure:
        raise failure[0]


def stream_chat(
    lm: LoadedModel,
    question: str,
    on_text: Callable[[str], None] | None = None,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
) -> Completion:
    """Stream a reply, calling ``on_text(text_so_far)`` after each piece; return the Completion."""
    prompt = chat_prompt(lm.tokenizer, question)
    text, ids = "", []
    for piece in stream(lm, question, max_new_tokens, temperature, top_p, seed, ids_out=ids):
        text += piece
        if on_text is not None:
            on_text(text)
    tok = lm.tokenizer
    prompt_ids = tok(prompt.text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    return _make_completion(lm, prompt.text, prompt_ids, torch.tensor(ids, dtype=torch.long))


def sample(
    lm: LoadedModel,
    questions: str | Sequence[str],
    n: int = 4,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    history: Sequence[dict] = (),
) -> list[list[Completion]]:
    """``n`` sampled completions for each question, all in one batched ``generate`` call.

    Returns one list of ``n`` Completions per question (a single question still gives ``[[...]]``).
    """
    if isinstance(questions, str):
        questions = [questions]
    if not questions or n < 1:
        raise ValueError("Pass at least one question and n >= 1, e.g. sample(lm, 'What is 2+2?').")
    prompts = [chat_prompt(lm.tokenizer, q, history).text for q in questions]
    enc = _encode(lm, prompts)
    kw = sampling_kwargs(lm, max_new_tokens, temperature, top_p)
    if n > 1 and not kw["do_sample"]:
        raise ValueError("n > 1 identical greedy answers make no sense; use temperature > 0.")
    torch.manual_seed(seed)
    with torch.no_grad(), generation_guard(f"sampling {n} x {len(prompts)} completions"):
        out = lm.model.generate(**enc, **kw, num_return_sequences=n)  # (B*n, P+C)
    width = enc["input_ids"].shape[1]
    results: list[list[Completion]] = []
    for b, prompt in enumerate(prompts):
        mask = enc["attention_mask"][b].bool()
        prompt_ids = enc["input_ids"][b][mask]
        results.append(
            [_make_completion(lm, prompt, prompt_ids, out[b * n + j, width:]) for j in range(n)]
        )
    return results


def status_counts(completions: Sequence[Completion]) -> dict[str, int]:
    """How many completions ended each way (:attr:`Completion.status`), in a fixed order."""
    order = (
        "complete",
        "cut off while answering",
        "cut off while thinking",
        "ended while thinking",
    )
    return {s: sum(c.status == s for c in completions) for s in order}


@dataclass(frozen=True)
class Speed:
    """Measured decoding: ``batch`` sequences of exactly ``new_tokens`` tokens each."""

    batch: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second, over the whole batch."""
        return self.batch * self.new_tokens / self.seconds

    @property
    def seconds_per_step(self) -> float:
        """One decoding step of the whole batch (prefill included, spread over the steps)."""
        return self.seconds / self.new_tokens


def decode_speed(
    lm: LoadedModel, questions: Sequence[str], new_tokens: int = 64, warmup: bool = True
) -> Speed:
    """Time greedy ``generate`` of exactly ``new_tokens`` tokens for each of ``questions`` at once.

    The end token is suppressed (``min_new_tokens``), so two loadings of the same model (NF4 and
    16-bit, say) do the same work on the same prompts and their times compare. ``warmup`` runs a
    short generation first (CUDA kernels, a static cache's compilation).
    """
    import time

    prompts = [chat_prompt(lm.tokenizer, q).text for q in questions]
    enc = _encode(lm, prompts)
    kw = sampling_kwargs(lm, new_tokens, temperature=0)
    kw["min_new_tokens"] = new_tokens
    with torch.no_grad(), generation_guard("measuring the decoding speed"):
        if warmup:
            lm.model.generate(**enc, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = lm.model.generate(**enc, **kw)
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    assert out.shape[1] - enc["input_ids"].shape[1] == new_tokens
    return Speed(len(prompts), new_tokens, seconds)
