"""course_lib.formats: R1's tags written and read in one place; the strict check on hand-made cases,
on the inputs where the course's two old copies disagreed, and on random text."""

from __future__ import annotations

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
