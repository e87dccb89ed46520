import pytest

from course_lib.tokenizer import SPECIAL_TOKENS, CharTokenizer, default_tokenizer


def test_round_trip_and_specials_are_single_ids():
    tok = default_tokenizer()
    text = "12+34=<think>2+4=6;1+3=4</think><answer>46</answer>"
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids[1:-1]) == text
    for s in SPECIAL_TOKENS:
        assert len(tok.encode(s)) == 1
    assert tok.encode("<think>") == [tok.special_ids["<think>"]]
    assert tok.encode("</answer>") == [tok.special_ids["</answer>"]]
    # a lone "<" stays a character
    assert tok.decode(tok.encode("a<b")) == "a<b" and len(tok.encode("a<b")) == 3


def test_ids_are_distinct_and_skip_special():
    tok = default_tokenizer()
    ids = {tok.pad_id, tok.bos_id, tok.eos_id, *tok.special_ids.values()}
    assert len(ids) == len(SPECIAL_TOKENS) == 7 and max(ids) < tok.vocab_size
    assert tok.decode(tok.encode("<think>ab</think><answer>c</answer>"), skip_special=True) == "abc"
    assert default_tokenizer() is tok


def test_bad_input_explains():
    tok = default_tokenizer()
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("café")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="repeated"):
        CharTokenizer(chars="aa")
