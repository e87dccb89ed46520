"""The course_lib.r1 package on a locally built stand-in: the registry and memory check (models),
loading and its errors (loader), chat template, streaming, sampling (chat), the thinking budget
(budget), the stand-in itself (stand_in)."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import architectures, formats, published
from course_lib.math_problems import math_problems
from course_lib.r1 import budget, chat, loader, models, stand_in


def reply(lm, question, **kw):
    """One sampled reply (the model card's sampling unless told otherwise)."""
    return chat.sample(lm, question, 1, **kw)[0][0]


# --------------------------------------------------------------------------------------------------
# Fixtures: the stand-in folder (both chat-template variants) and a loaded model
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in_old_template(tmp_path_factory):
    return stand_in.build(tmp_path_factory.mktemp("stand_in_old"), opens_think=False, seed=0)


@pytest.fixture(autouse=True)
def _no_env_path(monkeypatch):
    monkeypatch.delenv(loader.PATH_ENV, raising=False)


# --------------------------------------------------------------------------------------------------
# Model names, configs, memory
# --------------------------------------------------------------------------------------------------


def test_resolve_model_accepts_names_and_hub_ids():
    assert models.resolve_model("R1-Distill-Qwen-1.5B") == "R1-Distill-Qwen-1.5B"
    assert models.resolve_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == "R1-Distill-Qwen-7B"
    assert models.resolve_model("deepseek-r1-distill-llama-8b") == "R1-Distill-Llama-8B"
    assert set(models.SUPPORTED) == set(models.REVISIONS)
    assert all(len(rev) == 40 for rev in models.REVISIONS.values())


@pytest.mark.parametrize("bad", ["gpt2", "R1-Distill-Qwen-32B", "DeepSeek-R1", ""])
def test_unsupported_model_names_the_fix(bad):
    with pytest.raises(ValueError) as err:
        loader.load(bad)
    msg = str(err.value)
    assert "not a supported R1 distill" in msg
    assert "R1-Distill-Qwen-1.5B" in msg and "path=" in msg


def test_known_distill_recognises_a_local_copy():
    from transformers import Qwen2Config

    real = architectures.CONFIGS["Qwen2.5-Math-1.5B"]
    local_copy = Qwen2Config(
        vocab_size=real.vocab_size, hidden_size=real.d_model, intermediate_size=real.d_ff,
        num_hidden_layers=real.n_layers, num_attention_heads=real.n_heads,
        num_key_value_heads=real.n_kv_heads, tie_word_embeddings=False,
    )  # fmt: skip
    arch = models.architecture(local_copy)
    assert models.known_distill(arch) == "R1-Distill-Qwen-1.5B"
    assert (
        architectures.param_count(arch) == published.R1_MODELS["R1-Distill-Qwen-1.5B"].params_total
    )
    import dataclasses

    assert models.known_distill(dataclasses.replace(arch, n_layers=3)) is None


def test_quantization_config_is_nf4_double_quant():
    q = loader.quantization_config(torch.float16)
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4"
    assert q.bnb_4bit_use_double_quant and q.bnb_4bit_compute_dtype == torch.float16


@pytest.mark.parametrize(
    "cuda, capability, expected",
    [(True, (7, 5), torch.float16), (True, (8, 0), torch.bfloat16), (False, None, torch.bfloat16)],
)
def test_compute_dtype_follows_the_gpu(monkeypatch, cuda, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert loader.compute_dtype() == expected  # a T4 is 7.5: fp16, not emulated bf16


def test_generate_extra_reaches_generate(lm, monkeypatch):
    monkeypatch.setattr(chat, "GENERATE_EXTRA", {"cache_implementation": "static"})
    kw = chat.sampling_kwargs(lm, 5)
    assert kw["cache_implementation"] == "static" and kw["max_new_tokens"] == 5


def test_memory_estimate_by_hand():
    est = models.estimate_memory("R1-Distill-Qwen-1.5B", quantized=True, context_tokens=1000)
    n = published.R1_MODELS["R1-Distill-Qwen-1.5B"].params_total
    embed = 2 * 151_936 * 1536  # embedding + untied LM head stay 16-bit
    assert est.weights == pytest.approx(embed * 2 + (n - embed) * (4 + 8 / 64 + 32 / 16384) / 8)
    per_token = 2 * 2 * 128 * 28  # K and V, 2 KV heads of 128, 28 layers
    assert est.kv_cache == pytest.approx(per_token * 2 * 1000)  # bf16, 1000 tokens
    assert est.naive_4bit == pytest.approx(n / 2) and est.bf16 == pytest.approx(2 * n)
    assert est.naive_4bit < est.weights < est.bf16


def test_largest_that_fits_orders_by_size():
    need = {n: models.estimate_memory(n, True).total for n in models.SUPPORTED}
    assert models.largest_that_fits(need["R1-Distill-Qwen-1.5B"] - 1) is None
    assert models.largest_that_fits(need["R1-Distill-Qwen-1.5B"]) == "R1-Distill-Qwen-1.5B"
    assert models.largest_that_fits(need["R1-Distill-Llama-8B"]) == "R1-Distill-Llama-8B"
    assert models.largest_that_fits(16e9) == "R1-Distill-Qwen-14B"  # a T4 holds the 14B in NF4
    assert models.largest_that_fits(1e12) == "R1-Distill-Qwen-14B"


def test_out_of_memory_before_loading_suggests_a_smaller_distill(tmp_path):
    with pytest.raises(models.NotEnoughMemoryError) as err:
        loader.load(
            "R1-Distill-Qwen-7B",
            quantize=True,
            device="cpu",
            free_memory_bytes=3e9,
            offline=True,
            cache_dir=tmp_path,
        )
    assert "load(model='R1-Distill-Qwen-1.5B') fits" in str(err.value)


def test_out_of_memory_when_nothing_fits(stand_in_dir):
    with pytest.raises(models.NotEnoughMemoryError) as err:
        loader.load(path=stand_in_dir, free_memory_bytes=1e6, verbose=False)
    assert "restart the runtime" in str(err.value)


def test_cuda_out_of_memory_while_loading_is_translated(stand_in_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(models.NotEnoughMemoryError) as err:
        loader.load(path=stand_in_dir, verbose=False)
    assert "smaller distill" in str(err.value) and "restart the runtime" in str(err.value)


# --------------------------------------------------------------------------------------------------
# Loading and its errors
# --------------------------------------------------------------------------------------------------


def test_load_local_stand_in(lm, stand_in_dir):
    assert lm.stand_in and lm.device.type == "cpu" and not lm.quantized
    assert lm.source == str(stand_in_dir) and lm.revision is None
    assert not lm.model.training
    assert lm.tokenizer.padding_side == "left" and lm.tokenizer.pad_token_id is not None
    assert "Stand-in" in lm.notice
    tensors = [*lm.model.parameters(), *lm.model.buffers()]
    assert lm.footprint_bytes == sum(t.numel() * t.element_size() for t in tensors)


def test_local_copy_gets_the_cpu_speed_notice(stand_in_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "my_model"
    shutil.copytree(stand_in_dir, copy)
    (copy / loader.STAND_IN_MARKER).unlink()
    loaded = loader.load(path=copy)
    assert loaded.name == "my_model" and not loaded.stand_in
    for words in ("No CUDA GPU", "tokens/s", "T4 GPU", "unquantised"):
        assert words in loaded.notice
    printed = capsys.readouterr().out
    assert loaded.notice in printed and "float32 on cpu" in printed


def test_load_via_environment_variable(stand_in_dir, monkeypatch):
    monkeypatch.setenv(loader.PATH_ENV, str(stand_in_dir))
    loaded = loader.load(verbose=False)
    assert loaded.source == str(stand_in_dir)


def test_load_4bit_on_cpu_with_bitsandbytes(stand_in_dir, lm):
    import bitsandbytes as bnb

    q = loader.load(path=stand_in_dir, quantize=True, verbose=False)
    assert q.quantized
    linear = q.model.model.layers[0].mlp.gate_proj
    assert isinstance(linear, bnb.nn.Linear4bit)
    state = linear.weight.quant_state
    assert state.quant_type == "nf4" and state.nested  # double quantisation
    assert q.footprint_bytes < lm.footprint_bytes / 2
    # The prediction (16-bit embeddings/head, NF4 elsewhere) matches what bitsandbytes stored; the
    # footprint leaves out the block scales (~0.13 bits per weight), hence the small tolerance.
    assert q.footprint_bytes == pytest.approx(q.estimate.weights, rel=0.03)
    assert lm.footprint_bytes == pytest.approx(lm.estimate.weights, rel=0.01)  # float32 prediction
    ids = torch.tensor([[1, 5, 9, 30, 41]])
    full, four = lm.model(ids).logits, q.model(ids).logits.float()
    assert torch.corrcoef(torch.stack([full.flatten(), four.flatten()]))[0, 1] > 0.9


def test_no_network_and_no_local_copy(tmp_path):
    with pytest.raises(loader.ModelUnavailableError) as err:
        loader.load(offline=True, cache_dir=tmp_path, device="cpu", free_memory_bytes=1e12)
    msg = str(err.value)
    assert "huggingface-cli download deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in msg
    assert models.REVISIONS["R1-Distill-Qwen-1.5B"] in msg and loader.PATH_ENV in msg


def test_local_folder_errors(tmp_path, stand_in_dir):
    with pytest.raises(FileNotFoundError, match=r"stand_in\.build"):
        loader.load(path=tmp_path / "missing")
    (tmp_path / "config.json").write_text((stand_in_dir / "config.json").read_text())
    with pytest.raises(ValueError, match="safetensors only"):
        loader.load(path=tmp_path)


def test_bitsandbytes_missing(stand_in_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` fail
    with pytest.raises(loader.BitsAndBytesUnavailableError) as err:
        loader.load(path=stand_in_dir, quantize=True, verbose=False)
    assert "pip install bitsandbytes" in str(err.value) and "quantize=False" in str(err.value)


def test_bitsandbytes_without_cuda_support(stand_in_dir, monkeypatch):
    import bitsandbytes  # noqa: F401  (imported for real before CUDA is faked below)

    # A GPU machine where bitsandbytes loaded its CPU library (the installed build here has no CUDA).
    monkeypatch.setattr(loader, "_bnb_backend", lambda: "CPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(loader.BitsAndBytesUnavailableError) as err:
        loader.load(path=stand_in_dir, verbose=False)
    assert "pip install -U bitsandbytes" in str(err.value)


def test_cuda_requested_without_gpu(stand_in_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="T4 GPU"):
        loader.load(path=stand_in_dir, device="cuda")


# --------------------------------------------------------------------------------------------------
# Chat template
# --------------------------------------------------------------------------------------------------


def test_chat_prompt_in_r1_format_for_both_template_variants(stand_in_dir, stand_in_old_template):
    from transformers import AutoTokenizer

    new = AutoTokenizer.from_pretrained(stand_in_dir)
    old = AutoTokenizer.from_pretrained(stand_in_old_template)
    a = chat.chat_prompt(new, "What is 2+3?")
    b = chat.chat_prompt(old, "What is 2+3?")
    expected = f"{stand_in.BOS}{stand_in.USER}What is 2+3?{stand_in.ASSISTANT}<think>\n"
    assert a.text == b.text == expected
    assert a.template_opened_think and not b.template_opened_think


def test_chat_history_drops_earlier_thinking_and_refuses_system(lm):
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nsecret musing\n</think>\n\nHello!"},
    ]
    text = chat.chat_prompt(lm.tokenizer, "And now?", history).text
    assert "secret musing" not in text and "\n\nHello!" + stand_in.EOS in text
    assert text.endswith(f"{stand_in.USER}And now?{stand_in.ASSISTANT}<think>\n")
    with pytest.raises(ValueError, match="without a system prompt"):
        chat.chat_prompt(lm.tokenizer, "x", [{"role": "system", "content": "be brief"}])
    with pytest.raises(ValueError, match="non-empty"):
        chat.chat_prompt(lm.tokenizer, "  ")


def test_think_tags_are_single_non_special_tokens(lm):
    tok = lm.tokenizer
    for tag in (formats.THINK, formats.THINK_END):
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1
        assert tok.decode(ids, skip_special_tokens=True) == tag


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_stand_in_tokenizer_round_trips_any_text(lm, text):
    # Byte-level BPE: any unicode string survives encode -> decode, up to the NFC normalisation
    # that the loaded tokenizer applies first, as R1's own (Qwen2) tokenizer does (U+F900 -> U+8C48).
    import unicodedata

    tok = lm.tokenizer
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == unicodedata.normalize(
        "NFC", text
    )


def test_math_question_follows_the_model_card():
    q = chat.math_question("What is 1+1? ")
    assert (
        q == "What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}."
    )


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


def test_greedy_chat_matches_a_manual_argmax_loop(lm):
    c = reply(lm, "What is 2+3?", max_new_tokens=12, temperature=0)
    ids = c.prompt_ids.clone()
    for _ in range(12):
        nxt = lm.model(ids[None]).logits[0, -1].argmax()
        ids = torch.cat([ids, nxt[None]])
        if nxt.item() == lm.tokenizer.eos_token_id:
            break
    assert torch.equal(c.completion_ids, ids[len(c.prompt_ids) :])
    assert c.text == lm.tokenizer.decode(c.completion_ids, skip_special_tokens=True)


def test_chat_is_seeded(lm):
    a = reply(lm, "Hello", max_new_tokens=16, seed=1)
    b = reply(lm, "Hello", max_new_tokens=16, seed=1)
    c = reply(lm, "Hello", max_new_tokens=16, seed=2)
    assert a.text == b.text and not torch.equal(a.completion_ids, c.completion_ids)


def test_stream_yields_the_same_text_as_chat(lm):
    pieces = list(chat.stream(lm, "What is 2+3?", max_new_tokens=20, seed=3))
    assert len(pieces) > 1
    assert "".join(pieces) == reply(lm, "What is 2+3?", max_new_tokens=20, seed=3).text


def test_stream_chat_calls_back_with_growing_text(lm):
    seen: list[str] = []
    c = chat.stream_chat(lm, "Hi", on_text=seen.append, max_new_tokens=15, seed=4)
    assert seen and seen[-1] == c.text
    assert all(seen[i + 1].startswith(seen[i]) for i in range(len(seen) - 1))
    assert torch.equal(c.completion_ids, reply(lm, "Hi", max_new_tokens=15, seed=4).completion_ids)


def test_stream_reraises_errors_from_the_generation_thread(lm, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("generation exploded")

    monkeypatch.setattr(lm.model, "generate", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        list(chat.stream(lm, "Hi", max_new_tokens=5))


def test_sample_batches_several_completions_per_prompt(lm):
    out = chat.sample(lm, ["What is 2+3?", "How many primes are below 10?"], n=3, max_new_tokens=10)
    assert [len(row) for row in out] == [3, 3]
    pad = lm.tokenizer.pad_token_id
    for row, q in zip(out, ["What is 2+3?", "How many primes are below 10?"]):
        for c in row:
            assert q in c.prompt and pad not in c.prompt_ids.tolist()
            assert 1 <= len(c.completion_ids) <= 10 and pad not in c.completion_ids.tolist()
    assert len({tuple(c.completion_ids.tolist()) for c in out[0]}) > 1  # samples differ
    # The left-padded shorter prompt gives the same greedy reply as on its own.
    alone = reply(lm, "What is 2+3?", max_new_tokens=8, temperature=0)
    batched = chat.sample(lm, ["What is 2+3?", "How many primes are below 10?"], 1, 8, 0)
    assert torch.equal(batched[0][0].completion_ids, alone.completion_ids)


def test_sampling_argument_errors(lm):
    with pytest.raises(ValueError, match="max_new_tokens"):
        reply(lm, "x", max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature > 0"):
        chat.sample(lm, "x", n=2, temperature=0)
    with pytest.raises(ValueError, match="temperature=0.6"):
        reply(lm, "x", top_p=1.5)


# --------------------------------------------------------------------------------------------------
# Thinking budget
# --------------------------------------------------------------------------------------------------


def test_thinking_budget_respects_the_budget(lm):
    problems = math_problems(per_kind=1)[:4]
    res = budget.thinking_budget_run(lm, problems, [0, 6], max_answer_tokens=6, progress=False)
    assert len(res) == 8
    zero = [r for r in res if r.budget == 0]
    six = [r for r in res if r.budget == 6]
    assert all(r.thinking_tokens == 0 and not r.closed_by_model for r in zero)
    assert all(0 <= r.thinking_tokens <= 6 for r in six)
    assert all(r.correct == (r.predicted is not None and r.predicted == r.expected) for r in res)
    summary = budget.budget_summary(res)
    assert [row["budget"] for row in summary] == [0, 6]
    assert summary[1]["mean_thinking_tokens"] == sum(r.thinking_tokens for r in six) / 4
    with pytest.raises(ValueError, match="budget"):
        budget.answer_with_budget(lm, problems, -1)


def test_budget_plumbing_with_a_scripted_model(lm, monkeypatch):
    """Script generate's output to check cut-off, forced </think>, boxed reading and scoring."""
    tok = lm.tokenizer
    problems = math_problems(per_kind=1)[:3]
    close = tok.convert_tokens_to_ids(formats.THINK_END)
    word = tok.encode("ok", add_special_tokens=False)[0]
    calls: list[torch.Tensor] = []

    def scripted(input_ids, attention_mask, max_new_tokens, **kw):
        calls.append(input_ids.clone())
        rows = []
        for i in range(len(input_ids)):
            if len(calls) == 1:  # thinking: problem 0 closes after 2 tokens, the others run out
                new = [word, word, close] if i == 0 else [word] * max_new_tokens
            else:  # answers: right, right, wrong
                ans = problems[i].answer if i < 2 else "-12345"
                new = tok.encode(f"So \\boxed{{{ans}}}.", add_special_tokens=False)
                new = new + [tok.eos_token_id]
            rows.append(new)
        width = max(len(r) for r in rows)
        rows = [r + [tok.pad_token_id] * (width - len(r)) for r in rows]
        return torch.cat([input_ids, torch.tensor(rows)], dim=1)

    monkeypatch.setattr(lm.model, "generate", scripted)
    res = budget.answer_with_budget(lm, problems, budget=4)
    assert [r.thinking_tokens for r in res] == [2, 4, 4]
    assert [r.closed_by_model for r in res] == [True, False, False]
    assert [r.predicted for r in res] == [problems[0].answer, problems[1].answer, "-12345"]
    assert [r.correct for r in res] == [True, True, False]
    force = tok.encode("\n</think>\n\n", add_special_tokens=False)
    second = calls[1]
    assert second[0, -len(force) - 2 :].tolist() == [word, word, *force]
    assert second[1, -len(force) - 4 :].tolist() == [word] * 4 + force


# --------------------------------------------------------------------------------------------------
# The stand-in builder
# --------------------------------------------------------------------------------------------------


def test_stand_in_is_deterministic(tmp_path, stand_in_dir):
    again = stand_in.build(tmp_path / "again", seed=0)
    assert (again / "model.safetensors").read_bytes() == (
        stand_in_dir / "model.safetensors"
    ).read_bytes()
    other = stand_in.build(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (
        stand_in_dir / "model.safetensors"
    ).read_bytes()


def test_fitting_the_format_lowers_the_loss(lm):
    import copy

    model = copy.deepcopy(lm.model)
    losses = stand_in.fit_format(model, lm.tokenizer, steps=8, seed=0).series("loss")[1]
    assert len(losses) == 8 and losses[-1] < losses[0]


def test_num_parameters_counts_packed_4bit_weights(stand_in_dir, lm):
    """Notebook 05 shows model.num_parameters() of an NF4 model: two weights per stored byte."""
    q = loader.load(path=stand_in_dir, quantize=True, verbose=False)
    assert q.model.num_parameters() == lm.model.num_parameters()
    assert lm.model.num_parameters() == sum(p.numel() for p in lm.model.parameters())


@pytest.mark.gpu
def test_load_4bit_on_gpu(stand_in_dir):
    q = loader.load(path=stand_in_dir, verbose=False)
    assert q.quantized and q.device.type == "cuda"
    assert q.dtype == loader.compute_dtype()
    c = reply(q, "What is 2+3?", max_new_tokens=8)
    assert len(c.completion_ids) >= 1


@pytest.mark.gpu
def test_static_cache_paths_on_gpu(stand_in_dir):
    """Streaming, batched sampling and the thinking budget with the CUDA decoding settings."""
    q = loader.load(path=stand_in_dir, verbose=False)
    kw = chat.sampling_kwargs(q, 8)
    assert kw["cache_implementation"] == "static"
    ids: list[int] = []
    text = "".join(chat.stream(q, "What is 2+3?", max_new_tokens=12, ids_out=ids))
    assert 1 <= len(ids) <= 12 and isinstance(text, str)
    greedy = [
        chat.sample(q, "What is 2+3?", n=2, max_new_tokens=10, temperature=0)[0] for _ in range(2)
    ]
    first = greedy[0][0].completion_ids
    assert torch.equal(first, greedy[1][0].completion_ids)
    assert torch.equal(first, greedy[0][1].completion_ids)
    problems = math_problems(per_kind=1, seed=0)[:3]
    answers = budget.answer_with_budget(q, problems, budget=6, max_answer_tokens=6)
    assert len(answers) == 3


# --------------------------------------------------------------------------------------------------
# The hub and CUDA branches of load, with from_pretrained recorded instead of downloading
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def recorded_hub(stand_in_dir, monkeypatch):
    """Make from_pretrained record its arguments and hand back the stand-in (no network)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    calls: dict[str, dict] = {}
    real_tok, real_model = AutoTokenizer.from_pretrained, AutoModelForCausalLM.from_pretrained

    def tok(name, **kw):
        calls["tokenizer"] = {"name": name, **kw}
        return real_tok(stand_in_dir)

    def model(name, **kw):
        calls["model"] = {"name": name, **kw}
        return real_model(stand_in_dir)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", tok)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", model)
    monkeypatch.setattr(loader, "_hub_reachable", lambda timeout=5.0: None)  # "the hub answers"
    return calls


def test_hub_branch_pins_the_revision_and_reads_safetensors_only(recorded_hub, tmp_path):
    loaded = loader.load(
        "R1-Distill-Qwen-7B",
        device="cpu",
        free_memory_bytes=1e12,
        offline=True,
        cache_dir=tmp_path,
        verbose=False,
    )
    m, t = recorded_hub["model"], recorded_hub["tokenizer"]
    assert m["name"] == t["name"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert m["revision"] == t["revision"] == models.REVISIONS["R1-Distill-Qwen-7B"]
    assert m["use_safetensors"] is True and m["trust_remote_code"] is False
    assert t["trust_remote_code"] is False and m["local_files_only"] is True
    assert m["dtype"] == torch.float32 and "quantization_config" not in m
    assert loaded.name == "R1-Distill-Qwen-7B" and "No CUDA GPU" in loaded.notice


def test_cuda_branch_on_a_t4_asks_for_nf4_with_fp16(recorded_hub, monkeypatch):
    import bitsandbytes  # noqa: F401  (imported for real before CUDA is faked below)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))  # a T4
    monkeypatch.setattr(loader, "_bnb_backend", lambda: "CUDA")
    monkeypatch.setattr(loader, "free_memory", lambda device: 15e9)
    loaded = loader.load(verbose=False)
    m = recorded_hub["model"]
    q = m["quantization_config"]
    assert q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.float16 and m["dtype"] == torch.float16
    assert m["device_map"] == {"": 0} and m["revision"] == models.REVISIONS[models.DEFAULT_MODEL]
    assert loaded.quantized and loaded.device.type == "cuda" and loaded.notice == ""


# --------------------------------------------------------------------------------------------------
# Inputs that fail clearly (issue 15): course messages instead of foreign stack traces
# --------------------------------------------------------------------------------------------------


def _copy(stand_in_dir, tmp_path, name="copy"):
    import shutil

    return shutil.copytree(stand_in_dir, tmp_path / name)


def test_load_refuses_a_quantize_it_does_not_know(stand_in_dir):
    for bad in ("no", "nf4", 0, None):
        with pytest.raises(ValueError, match="quantize="):
            loader.load(path=stand_in_dir, quantize=bad, verbose=False)
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        loader.load(path=stand_in_dir, device="gpu", verbose=False)
    with pytest.raises(ValueError, match="context_tokens must be a whole number"):
        loader.load(path=stand_in_dir, context_tokens=1.5, verbose=False)
    with pytest.raises(ValueError, match=r"\* sizing.GB"):
        loader.load(path=stand_in_dir, free_memory_bytes=15, verbose=False)  # GB, not bytes


@pytest.mark.parametrize(
    "damage, what",
    [
        (lambda f: (f / "config.json").write_text("{not json"), "config.json is not valid JSON"),
        (lambda f: (f / "config.json").write_text("{}"), "has no model_type"),
        (lambda f: (f / "config.json").write_text("[1, 2]"), "has no model_type"),
        (lambda f: (f / "model.safetensors").write_bytes(b"junk" * 100), "weights cannot be read"),
        (lambda f: (f / loader.STAND_IN_MARKER).write_text("{"), "cannot be read"),
    ],
    ids=["bad JSON", "empty config", "not a dict", "junk safetensors", "bad marker"],
)
def test_damaged_local_folder_gets_a_course_message(stand_in_dir, tmp_path, damage, what):
    folder = _copy(stand_in_dir, tmp_path)
    damage(folder)
    with pytest.raises(loader.ModelUnavailableError) as err:
        loader.load(path=folder, verbose=False)
    msg = str(err.value)
    assert what in msg and str(folder) in msg and "download it again" in msg


def test_too_big_local_model_fix_names_the_folder_that_overrides_model(tmp_path, monkeypatch):
    # A local folder with the 7B distill's config (the memory check runs before any weight is read).
    from transformers import Qwen2Config

    spec = published.R1_MODELS["R1-Distill-Qwen-7B"].config
    folder = tmp_path / "seven_b"
    Qwen2Config(
        vocab_size=spec.vocab_size, hidden_size=spec.d_model, intermediate_size=spec.d_ff,
        num_hidden_layers=spec.n_layers, num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_kv_heads,
    ).save_pretrained(folder)  # fmt: skip
    (folder / "model.safetensors").write_bytes(b"")
    small = models.estimate_memory("R1-Distill-Qwen-1.5B", quantized=False, dtype_bits=32).total
    kw = dict(device="cpu", free_memory_bytes=small * 1.01, verbose=False)
    monkeypatch.setenv(loader.PATH_ENV, str(folder))
    with pytest.raises(models.NotEnoughMemoryError) as err:
        loader.load(model="R1-Distill-Qwen-1.5B", **kw)
    msg = str(err.value)
    assert "R1-Distill-Qwen-7B needs" in msg
    assert f"COURSE_R1_PATH={folder} overrides load(model=...)" in msg and "unset it" in msg
    monkeypatch.delenv(loader.PATH_ENV)
    with pytest.raises(models.NotEnoughMemoryError) as err:
        loader.load(path=folder, **kw)
    assert "pass path= a folder holding R1-Distill-Qwen-1.5B" in str(err.value)


def test_loading_without_a_network_fails_at_once(tmp_path, monkeypatch):
    """Not offline by setting, no network, nothing cached: one look at the hub, no retries."""
    import socket
    import time

    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    lookups, sleeps = [], []

    def no_dns(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(time, "sleep", lambda s: sleeps.append(s))  # huggingface_hub's back-off
    with pytest.raises(loader.ModelUnavailableError) as err:
        loader.load(device="cpu", cache_dir=tmp_path, free_memory_bytes=1e12, verbose=False)
    assert sleeps == [] and len(lookups) <= 1, (lookups, sleeps)
    assert "HF_HUB_OFFLINE=1" in str(err.value) and "huggingface-cli download" in str(err.value)


def test_load_turns_hub_telemetry_off(stand_in_dir, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    loader.load(path=stand_in_dir, verbose=False)
    assert constants.HF_HUB_DISABLE_TELEMETRY is True


def test_build_refuses_to_overwrite_a_folder_with_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')  # someone's model
    with pytest.raises(FileExistsError, match="overwrite=True"):
        stand_in.build(folder, seed=0)
    assert (folder / "config.json").read_text() == '{"model_type": "llama"}'
    assert stand_in.build(folder, seed=0, overwrite=True) == folder
    assert loader.load(path=folder, verbose=False).stand_in
    with pytest.raises(FileExistsError, match="overwrite=True"):
        stand_in.build(folder, seed=0)  # a stand-in is not overwritten silently either


def test_budget_and_sampling_refuse_bad_input(lm):
    with pytest.raises(ValueError, match="at least one problem"):
        budget.answer_with_budget(lm, [], 4)
    with pytest.raises(ValueError, match=r"\.question and \.answer"):
        budget.answer_with_budget(lm, ["What is 2+2?"], 4)
    with pytest.raises(ValueError, match="budget must be a whole number"):
        budget.answer_with_budget(lm, math_problems(1)[:1], 2.5)
    with pytest.raises(ValueError, match="at least one budget"):
        budget.thinking_budget_run(lm, math_problems(1)[:1], [])
    for bad in (float("nan"), float("inf"), -0.1):
        with pytest.raises(ValueError, match="temperature"):
            chat.sampling_kwargs(lm, 8, temperature=bad)
    with pytest.raises(ValueError, match="top_p"):
        chat.sampling_kwargs(lm, 8, top_p=float("nan"))
# Truncation: a reply that runs out of tokens is counted apart, never scored as wrong
# --------------------------------------------------------------------------------------------------


def test_truncation_detected_when_thinking_does_not_close(lm):
    # The random stand-in never writes </think> or its end token within 12 tokens: the reply is cut
    # off while thinking, and it says so.
    replies = chat.sample(lm, "What is 2+3?", n=3, max_new_tokens=12, seed=0)[0]
    for c in replies:
        assert len(c.completion_ids) == 12 and lm.tokenizer.eos_token_id not in c.completion_ids
        assert c.truncated and not c.thought.finished
        assert c.status == "cut off while thinking"
    counts = chat.status_counts(replies)
    assert counts["cut off while thinking"] == 3 and sum(counts.values()) == 3
    streamed = chat.stream_chat(lm, "What is 2+3?", max_new_tokens=12, seed=0)
    assert streamed.truncated and streamed.status == "cut off while thinking"


def test_completion_status_on_scripted_replies(lm, monkeypatch):
    tok = lm.tokenizer
    close, eos = tok.convert_tokens_to_ids(formats.THINK_END), tok.eos_token_id
    word = tok.encode("ok", add_special_tokens=False)[0]
    scripts = [
        [word, close, word, eos],  # complete
        [word, close, word, word],  # the answer ran out of tokens
        [word, word, word, word],  # the thinking ran out of tokens
        [word, word, eos, tok.pad_token_id],  # the model ended without closing its thinking
    ]

    def scripted(input_ids, attention_mask, max_new_tokens, num_return_sequences, **kw):
        assert max_new_tokens == 4 and num_return_sequences == len(scripts)
        return torch.cat([input_ids.repeat(len(scripts), 1), torch.tensor(scripts)], dim=1)

    monkeypatch.setattr(lm.model, "generate", scripted)
    out = chat.sample(lm, "x", n=len(scripts), max_new_tokens=4)[0]
    assert [c.status for c in out] == [
        "complete",
        "cut off while answering",
        "cut off while thinking",
        "ended while thinking",
    ]
    assert [c.truncated for c in out] == [False, True, True, False]


def test_budget_counts_cut_off_answers_apart_from_wrong_ones(lm, monkeypatch):
    """Three problems, two samples each: right, wrong, no boxed answer, and cut off."""
    tok = lm.tokenizer
    problems = math_problems(per_kind=1)[:3]
    word = tok.encode("ok", add_special_tokens=False)[0]
    calls = []

    def scripted(input_ids, attention_mask, max_new_tokens, **kw):
        calls.append(input_ids.shape[0])
        rows = []
        for i in range(len(input_ids)):
            p, k = divmod(i, 2)  # problem-major: p0 s0, p0 s1, p1 s0, ...
            if p == 0:
                text = f"\\boxed{{{problems[0].answer if k == 0 else '-1'}}}"
                new = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
            elif p == 1:  # ends without a boxed answer
                new = [word, tok.eos_token_id]
            else:  # runs out of answer tokens before any boxed answer
                new = [word] * max_new_tokens
            rows.append(new[:max_new_tokens] if p != 0 else new)
        width = max(len(r) for r in rows)
        rows = [r + [tok.pad_token_id] * (width - len(r)) for r in rows]
        return torch.cat([input_ids, torch.tensor(rows)], dim=1)

    monkeypatch.setattr(lm.model, "generate", scripted)
    res = budget.answer_with_budget(lm, problems, budget=0, max_answer_tokens=24, samples=2)
    assert calls == [6] and [r.sample for r in res] == [0, 1] * 3
    assert [r.outcome for r in res] == ["correct", "wrong", "no answer", "no answer"] + [
        "cut off",
        "cut off",
    ]
    assert not any(r.correct for r in res if r.outcome == "cut off")
    (row,) = budget.budget_summary(res)
    assert (row["problems"], row["samples"], row["n"]) == (3, 2, 6)
    assert row["accuracy"] == pytest.approx(1 / 6)
    assert (row["correct"], row["wrong"], row["no answer"], row["cut off"]) == pytest.approx(
        (1 / 6, 1 / 6, 2 / 6, 2 / 6)
    )
    # per problem 0.5, 0, 0: the bootstrap interval over problems spans 0 to 0.5
    assert row["ci_low"] == 0 and row["ci_high"] == pytest.approx(0.5)


def test_several_samples_per_problem_on_the_stand_in(lm):
    problems = math_problems(per_kind=1)[:2]
    res = budget.thinking_budget_run(
        lm, problems, [0, 4], max_answer_tokens=4, samples=3, progress=False
    )
    assert len(res) == 2 * 2 * 3
    summary = budget.budget_summary(res)
    assert [(r["problems"], r["samples"]) for r in summary] == [(2, 3), (2, 3)]
    for r in summary:
        assert 0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1
        assert sum(r[o] for o in budget.OUTCOMES) == pytest.approx(1)
    # 4 answer tokens are too few for a random model to box anything: cut off, not wrong
    assert all(r.outcome == "cut off" for r in res)
    with pytest.raises(ValueError, match="samples"):
        budget.answer_with_budget(lm, problems, 0, samples=0)


def test_bootstrap_interval_by_hand():
    assert budget.bootstrap_interval([1.0] * 5) == (1.0, 1.0)
    lo, hi = budget.bootstrap_interval([0.0, 1.0] * 8, seed=1)
    assert lo < 0.5 < hi and budget.bootstrap_interval([0.0, 1.0] * 8, seed=1) == (lo, hi)
    wide = budget.bootstrap_interval([0.0, 1.0] * 2)
    narrow = budget.bootstrap_interval([0.0, 1.0] * 32)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]  # more problems, a tighter interval
    with pytest.raises(ValueError):
        budget.bootstrap_interval([])
    assert budget.decode_steps([0, 128, 256], 64) == 384 + 3 * 64


def test_decode_speed_generates_exactly_the_asked_tokens(lm):
    speed = chat.decode_speed(lm, ["What is 2+3?", "Hi"], new_tokens=6, warmup=False)
    assert (speed.batch, speed.new_tokens) == (2, 6) and speed.seconds > 0
    assert speed.tokens_per_s == pytest.approx(12 / speed.seconds)
    assert speed.seconds_per_step == pytest.approx(speed.seconds / 6)


# --------------------------------------------------------------------------------------------------
# Dtypes on a T4 (sm_75) and the inf/NaN guard
# --------------------------------------------------------------------------------------------------


def _fake_gpu(monkeypatch, capability):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)


@pytest.mark.parametrize(
    ("capability", "quantize", "asked", "expected"),
    [
        ((7, 5), True, "auto", torch.float16),  # a T4: NF4 computes in fp16
        ((7, 5), False, "auto", torch.float16),  # a T4: the 16-bit path is fp16 too
        ((8, 0), False, "auto", torch.bfloat16),
        ((7, 5), False, "fp32", torch.float32),
        ((7, 5), True, torch.float16, torch.float16),
    ],
)
def test_resolve_dtype_on_cuda(monkeypatch, capability, quantize, asked, expected):
    _fake_gpu(monkeypatch, capability)
    assert loader.resolve_dtype(asked, torch.device("cuda"), quantize) == expected


def test_bf16_refused_on_a_t4_and_cpu_defaults(monkeypatch):
    _fake_gpu(monkeypatch, (7, 5))
    with pytest.raises(ValueError, match="no bfloat16") as err:
        loader.resolve_dtype("bf16", torch.device("cuda"), quantize=False)
    assert "dtype='fp16'" in str(err.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = torch.device("cpu")
    assert loader.resolve_dtype("auto", cpu, quantize=False) == torch.float32
    assert loader.resolve_dtype("auto", cpu, quantize=True) == torch.bfloat16
    with pytest.raises(ValueError, match="'fp16', 'bf16' or 'fp32'"):
        loader.resolve_dtype("int8", cpu, quantize=False)


def test_the_stand_in_on_a_t4_loads_nf4_with_fp16_compute(stand_in_dir, monkeypatch):
    # The stand-in path (FAST mode on a Colab T4) asks for the same sm_75-safe dtypes.
    import bitsandbytes  # noqa: F401  (imported for real before CUDA is faked below)
    from transformers import AutoModelForCausalLM

    seen = {}
    real = AutoModelForCausalLM.from_pretrained

    def record(name, **kw):
        seen.update(kw)
        return real(stand_in_dir)

    _fake_gpu(monkeypatch, (7, 5))
    monkeypatch.setattr(loader, "_bnb_backend", lambda: "CUDA")
    monkeypatch.setattr(loader, "free_memory", lambda device: 15e9)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", record)
    loaded = loader.load(path=stand_in_dir, verbose=False)
    assert seen["dtype"] == torch.float16
    assert seen["quantization_config"].bnb_4bit_compute_dtype == torch.float16
    assert loaded.dtype == torch.float16 and loaded.stand_in


def test_fp16_overflow_falls_back_to_float32(recorded_hub, stand_in_dir, monkeypatch):
    """In fp16 the (fake) model overflows: load sees inf/NaN logits, reloads in float32, says so."""
    import bitsandbytes  # noqa: F401
    from transformers import AutoModelForCausalLM

    asked = []
    real = AutoModelForCausalLM.from_pretrained

    def overflowing_in_fp16(name, **kw):
        asked.append(kw["dtype"])
        model = real(stand_in_dir)
        if kw["dtype"] == torch.float16:
            with torch.no_grad():
                model.lm_head.weight.fill_(3e38)  # logits overflow to inf, softmax to NaN
        return model

    _fake_gpu(monkeypatch, (7, 5))
    monkeypatch.setattr(loader, "_bnb_backend", lambda: "CUDA")
    monkeypatch.setattr(loader, "free_memory", lambda device: 15e9)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", overflowing_in_fp16)
    loaded = loader.load(verbose=False)
    assert asked == [torch.float16, torch.float32]
    assert (
        loaded.dtype == torch.float32 and "float32" in loaded.notice and "inf/NaN" in loaded.notice
    )
    assert loader.logits_are_finite(loaded.model, loaded.tokenizer)


def test_inf_logits_while_sampling_give_a_clear_error(stand_in_dir):
    lm_bad = loader.load(path=stand_in_dir, verbose=False)
    with torch.no_grad():
        lm_bad.model.lm_head.weight.fill_(3e38)
    assert not loader.logits_are_finite(lm_bad.model, lm_bad.tokenizer)
    with pytest.raises(models.NonFiniteLogitsError, match="dtype='fp32'"):
        chat.sample(lm_bad, "What is 2+3?", n=2, max_new_tokens=4)
    with pytest.raises(models.NonFiniteLogitsError):
        list(chat.stream(lm_bad, "Hi", max_new_tokens=4))


# --------------------------------------------------------------------------------------------------
# The exact-shape stand-in (random weights, a real distill's shape: for GPU timing without a download)
# --------------------------------------------------------------------------------------------------


def test_stand_in_in_a_given_shape(tmp_path):
    shape = architectures.TransformerConfig("small-qwen", 96, 200, 3, 6, 2, 16, 1000, qkv_bias=True)
    folder = stand_in.build(tmp_path / "shaped", like=shape)
    loaded = loader.load(path=folder, verbose=False)
    cfg = loaded.model.config
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (96, 200, 3)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size) == (6, 2, 1000)
    assert "small-qwen" in loaded.name and loaded.stand_in
    assert architectures.param_count(models.architecture(cfg)) == loaded.model.num_parameters()
    assert len(reply(loaded, "What is 2+3?", max_new_tokens=3).completion_ids) >= 1
    real = stand_in.shape_of("R1-Distill-Qwen-1.5B")
    assert (real.d_model, real.n_layers, real.vocab_size) == (1536, 28, 151_936)
    with pytest.raises(ValueError, match="Qwen2-shaped"):
        stand_in.shape_of("R1-Distill-Llama-8B")


@pytest.mark.gpu
def test_fp16_and_nf4_on_gpu_stand_in(stand_in_dir):
    """On a real GPU: the stand-in in fp16 (what a T4 computes in) and in NF4 gives finite logits,
    samples, and both loadings decode the same prompts (the speed comparison of notebook 05)."""
    half = loader.load(path=stand_in_dir, quantize=False, dtype="fp16", verbose=False)
    nf4 = loader.load(path=stand_in_dir, quantize=True, dtype="fp16", verbose=False)
    for m in (half, nf4):
        assert m.dtype == torch.float16 and loader.logits_are_finite(m.model, m.tokenizer)
        assert len(reply(m, "What is 2+3?", max_new_tokens=8).completion_ids) >= 1
        speed = chat.decode_speed(m, ["What is 2+3?", "Hi"], new_tokens=16)
        assert speed.batch == 2 and speed.tokens_per_s > 0
    assert nf4.footprint_bytes < half.footprint_bytes


@pytest.mark.gpu
def test_exact_shape_stand_in_on_gpu(tmp_path):
    """R1-Distill-Qwen-1.5B's exact shape with random weights: NF4 and 16-bit memory as predicted."""
    folder = stand_in.build(tmp_path / "exact", like="R1-Distill-Qwen-1.5B")
    for quantize in (True, False):
        m = loader.load(path=folder, quantize=quantize, verbose=False)
        assert m.footprint_bytes == pytest.approx(m.estimate.weights, rel=0.05)
        c = reply(m, "What is 2+3?", max_new_tokens=16)
        assert c.truncated or c.thought.finished or len(c.completion_ids) < 16
        del m
        torch.cuda.empty_cache()
