"""course_lib.data: packed next-token windows, the one SFT-row builder, left padding."""

import pytest
import torch

from course_lib.data import (
    IGNORE,
    fixed_batches,
    left_pad,
    pack_examples,
    sample_batch,
    sft_rows,
    sft_rows_from_ids,
)
from course_lib.formats import format_target
from course_lib.tasks import arithmetic, domain_mixture
from course_lib.tokenizer import default_tokenizer

TOK = default_tokenizer()


def test_pack_and_sample_are_next_token_windows():
    stream = pack_examples(domain_mixture(50, 0))
    assert stream.tokens[0] == TOK.bos_id and len(stream.domains) == len(stream)
    b = sample_batch(stream, 4, 16, torch.Generator().manual_seed(0))
    assert b.x.shape == b.y.shape == b.domains.shape == (4, 16)
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    vb = fixed_batches(stream, 2, 4, 16, seed=5)
    assert torch.equal(vb[0].x, fixed_batches(stream, 2, 4, 16, seed=5)[0].x)
    with pytest.raises(ValueError, match="seq_len"):
        sample_batch(stream, 1, len(stream))


def test_sft_rows_mask_prompt_and_padding():
    rows = sft_rows(
        TOK, ["12+3=", "1+1="], ["<answer>15</answer>", "<think>1+1=2</think><answer>2</answer>"]
    )
    assert rows.input_ids.shape == rows.labels.shape
    # row 0: <bos>12+3=<answer>15</answer><eos>, inputs drop the last token, labels the first
    full = TOK.encode("12+3=<answer>15</answer>", add_bos=True, add_eos=True)
    n = len(full) - 1
    assert rows.input_ids[0, :n].tolist() == full[:-1]
    assert (rows.input_ids[0, n:] == TOK.pad_id).all()
    labels = rows.labels[0]
    n_prompt = len(TOK.encode("12+3=", add_bos=True))
    assert (labels[: n_prompt - 1] == IGNORE).all()
    assert labels[n_prompt - 1 : n].tolist() == full[n_prompt:]  # label t is token t + 1
    assert TOK.decode(labels[n_prompt - 1 : n].tolist()) == "<answer>15</answer><eos>"
    assert (labels[n:] == IGNORE).all()
    # row 1 is the longest: no padding, the trace is part of the target
    kept = rows.labels[1][rows.labels[1] != IGNORE].tolist()
    assert TOK.decode(kept) == "<think>1+1=2</think><answer>2</answer><eos>"
    assert len(rows.subset(1)) == 1
    with pytest.raises(ValueError, match="max_seq_len"):
        sft_rows(TOK, ["12+3="], ["<answer>15</answer>"], max_len=5)
    with pytest.raises(ValueError, match="1:1"):
        sft_rows(TOK, ["a"], [])
    with pytest.raises(ValueError, match="at least one"):
        sft_rows_from_ids([], TOK.pad_id)


def test_sft_rows_of_the_course_format_learn_the_whole_target():
    exs = arithmetic(3, seed=0, digits=(1, 3))
    rows = sft_rows(TOK, [e.prompt for e in exs], [format_target(e.answer, e.trace) for e in exs])
    for i, ex in enumerate(exs):
        kept = rows.labels[i][rows.labels[i] != IGNORE].tolist()
        assert TOK.decode(kept) == f"<think>{ex.trace}</think><answer>{ex.answer}</answer><eos>"


def test_sft_batches_are_seeded_and_drop_padding_columns():
    rows = sft_rows(
        TOK, ["1+1=", "12+34=", "5+5="], ["<answer>2</answer>", "<answer>46</answer>", "x"]
    )
    a, b = rows.batches(2, seed=3), rows.batches(2, seed=3)
    for step in range(4):
        ba, bb = a(step), b(step)
        assert torch.equal(ba.x, bb.x) and torch.equal(ba.y, bb.y)
        # the last column holds a target in some row: nothing but padding was dropped
        assert (ba.y[:, -1] != IGNORE).any()
        longest = max(int((rows.labels[i] != IGNORE).nonzero().max()) for i in range(3))
        assert ba.x.shape[1] <= longest + 1
    with pytest.raises(ValueError, match="batch_size"):
        rows.batches(0)


def test_left_pad():
    ids, mask = left_pad([[4, 5, 6], [7]], pad_id=0)
    assert ids.tolist() == [[4, 5, 6], [0, 0, 7]]
    assert mask.tolist() == [[True, True, True], [False, False, True]]
    ids, mask = left_pad([torch.tensor([1, 2]), torch.tensor([3])], pad_id=9)  # tensors work too
    assert ids.tolist() == [[1, 2], [9, 3]] and mask.dtype == torch.bool
