"""course_lib.languages: the two scripts, R1's language-consistency score and the mixed corpus."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import grpo, languages
from course_lib.formats import TAGS
from course_lib.languages import language_consistency, language_reward, to_script
from course_lib.students import needs_carry
from course_lib.tasks import Example, addition_trace

CAREFUL = "<think>7+5=12;4+8+1=13</think><answer>132</answer>"
CAREFUL_LETTERS = "<think>h+f=bc;e+i+b=bd</think><answer>bdc</answer>"


def test_to_script_by_hand_and_back():
    assert to_script("47+85=", "letters") == "eh+if="
    assert to_script("eh+if=", "digits") == "47+85="
    assert to_script(CAREFUL, "letters") == CAREFUL_LETTERS  # the tags are not translated
    assert to_script(CAREFUL_LETTERS, "digits") == CAREFUL
    assert to_script("tr:ehc=", "digits") == "tr:472="  # 't' and 'r' are not in the alphabet
    with pytest.raises(ValueError, match="script"):
        to_script("1", "roman")
    with pytest.raises(ValueError, match="string"):
        to_script(12, "digits")


def test_words_scripts_and_the_question_language():
    assert languages.words("h+5=bc;4+8+1=13") == ["h", "5", "bc", "4", "8", "1", "13"]
    assert languages.words("<answer>ae</answer>") == ["ae"]  # the tags' letters are no words
    assert [languages.word_script(w) for w in ("12", "bc", "1c")] == ["digits", "letters", "mixed"]
    with pytest.raises(ValueError, match="not a word"):
        languages.word_script("+")
    assert languages.script_of("47+85=") == "digits" and languages.script_of("eh+if=") == "letters"
    for bad in ("e7+85=", "4c+85=", "+="):
        with pytest.raises(ValueError, match="one script"):
            languages.script_of(bad)
    assert languages.other("digits") == "letters" and languages.other("letters") == "digits"


@pytest.mark.parametrize(
    "completion, target, expected",
    [
        (CAREFUL, "digits", 1.0),
        (CAREFUL_LETTERS, "letters", 1.0),
        (CAREFUL_LETTERS, "digits", 0.0),
        # 3 of the 7 words of the thinking are in letters; the answer's word is not counted
        ("<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>", "letters", 3 / 7),
        ("<think>h+f=bc;4+8+1=13</think><answer>132</answer>", "digits", 4 / 7),
        # a mixed word is not in the target language
        ("<think>1c+f=bc</think><answer>bdc</answer>", "letters", 2 / 3),
        ("<think>h+f=bc;e+i+b=bd", "letters", 1.0),  # unclosed thinking: to the end of the text
        ("<answer>132</answer>", "digits", 0.0),  # no thinking: nothing readable to pay for
        ("<think>;;</think><answer>132</answer>", "digits", 0.0),  # thinking without a word
        ("7+5=12 so 132", "digits", 0.0),  # reasoning outside the tags is not a chain of thought
    ],
)
def test_language_consistency_by_hand(completion, target, expected):
    assert language_consistency(completion, target) == pytest.approx(expected)


def test_language_reward_targets_the_question_language():
    mixed = "<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>"
    assert language_reward("eh+if=", mixed, "bdc") == pytest.approx(3 / 7)
    assert language_reward("47+85=", mixed, "132") == pytest.approx(4 / 7)
    assert language_reward("e7+85=", CAREFUL, "132") == 0.0  # no single question language
    assert language_reward("47+85=", None, "132") == 0.0


_TEXT = st.lists(
    st.sampled_from(list("0123456789abcdefghijxyz+=;<>/ ") + list(TAGS)), max_size=60
).map("".join)


@settings(max_examples=400, deadline=None)
@given(completion=_TEXT, prompt=st.sampled_from(["47+85=", "eh+if=", "4c+1=", "tr:12=", ""]))
def test_language_reward_is_a_share_and_never_raises(completion, prompt):
    """Fuzzed like the other rewards: any text scores in [0, 1]; the two languages' shares and the
    mixed words' share add up to 1 whenever the thinking has a word."""
    value = language_reward(prompt, completion)
    assert 0.0 <= value <= 1.0
    in_digits, in_letters = (language_consistency(completion, s) for s in ("digits", "letters"))
    thinking = languages.thinking_of(completion)
    found = languages.words(thinking) if thinking is not None else []
    mixed = sum(languages.word_script(w) == "mixed" for w in found)
    assert in_digits + in_letters + (mixed / len(found) if found else 0.0) == pytest.approx(
        1.0 if found else 0.0
    )


@settings(max_examples=200, deadline=None)
@given(a=st.integers(10, 99), b=st.integers(10, 99), script=st.sampled_from(["digits", "letters"]))
def test_a_careful_answer_in_the_question_language_earns_every_reward(a, b, script):
    ex = languages.translate_example(
        Example(f"{a}+{b}=", *addition_trace([a, b]), "arithmetic"), script
    )
    text = f"<think>{ex.trace}</think><answer>{ex.answer}</answer>"
    assert language_reward(ex.prompt, text) == 1.0
    assert grpo.accuracy_reward(ex.prompt, text, ex.answer) == 1.0
    assert grpo.strict_format_reward(ex.prompt, text) == 1.0
    assert int(to_script(ex.answer, "digits")) == a + b


def test_bilingual_additions_are_seeded_and_written_in_one_script():
    exs = languages.bilingual_additions(400, seed=7)
    assert exs == languages.bilingual_additions(400, seed=7)
    assert exs != languages.bilingual_additions(400, seed=8)
    share = sum(languages.script_of(e.prompt) == "letters" for e in exs) / len(exs)
    assert 0.4 < share < 0.6
    for e in exs:
        script = languages.script_of(e.prompt)
        assert {languages.word_script(w) for w in languages.words(e.trace + e.answer)} == {script}
        terms = [int(t) for t in to_script(e.prompt, "digits").rstrip("=").split("+")]
        assert int(to_script(e.answer, "digits")) == sum(terms)
    carries = languages.bilingual_additions(200, seed=1, carry_only=True)
    assert all(needs_carry(to_script(e.prompt, "digits")) for e in carries)
    digits_only = languages.bilingual_additions(50, seed=1, letters_share=0.0)
    assert {languages.script_of(e.prompt) for e in digits_only} == {"digits"}
    with pytest.raises(ValueError, match="letters_share"):
        languages.bilingual_additions(3, letters_share=1.5)


def test_mix_steps_at_the_extremes_and_in_between():
    rng = random.Random(0)
    assert languages.mix_steps(CAREFUL, "letters", 1.0, rng) == CAREFUL_LETTERS
    # p = 0: every step in the other language, the answer still in the question's
    assert (
        languages.mix_steps(CAREFUL, "letters", 0.0, rng)
        == "<think>7+5=12;4+8+1=13</think><answer>bdc</answer>"
    )
    texts = [languages.mix_steps(CAREFUL, "letters", 0.3, random.Random(i)) for i in range(400)]
    assert all(to_script(t, "digits") == CAREFUL for t in texts)  # only the spelling changes
    share = sum(language_consistency(t, "letters") for t in texts) / len(texts)
    assert 0.24 < share < 0.36  # words per step differ (3 and 4), so only about 0.3
    with pytest.raises(ValueError, match="p_target"):
        languages.mix_steps(CAREFUL, "letters", 1.2, rng)


def test_mixed_students_and_corpus():
    ex = languages.translate_example(Example("47+85=", "", "132", "arithmetic"), "letters")
    rng = random.Random(0)
    assert languages.mixed_student_text(ex, "careful", 1.0, rng) == CAREFUL_LETTERS
    assert (
        languages.mixed_student_text(ex, "careless", 1.0, rng)
        == "<think>h+f=bc;e+i=bc</think><answer>bcc</answer>"
    )
    assert languages.mixed_student_text(ex, "lazy", 0.0, rng) == "<answer>bcc"
    assert languages.mixed_student_text(ex, "plain", 0.0, rng) == "7+5=12;4+8+1=13 so bdc"
    exs = languages.bilingual_additions(600, seed=3)
    corpus = languages.mixed_corpus(exs, {"careful": 1.0}, 0.5, seed=1)
    assert corpus == languages.mixed_corpus(exs, {"careful": 1.0}, 0.5, seed=1)
    assert [p for p, _ in corpus] == [e.prompt for e in exs]
    consistency = [language_reward(p, t) for p, t in corpus]
    assert 0.45 < sum(consistency) / len(consistency) < 0.55
    assert 0.3 < sum(0 < c < 1 for c in consistency) / len(consistency)  # mixed within a trace
    for bad in ({"sloppy": 1.0}, {}, {"careful": -1.0}):
        with pytest.raises(ValueError, match="mix"):
            languages.mixed_corpus(exs, bad, 0.5)


def test_translations():
    exs = languages.translations(300, seed=4)
    assert exs == languages.translations(300, seed=4)
    for e in exs:
        word = e.prompt[len(languages.TRANSLATE) : -1]
        assert e.answer == to_script(word, languages.other(languages.script_of(word)))
        assert e.trace == ";".join(f"{a}={b}" for a, b in zip(word, e.answer))
        assert 1 <= len(word) <= 3 and e.domain == "translation"
    assert {languages.script_of(e.prompt[3:]) for e in exs} == {"digits", "letters"}
    with pytest.raises(ValueError, match="digits"):
        languages.translations(2, digits=(0, 2))
