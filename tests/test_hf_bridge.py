"""course_lib.hf_bridge (reference tests): our tokenizer and a dense TinySeek in transformers give
the same ids and logits; a reward in TRL's calling convention."""

import pytest
import torch

from course_lib import grpo, hf_bridge
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer

GOOD = "<think>3+4: 3+4=7</think><answer>7</answer>"


def test_hf_tokenizer_matches_ours_and_keeps_the_tags_when_decoding():
    ours = default_tokenizer()
    hf = hf_bridge.hf_tokenizer()
    text = "47+85=<think>7+5=12;4+8+1=13</think><answer>132</answer> so x"
    assert hf(text).input_ids == ours.encode(text, add_bos=True)
    ids = ours.encode(text, add_eos=True) + [ours.pad_id]
    assert hf.decode(ids, skip_special_tokens=True) == text  # TRL decodes this way
    assert len(hf) == ours.vocab_size and hf.pad_token_id == ours.pad_id


def test_to_llama_gives_the_same_logits():
    torch.manual_seed(0)
    model = TinySeek(
        TinySeekConfig(d_model=32, n_layers=2, n_heads=4, attention="gqa", n_kv_heads=2, d_ff=48)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)  # far from init, so a wrong mapping shows
    hf = hf_bridge.to_llama(model)
    x = torch.randint(0, model.config.vocab_size, (2, 17))
    torch.testing.assert_close(hf(x).logits, model(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="dense"):
        hf_bridge.to_llama(TinySeek(TinySeekConfig(d_model=32, n_heads=4, ffn="moe")))


def test_to_trl_reward_matches_the_trainer_calling_convention():
    fn = hf_bridge.to_trl_reward(grpo.strict_format_reward)
    assert fn.__name__ == "strict_format_reward"
    assert fn(
        prompts=["a", "b"], completions=[GOOD, "nope"], answer=["7", "7"], completion_ids=[[1], [2]]
    ) == [1.0, 0.0]
    chat = [[{"role": "assistant", "content": GOOD}]]
    fmt = hf_bridge.to_trl_reward(grpo.strict_format_reward, answer_column=None)
    assert fmt(prompts=[[{"role": "user", "content": "a"}]], completions=chat) == [1.0]


def test_to_trl_reward_refuses_a_dataset_without_answers():
    fn = hf_bridge.to_trl_reward(grpo.accuracy_reward)
    empty = "<think>x</think><answer></answer>"
    with pytest.raises(ValueError, match="'answer' column.*question"):
        fn(prompts=["a"], completions=[empty], question=["3+4"], trainer_state=None)
    with pytest.raises(ValueError, match="empty in row"):
        fn(prompts=["a", "b"], completions=[empty, GOOD], answer=["", "7"])
    named = hf_bridge.to_trl_reward(grpo.accuracy_reward, answer_column="solution")
    assert named(prompts=["a"], completions=[GOOD], solution=["7"]) == [1.0]
    with pytest.raises(ValueError, match="column name"):
        hf_bridge.to_trl_reward(grpo.accuracy_reward, answer_column="")


def test_to_trl_reward_refuses_lists_of_different_lengths():
    fn = hf_bridge.to_trl_reward(grpo.accuracy_reward)
    with pytest.raises(ValueError, match="3 answers for 2 completions"):
        fn(prompts=["a", "b"], completions=[GOOD, GOOD], answer=["7", "7", "7"])
    with pytest.raises(ValueError, match="1 prompts for 2 completions"):
        fn(prompts=["a"], completions=[GOOD, GOOD], answer=["7", "7"])
    with pytest.raises(ValueError, match="reward function"):
        hf_bridge.to_trl_reward("accuracy")


@pytest.mark.parametrize("call", ["hf_tokenizer", "to_llama", "to_trl_reward"])
def test_the_bridge_turns_hub_telemetry_off(call, monkeypatch):
    """TRL's trainers report their use through huggingface_hub's telemetry thread unless it is off."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _telemetry

    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = []
    monkeypatch.setattr(_telemetry, "_start_telemetry_thread", lambda: started.append(1))
    monkeypatch.setattr(_telemetry, "_TELEMETRY_QUEUE", _telemetry.Queue())
    args = {
        "hf_tokenizer": (),
        "to_llama": (TinySeek(TinySeekConfig(d_model=32, n_heads=4)),),
        "to_trl_reward": (grpo.accuracy_reward,),
    }[call]
    getattr(hf_bridge, call)(*args)
    _telemetry.send_telemetry("trl/GRPOTrainer", library_name="trl")  # what TRL's trainer calls
    assert started == [] and _telemetry._TELEMETRY_QUEUE.empty()
