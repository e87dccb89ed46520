"""course_lib.r1 on a locally built stand-in: loading, errors, chat template, streaming, sampling."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import formats, r1, sizing
from course_lib.math_problems import math_problems

# --------------------------------------------------------------------------------------------------
# Fixtures: the stand-in folder (both chat-template variants) and a loaded model
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in_old_template(tmp_path_factory):
    return r1.build_stand_in(tmp_path_factory.mktemp("stand_in_old"), opens_think=False, seed=0)


@pytest.fixture(autouse=True)
def _no_env_path(monkeypatch):
    monkeypatch.delenv(r1.PATH_ENV, raising=False)


# --------------------------------------------------------------------------------------------------
# Model names, configs, memory
# --------------------------------------------------------------------------------------------------


def test_resolve_model_accepts_names_and_hub_ids():
    assert r1.resolve_model("R1-Distill-Qwen-1.5B") == "R1-Distill-Qwen-1.5B"
    assert r1.resolve_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == "R1-Distill-Qwen-7B"
    assert r1.resolve_model("deepseek-r1-distill-llama-8b") == "R1-Distill-Llama-8B"
    assert set(r1.SUPPORTED) == set(r1.REVISIONS)
    assert all(len(rev) == 40 for rev in r1.REVISIONS.values())


@pytest.mark.parametrize("bad", ["gpt2", "R1-Distill-Qwen-32B", "DeepSeek-R1", ""])
def test_unsupported_model_names_the_fix(bad):
    with pytest.raises(ValueError) as err:
        r1.load(bad)
    msg = str(err.value)
    assert "not a supported R1 distill" in msg
    assert "R1-Distill-Qwen-1.5B" in msg and "path=" in msg


def test_exact_1_5b_config_matches_facts_and_sizing():
    cfg = r1.r1_distill_qwen_1_5b_config()
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (1536, 8960, 28)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (12, 2)
    assert (cfg.vocab_size, cfg.max_position_embeddings) == (151_936, 131_072)
    assert cfg.rope_parameters["rope_theta"] == 10_000 and cfg.dtype == torch.bfloat16
    assert cfg.rms_norm_eps == 1e-6 and cfg.tie_word_embeddings is False
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert n == sizing.param_count(sizing.CONFIGS["Qwen2.5-Math-1.5B"])
    assert abs(n / 1e9 - 1.78) < 0.01  # FACTS.md: about 1.78B parameters


def test_known_distill_recognises_a_local_copy():
    arch = r1.architecture(r1.r1_distill_qwen_1_5b_config())
    assert r1.known_distill(arch) == "R1-Distill-Qwen-1.5B"
    assert sizing.param_count(arch) == sizing.R1_MODELS["R1-Distill-Qwen-1.5B"].params_total
    import dataclasses

    assert r1.known_distill(dataclasses.replace(arch, n_layers=3)) is None


def test_quantization_config_is_nf4_double_quant():
    q = r1.quantization_config(torch.float16)
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4"
    assert q.bnb_4bit_use_double_quant and q.bnb_4bit_compute_dtype == torch.float16


@pytest.mark.parametrize(
    "cuda, capability, expected",
    [(True, (7, 5), torch.float16), (True, (8, 0), torch.bfloat16), (False, None, torch.bfloat16)],
)
def test_compute_dtype_follows_the_gpu(monkeypatch, cuda, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert r1.compute_dtype() == expected  # a T4 is 7.5: fp16, not emulated bf16


def test_generate_extra_reaches_generate(lm, monkeypatch):
    monkeypatch.setattr(r1, "GENERATE_EXTRA", {"cache_implementation": "static"})
    kw = r1.sampling_kwargs(lm, 5)
    assert kw["cache_implementation"] == "static" and kw["max_new_tokens"] == 5


def test_memory_estimate_by_hand():
    est = r1.estimate_memory("R1-Distill-Qwen-1.5B", quantized=True, context_tokens=1000)
    n = sizing.R1_MODELS["R1-Distill-Qwen-1.5B"].params_total
    embed = 2 * 151_936 * 1536  # embedding + untied LM head stay 16-bit
    assert est.weights == pytest.approx(embed * 2 + (n - embed) * (4 + 8 / 64 + 32 / 16384) / 8)
    assert est.kv_cache == pytest.approx(28_672 * 1000)  # FACTS.md: 28,672 bf16 bytes per token
    assert est.naive_4bit == pytest.approx(n / 2) and est.bf16 == pytest.approx(2 * n)
    assert est.naive_4bit < est.weights < est.bf16


def test_largest_that_fits_orders_by_size():
    need = {n: r1.estimate_memory(n, True).total for n in r1.SUPPORTED}
    assert r1.largest_that_fits(need["R1-Distill-Qwen-1.5B"] - 1) is None
    assert r1.largest_that_fits(need["R1-Distill-Qwen-1.5B"]) == "R1-Distill-Qwen-1.5B"
    assert r1.largest_that_fits(need["R1-Distill-Llama-8B"]) == "R1-Distill-Llama-8B"
    assert r1.largest_that_fits(16e9) == "R1-Distill-Qwen-14B"  # a T4 holds the 14B in NF4
    assert r1.largest_that_fits(1e12) == "R1-Distill-Qwen-14B"


def test_out_of_memory_before_loading_suggests_a_smaller_distill(tmp_path):
    with pytest.raises(r1.NotEnoughMemoryError) as err:
        r1.load(
            "R1-Distill-Qwen-7B",
            quantize=True,
            device="cpu",
            free_memory_bytes=3e9,
            offline=True,
            cache_dir=tmp_path,
        )
    assert "load(model='R1-Distill-Qwen-1.5B') fits" in str(err.value)


def test_out_of_memory_when_nothing_fits(stand_in):
    with pytest.raises(r1.NotEnoughMemoryError) as err:
        r1.load(path=stand_in, free_memory_bytes=1e6, verbose=False)
    assert "restart the runtime" in str(err.value)


def test_cuda_out_of_memory_while_loading_is_translated(stand_in, monkeypatch):
    from transformers import AutoModelForCausalLM

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(r1.NotEnoughMemoryError) as err:
        r1.load(path=stand_in, verbose=False)
    assert "smaller distill" in str(err.value) and "restart the runtime" in str(err.value)


# --------------------------------------------------------------------------------------------------
# Loading and its errors
# --------------------------------------------------------------------------------------------------


def test_load_local_stand_in(lm, stand_in):
    assert lm.stand_in and lm.device.type == "cpu" and not lm.quantized
    assert lm.source == str(stand_in) and lm.revision is None
    assert not lm.model.training
    assert lm.tokenizer.padding_side == "left" and lm.tokenizer.pad_token_id is not None
    assert "Stand-in" in lm.notice
    tensors = [*lm.model.parameters(), *lm.model.buffers()]
    assert lm.footprint_bytes == sum(t.numel() * t.element_size() for t in tensors)


def test_local_copy_gets_the_cpu_speed_notice(stand_in, tmp_path, capsys):
    import shutil

    copy = tmp_path / "my_model"
    shutil.copytree(stand_in, copy)
    (copy / r1.STAND_IN_MARKER).unlink()
    loaded = r1.load(path=copy)
    assert loaded.name == "my_model" and not loaded.stand_in
    for words in ("No CUDA GPU", "tokens/s", "T4 GPU", "unquantised"):
        assert words in loaded.notice
    printed = capsys.readouterr().out
    assert loaded.notice in printed and "float32 on cpu" in printed


def test_load_via_environment_variable(stand_in, monkeypatch):
    monkeypatch.setenv(r1.PATH_ENV, str(stand_in))
    loaded = r1.load(verbose=False)
    assert loaded.source == str(stand_in)


def test_load_4bit_on_cpu_with_bitsandbytes(stand_in, lm):
    import bitsandbytes as bnb

    q = r1.load(path=stand_in, quantize=True, verbose=False)
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
    with pytest.raises(r1.ModelUnavailableError) as err:
        r1.load(offline=True, cache_dir=tmp_path, device="cpu", free_memory_bytes=1e12)
    msg = str(err.value)
    assert "huggingface-cli download deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in msg
    assert r1.REVISIONS["R1-Distill-Qwen-1.5B"] in msg and r1.PATH_ENV in msg


def test_local_folder_errors(tmp_path, stand_in):
    with pytest.raises(FileNotFoundError, match="build_stand_in"):
        r1.load(path=tmp_path / "missing")
    (tmp_path / "config.json").write_text((stand_in / "config.json").read_text())
    with pytest.raises(ValueError, match="safetensors only"):
        r1.load(path=tmp_path)


def test_bitsandbytes_missing(stand_in, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` fail
    with pytest.raises(r1.BitsAndBytesUnavailableError) as err:
        r1.load(path=stand_in, quantize=True, verbose=False)
    assert "pip install bitsandbytes" in str(err.value) and "quantize=False" in str(err.value)


def test_bitsandbytes_without_cuda_support(stand_in, monkeypatch):
    import bitsandbytes  # noqa: F401  (imported for real before CUDA is faked below)

    # A GPU machine where bitsandbytes loaded its CPU library (the installed build here has no CUDA).
    monkeypatch.setattr(r1, "_bnb_backend", lambda: "CPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(r1.BitsAndBytesUnavailableError) as err:
        r1.load(path=stand_in, verbose=False)
    assert "pip install -U bitsandbytes" in str(err.value)


def test_cuda_requested_without_gpu(stand_in, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="T4 GPU"):
        r1.load(path=stand_in, device="cuda")


# --------------------------------------------------------------------------------------------------
# Chat template
# --------------------------------------------------------------------------------------------------


def test_chat_prompt_in_r1_format_for_both_template_variants(stand_in, stand_in_old_template):
    from transformers import AutoTokenizer

    new = AutoTokenizer.from_pretrained(stand_in)
    old = AutoTokenizer.from_pretrained(stand_in_old_template)
    a = r1.chat_prompt(new, "What is 2+3?")
    b = r1.chat_prompt(old, "What is 2+3?")
    expected = f"{r1.BOS}{r1.USER}What is 2+3?{r1.ASSISTANT}<think>\n"
    assert a.text == b.text == expected
    assert a.template_opened_think and not b.template_opened_think


def test_chat_history_drops_earlier_thinking_and_refuses_system(lm):
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nsecret musing\n</think>\n\nHello!"},
    ]
    text = r1.chat_prompt(lm.tokenizer, "And now?", history).text
    assert "secret musing" not in text and "\n\nHello!" + r1.EOS in text
    assert text.endswith(f"{r1.USER}And now?{r1.ASSISTANT}<think>\n")
    with pytest.raises(ValueError, match="without a system prompt"):
        r1.chat_prompt(lm.tokenizer, "x", [{"role": "system", "content": "be brief"}])
    with pytest.raises(ValueError, match="non-empty"):
        r1.chat_prompt(lm.tokenizer, "  ")


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
    q = r1.math_question("What is 1+1? ")
    assert (
        q == "What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}."
    )


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


def test_greedy_chat_matches_a_manual_argmax_loop(lm):
    c = r1.chat(lm, "What is 2+3?", max_new_tokens=12, temperature=0)
    ids = c.prompt_ids.clone()
    for _ in range(12):
        nxt = lm.model(ids[None]).logits[0, -1].argmax()
        ids = torch.cat([ids, nxt[None]])
        if nxt.item() == lm.tokenizer.eos_token_id:
            break
    assert torch.equal(c.completion_ids, ids[len(c.prompt_ids) :])
    assert c.text == lm.tokenizer.decode(c.completion_ids, skip_special_tokens=True)


def test_chat_is_seeded(lm):
    a = r1.chat(lm, "Hello", max_new_tokens=16, seed=1)
    b = r1.chat(lm, "Hello", max_new_tokens=16, seed=1)
    c = r1.chat(lm, "Hello", max_new_tokens=16, seed=2)
    assert a.text == b.text and not torch.equal(a.completion_ids, c.completion_ids)


def test_stream_yields_the_same_text_as_chat(lm):
    pieces = list(r1.stream(lm, "What is 2+3?", max_new_tokens=20, seed=3))
    assert len(pieces) > 1
    assert "".join(pieces) == r1.chat(lm, "What is 2+3?", max_new_tokens=20, seed=3).text


def test_stream_chat_calls_back_with_growing_text(lm):
    seen: list[str] = []
    c = r1.stream_chat(lm, "Hi", on_text=seen.append, max_new_tokens=15, seed=4)
    assert seen and seen[-1] == c.text
    assert all(seen[i + 1].startswith(seen[i]) for i in range(len(seen) - 1))
    assert torch.equal(c.completion_ids, r1.chat(lm, "Hi", 15, seed=4).completion_ids)


def test_stream_reraises_errors_from_the_generation_thread(lm, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("generation exploded")

    monkeypatch.setattr(lm.model, "generate", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        list(r1.stream(lm, "Hi", max_new_tokens=5))


def test_sample_batches_several_completions_per_prompt(lm):
    out = r1.sample(lm, ["What is 2+3?", "How many primes are below 10?"], n=3, max_new_tokens=10)
    assert [len(row) for row in out] == [3, 3]
    pad = lm.tokenizer.pad_token_id
    for row, q in zip(out, ["What is 2+3?", "How many primes are below 10?"]):
        for c in row:
            assert q in c.prompt and pad not in c.prompt_ids.tolist()
            assert 1 <= len(c.completion_ids) <= 10 and pad not in c.completion_ids.tolist()
    assert len({tuple(c.completion_ids.tolist()) for c in out[0]}) > 1  # samples differ
    # The left-padded shorter prompt gives the same greedy reply as on its own.
    alone = r1.chat(lm, "What is 2+3?", max_new_tokens=8, temperature=0)
    batched = r1.sample(lm, ["What is 2+3?", "How many primes are below 10?"], 1, 8, 0)
    assert torch.equal(batched[0][0].completion_ids, alone.completion_ids)


def test_sampling_argument_errors(lm):
    with pytest.raises(ValueError, match="max_new_tokens"):
        r1.chat(lm, "x", max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature > 0"):
        r1.sample(lm, "x", n=2, temperature=0)
    with pytest.raises(ValueError, match="temperature=0.6"):
        r1.chat(lm, "x", top_p=1.5)


# --------------------------------------------------------------------------------------------------
# Thinking budget
# --------------------------------------------------------------------------------------------------


def test_thinking_budget_respects_the_budget(lm):
    problems = math_problems(per_kind=1)[:4]
    res = r1.thinking_budget_run(lm, problems, [0, 6], max_answer_tokens=6, progress=False)
    assert len(res) == 8
    zero = [r for r in res if r.budget == 0]
    six = [r for r in res if r.budget == 6]
    assert all(r.thinking_tokens == 0 and not r.closed_by_model for r in zero)
    assert all(0 <= r.thinking_tokens <= 6 for r in six)
    assert all(r.correct == (r.predicted is not None and r.predicted == r.expected) for r in res)
    summary = r1.budget_summary(res)
    assert [row["budget"] for row in summary] == [0, 6]
    assert summary[1]["mean_thinking_tokens"] == sum(r.thinking_tokens for r in six) / 4
    with pytest.raises(ValueError, match="budget"):
        r1.answer_with_budget(lm, problems, -1)


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
    res = r1.answer_with_budget(lm, problems, budget=4)
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


def test_stand_in_is_deterministic(tmp_path, stand_in):
    again = r1.build_stand_in(tmp_path / "again", seed=0)
    assert (again / "model.safetensors").read_bytes() == (
        stand_in / "model.safetensors"
    ).read_bytes()
    other = r1.build_stand_in(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (
        stand_in / "model.safetensors"
    ).read_bytes()


def test_stand_in_with_a_given_config(tmp_path):
    from transformers import Qwen2Config

    cfg = Qwen2Config(
        vocab_size=1000,  # larger than the tokenizer, as in the real model (151,936 vs ~151,665)
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    )
    folder = r1.build_stand_in(tmp_path / "custom", config=cfg)
    loaded = r1.load(path=folder, verbose=False)
    assert loaded.model.config.vocab_size == 1000 and loaded.model.config.hidden_size == 32
    assert loaded.model.config.eos_token_id == loaded.tokenizer.eos_token_id
    assert "custom shape" in loaded.name
    out = r1.sample(loaded, "Hi", n=2, max_new_tokens=6)  # ids past the tokenizer decode to ""
    assert len(out[0]) == 2
    with pytest.raises(ValueError, match="vocabulary of at least"):
        r1.build_stand_in(tmp_path / "tiny_vocab", config=Qwen2Config(vocab_size=10))


def test_fitting_the_format_lowers_the_loss(lm):
    import copy

    model = copy.deepcopy(lm.model)
    losses = r1._fit_format(model, lm.tokenizer, steps=8, seed=0).series("loss")[1]
    assert len(losses) == 8 and losses[-1] < losses[0]


def test_param_count_counts_packed_4bit_weights(stand_in, lm):
    q = r1.load(path=stand_in, quantize=True, verbose=False)
    assert r1.param_count(q.model) == r1.param_count(lm.model)
    assert r1.param_count(lm.model) == sum(p.numel() for p in lm.model.parameters())


@pytest.mark.gpu
def test_load_4bit_on_gpu(stand_in):
    q = r1.load(path=stand_in, verbose=False)
    assert q.quantized and q.device.type == "cuda"
    assert q.dtype == r1.compute_dtype()
    c = r1.chat(q, "What is 2+3?", max_new_tokens=8)
    assert len(c.completion_ids) >= 1


@pytest.mark.gpu
def test_static_cache_paths_on_gpu(stand_in):
    """Streaming, batched sampling and the thinking budget with the CUDA decoding settings."""
    q = r1.load(path=stand_in, verbose=False)
    kw = r1.sampling_kwargs(q, 8)
    assert kw["cache_implementation"] == "static"
    ids: list[int] = []
    text = "".join(r1.stream(q, "What is 2+3?", max_new_tokens=12, ids_out=ids))
    assert 1 <= len(ids) <= 12 and isinstance(text, str)
    greedy = [
        r1.sample(q, "What is 2+3?", n=2, max_new_tokens=10, temperature=0)[0] for _ in range(2)
    ]
    first = greedy[0][0].completion_ids
    assert torch.equal(first, greedy[1][0].completion_ids)
    assert torch.equal(first, greedy[0][1].completion_ids)
    problems = math_problems(per_kind=1, seed=0)[:3]
    answers = r1.answer_with_budget(q, problems, budget=6, max_answer_tokens=6)
    assert len(answers) == 3


# --------------------------------------------------------------------------------------------------
# The hub and CUDA branches of load, with from_pretrained recorded instead of downloading
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def recorded_hub(stand_in, monkeypatch):
    """Make from_pretrained record its arguments and hand back the stand-in (no network)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    calls: dict[str, dict] = {}
    real_tok, real_model = AutoTokenizer.from_pretrained, AutoModelForCausalLM.from_pretrained

    def tok(name, **kw):
        calls["tokenizer"] = {"name": name, **kw}
        return real_tok(stand_in)

    def model(name, **kw):
        calls["model"] = {"name": name, **kw}
        return real_model(stand_in)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", tok)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", model)
    return calls


def test_hub_branch_pins_the_revision_and_reads_safetensors_only(recorded_hub, tmp_path):
    loaded = r1.load(
        "R1-Distill-Qwen-7B",
        device="cpu",
        free_memory_bytes=1e12,
        offline=True,
        cache_dir=tmp_path,
        verbose=False,
    )
    m, t = recorded_hub["model"], recorded_hub["tokenizer"]
    assert m["name"] == t["name"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert m["revision"] == t["revision"] == r1.REVISIONS["R1-Distill-Qwen-7B"]
    assert m["use_safetensors"] is True and m["trust_remote_code"] is False
    assert t["trust_remote_code"] is False and m["local_files_only"] is True
    assert m["dtype"] == torch.float32 and "quantization_config" not in m
    assert loaded.name == "R1-Distill-Qwen-7B" and "No CUDA GPU" in loaded.notice


def test_cuda_branch_on_a_t4_asks_for_nf4_with_fp16(recorded_hub, monkeypatch):
    import bitsandbytes  # noqa: F401  (imported for real before CUDA is faked below)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))  # a T4
    monkeypatch.setattr(r1, "_bnb_backend", lambda: "CUDA")
    monkeypatch.setattr(r1, "free_memory", lambda device: 15e9)
    loaded = r1.load(verbose=False)
    m = recorded_hub["model"]
    q = m["quantization_config"]
    assert q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.float16 and m["dtype"] == torch.float16
    assert m["device_map"] == {"": 0} and m["revision"] == r1.REVISIONS[r1.DEFAULT_MODEL]
    assert loaded.quantized and loaded.device.type == "cuda" and loaded.notice == ""
