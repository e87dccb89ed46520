"""course_lib.formats: R1's tags written and read in one place; the strict check on hand-made cases,
on the inputs where the course's two old copies disagreed, and on random text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.formats import (
    TAGS,
    THINK,
    THINK_END,
    Thought,
    check_answer,
    extract_answer,
    extract_boxed,
    format_target,
    is_well_formed,
    split_thinking,
)

GOOD = "<think>12+30=42</think><answer>42</answer>"


def test_format_target_extract_and_check():
    full = format_target("132", "7+5=12;4+8+1=13")
    assert full == "<think>7+5=12;4+8+1=13</think><answer>132</answer>"
    assert format_target("132") == "<answer>132</answer>"
    assert format_target("abc", "") == "<think></think><answer>abc</answer>"  # a traceless task
    assert extract_answer(full) == "132" and check_answer(full, "132")
    assert not check_answer(full, "131")
    assert extract_answer("<think>no answer") is None and not check_answer("132", "132")
    assert extract_answer("<answer>1</answer><answer> 2 </answer>") == "2"
    assert not check_answer("<answer>132", "132")  # an unclosed tag does not count


# (completion, well formed?). The first block is where distill.format_ok (False) and
# grpo.strict_format_reward (1.0) used to disagree; see is_well_formed's docstring for the choice.
@pytest.mark.parametrize(
    "completion, ok",
    [
        (" <think>a</think> <answer>1</answer> ", True),  # white space around the blocks
        ("<think>a</think>\n<answer>1</answer>\n", True),
        ("<think> </think><answer>1</answer>", False),  # nothing inside <think>
        ("<think></think><answer>1</answer>", False),
        # where the two old copies agreed
        (GOOD, True),
        ("<answer>42</answer>", False),  # no thinking
        ("<think>12+30=42</think>", False),  # no answer
        (GOOD + "junk", False),  # text after
        ("x" + GOOD, False),  # text before
        ("<think>a</think>b<answer>42</answer>", False),  # text between
        ("<think>a</think><answer> </answer>", False),  # empty answer
        ("<think>a<think>b</think><answer>42</answer>", False),  # nested tag
        ("<think>a</think><answer>4<answer>2</answer>", False),
        (GOOD + "<answer>8</answer>", False),  # a repeated block
        ("<answer>42</answer><think>a</think>", False),  # wrong order
        ("<think>a</think><answer>42", False),  # unclosed answer
        ("", False),
        (None, False),
    ],
)
def test_is_well_formed_on_hand_made_cases(completion, ok):
    assert is_well_formed(completion) is ok


_pieces = st.lists(
    st.one_of(st.sampled_from([*TAGS, "7", " ", "\n", "<", ">", "/"]), st.text(max_size=5)),
    max_size=12,
)
_texts = st.one_of(st.text(), _pieces.map("".join))
_tag_free = st.text(max_size=20).filter(
    lambda s: not any(t in s for t in TAGS) and "<" not in s and ">" not in s
)


@settings(max_examples=300)
@given(text=_texts)
def test_is_well_formed_never_raises_and_needs_each_tag_once(text):
    ok = is_well_formed(text)
    assert ok in (True, False)
    if any(text.count(t) != 1 for t in TAGS):
        assert not ok


@settings(max_examples=200)
@given(
    think=_tag_free.filter(lambda s: s.strip() != ""),
    answer=_tag_free.filter(lambda s: s.strip() != ""),
    order=st.permutations(range(4)),
    repeat=st.sampled_from(TAGS),
    space=st.sampled_from(["", " ", "\n", " \n "]),
)
def test_is_well_formed_accepts_only_the_ordered_single_tags(think, answer, order, repeat, space):
    good = space + format_target(answer, think).replace(THINK_END, THINK_END + space) + space
    assert is_well_formed(good)
    assert not is_well_formed(good + repeat)  # a repeated tag
    assert not is_well_formed(repeat + good)
    t = [TAGS[i] for i in order]
    shuffled = t[0] + "x" + t[1] + t[2] + "7" + t[3]
    assert is_well_formed(shuffled) == (list(order) == [0, 1, 2, 3])


# ----- a real distill's reply ----------------------------------------------------------------------


def test_split_thinking_examples():
    s = split_thinking
    assert s("I add.\n</think>\n\nIt is 5.") == Thought("I add.", "It is 5.", True)
    assert s("<think>I add.</think>It is 5.", False) == Thought("I add.", "It is 5.", True)
    assert s("still thinking") == Thought("still thinking", "", False)
    assert s("just an answer", think_open_in_prompt=False) == Thought("", "just an answer", False)
    assert s("a</think>b</think>c") == Thought("ab", "c", True)  # answer after the last tag
    assert s("<think><think>x") == Thought("x", "", False)
    assert s("<thi<think>nk>x</think>y") == Thought("x", "y", True)


TAGLESS = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=40)


@given(st.text(max_size=80), st.booleans())
def test_split_thinking_never_leaks_tags(text, opened):
    t = split_thinking(text, opened)
    for part in (t.thinking, t.answer):
        assert THINK not in part and THINK_END not in part
        assert part == part.strip()
    assert t.finished == (THINK_END in text)


@given(TAGLESS, TAGLESS, st.integers(0, 3), st.integers(1, 3))
def test_split_thinking_recovers_parts_with_repeated_tags(a, b, opens, closes):
    text = THINK * opens + a + THINK_END * closes + b
    t = split_thinking(text, think_open_in_prompt=opens == 0)
    assert (t.thinking, t.answer, t.finished) == (a.strip(), b.strip(), True)


@given(TAGLESS, st.booleans())
def test_split_thinking_without_tags(text, opened):
    t = split_thinking(text, opened)
    if opened:
        assert (t.thinking, t.answer) == (text.strip(), "")
    else:
        assert (t.thinking, t.answer) == ("", text.strip())


def test_extract_boxed():
    assert extract_boxed("so \\boxed{42}.") == "42"
    assert extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{7} and \\boxed{unclosed") == "7"
    assert extract_boxed("no box") is None


# ----- grading that cannot be fooled or hung ---------------------------------------------------


@pytest.mark.parametrize(
    "completion",
    [
        "<think>it is <answer>7</answer></think>",  # inside the thinking
        "<think>it is <answer>7</answer></think><answer>8</answer>",
        "<think>it is <answer>7</answer>",  # thinking that never closed
        "<think>a</think><answer>8</answer><think><answer>7</answer>",  # a new thinking block
        "<think>a</think><think>b<answer>7</answer></think>",
    ],
)
def test_no_credit_for_an_answer_inside_the_thinking(completion):
    assert not check_answer(completion, "7")


def test_the_answer_after_the_thinking_is_graded():
    assert check_answer("<think>not <answer>8</answer></think> <answer>7</answer>", "7")
    assert check_answer("a prompt opened the thinking</think><answer>7</answer>", "7")
    assert check_answer("<answer>7</answer><think>afterthought", "7")
    assert check_answer("<answer>7</answer>", "7")  # answers only: no thinking at all


def test_check_answer_refuses_an_empty_reference():
    for bad in ("", "  ", None, 7.0):
        with pytest.raises(ValueError, match="reference answer"):
            check_answer("<answer></answer>", bad)
    assert check_answer("<answer>7</answer>", 7)


def _regex_answer(text: str) -> str | None:
    """The extraction the course used before: a lazy regular expression (quadratic on some text)."""
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    return found[-1].strip() if found else None


def _after_thinking(text: str) -> str:
    """The graded part, as the docstring of check_answer says it: after the last </think>, up to
    a <think> that opens after it (written independently of the library's graded_part)."""
    head, sep, tail = text.rpartition(THINK_END)
    rest = tail if sep else text
    return rest.split(THINK, 1)[0]


_answer_pieces = st.lists(
    st.sampled_from([*TAGS, "<answer>", "</answer>", "7", " 7 ", "x", "<", "answer>", "\n"]),
    max_size=16,
).map("".join)


@settings(max_examples=500)
@given(st.one_of(_answer_pieces, _texts))
def test_extract_answer_reads_the_same_pairs_as_the_regex(text):
    assert extract_answer(text) == _regex_answer(_after_thinking(text))


# Adversarial text: long and repetitive, the shapes that made the regular expression quadratic.
ADVERSARIAL = {
    "open answers": "<answer>5" * 100_000,
    "open answers, closed once": "<answer>5" * 100_000 + "</answer>",
    "closes only": "</answer>" * 100_000,
    "nested thinks": "<think>" * 50_000 + "<answer>7</answer>" + "</think>" * 50_000,
    "open boxes": "\\boxed{" * 100_000,
    "half tags": "<thi" * 50_000 + "<think>" + "nk>" * 50_000,
}


def test_extraction_on_adversarial_text_is_right():
    a = ADVERSARIAL
    assert extract_answer(a["open answers"]) is None
    assert extract_answer(a["open answers, closed once"]) == ("5<answer>" * 100_000)[:-8].strip()
    assert extract_answer(a["closes only"]) is None
    assert extract_answer(a["nested thinks"]) is None  # the answer is inside the thinking
    assert extract_boxed(a["open boxes"]) is None
    assert extract_boxed(a["open boxes"] + "}") == ""
    t = split_thinking(a["half tags"] + "x</think>y")
    assert (t.thinking, t.answer) == ("x", "y")
    assert not is_well_formed(a["open answers"])


def _old_boxed(text: str) -> str | None:
    """The extraction the course used before: from each start, scan forward (quadratic)."""
    start = text.rfind("\\boxed{")
    while start >= 0:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{") : i - 1].strip()
        start = text.rfind("\\boxed{", 0, start)
    return None


@settings(max_examples=400)
@given(st.lists(st.sampled_from(["\\boxed{", "{", "}", "7", " ", "\\boxed", "x"]), max_size=16))
def test_extract_boxed_agrees_with_the_scan_from_every_start(pieces):
    text = "".join(pieces)
    assert extract_boxed(text) == _old_boxed(text)


def _old_strip_tags(text: str) -> str:
    while THINK in text or THINK_END in text:
        text = text.replace(THINK, "").replace(THINK_END, "")
    return text


@settings(max_examples=400)
@given(
    st.lists(
        st.sampled_from([THINK, THINK_END, "<", "/", "thi", "nk>", "<thi", "x", ">"]), max_size=16
    )
)
def test_split_thinking_removes_tags_as_repeated_replacing_would(pieces):
    text = "".join(pieces)
    t = split_thinking(text + THINK_END + "y", think_open_in_prompt=True)
    assert t.thinking == _old_strip_tags(text).strip()
