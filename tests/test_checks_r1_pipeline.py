"""The notebook-06 checkers pass right answers and name each planted mistake."""

from __future__ import annotations

from collections import Counter

import pytest

from course_lib import languages
from course_lib.checks import r1_pipeline as checks
from course_lib.formats import check_answer, is_well_formed

# ---------------------------------------------------------------- 1. language consistency


def _consistency_right(completion, target):
    thinking = languages.thinking_of(completion)
    found = languages.words(thinking) if thinking is not None else []
    if not found:
        return 0.0
    return sum(languages.word_script(w) == target for w in found) / len(found)


def _consistency_with_answer(completion, target):
    found = languages.words(completion)
    return sum(languages.word_script(w) == target for w in found) / len(found)


def _consistency_characters(completion, target):
    chars = [c for c in languages.thinking_of(completion) if c.isalnum()]
    alphabet = languages.DIGITS if target == "digits" else languages.LETTERS
    return sum(c in alphabet for c in chars) / len(chars)


def _consistency_majority(completion, target):
    found = languages.words(languages.thinking_of(completion))
    counts = Counter(languages.word_script(w) for w in found)
    return max(counts.get("digits", 0), counts.get("letters", 0)) / len(found)


def _consistency_inverted(completion, target):
    return 1 - _consistency_right(completion, target)


def _consistency_mixed_counts(completion, target):
    found = languages.words(languages.thinking_of(completion))
    return sum(languages.word_script(w) != languages.other(target) for w in found) / len(found)


def _consistency_crashes(completion, target):
    found = languages.words(languages.thinking_of(completion))  # thinking_of is None: TypeError
    return sum(languages.word_script(w) == target for w in found) / len(found)


def _consistency_no_thinking_is_one(completion, target):
    thinking = languages.thinking_of(completion)
    return 1.0 if thinking is None else _consistency_right(completion, target)


@pytest.mark.parametrize(
    "bad, words",
    [
        (_consistency_with_answer, "answer's words"),
        (_consistency_characters, "characters"),
        (_consistency_majority, "most common"),
        (_consistency_inverted, "OTHER language"),
        (_consistency_mixed_counts, "mixes scripts"),
        (_consistency_crashes, "without thinking made your function raise"),
        (_consistency_no_thinking_is_one, "should score 0"),
        (lambda c, t: 0.5, "differ"),
        (lambda c, t: "all of it", "return a number"),
    ],
)
def test_language_consistency_checker_names_the_mistake(bad, words):
    result = checks.check_language_consistency(bad)
    assert not result and words in result.message, result.message


def test_language_consistency_checker_passes_the_right_one_and_the_library():
    assert checks.check_language_consistency(_consistency_right)
    assert checks.check_language_consistency(languages.language_consistency)


# ---------------------------------------------------------------- 2. rejection filter


def _keep_right(prompt, completion, answer):
    target = languages.script_of(prompt)
    return (
        check_answer(completion, answer)
        and is_well_formed(completion)
        and languages.language_consistency(completion, target) == 1.0
    )


def _keep_no_language(prompt, completion, answer):
    return check_answer(completion, answer) and is_well_formed(completion)


def _keep_no_answer(prompt, completion, answer):
    target = languages.script_of(prompt)
    return is_well_formed(completion) and languages.language_consistency(completion, target) == 1


def _keep_no_format(prompt, completion, answer):
    target = languages.script_of(prompt)
    return (
        check_answer(completion, answer) and languages.language_consistency(completion, target) == 1
    )


def _keep_or(prompt, completion, answer):
    target = languages.script_of(prompt)
    return (
        check_answer(completion, answer)
        or is_well_formed(completion)
        or languages.language_consistency(completion, target) == 1.0
    )


def _keep_digits_only(prompt, completion, answer):
    return (
        check_answer(completion, answer)
        and is_well_formed(completion)
        and languages.language_consistency(completion, "digits") == 1.0
    )


def _keep_threshold(prompt, completion, answer):
    target = languages.script_of(prompt)
    return _keep_no_language(prompt, completion, answer) and (
        languages.language_consistency(completion, target) >= 0.5
    )


@pytest.mark.parametrize(
    "bad, words",
    [
        (_keep_no_language, "mixes languages"),
        (_keep_threshold, "mixes languages"),
        (_keep_no_answer, "wrong answer"),
        (_keep_no_format, "badly formatted"),
        (_keep_or, "'or'"),
        (_keep_digits_only, "letters"),
        (lambda p, c, a: False, "rejected a correct"),
        (lambda p, c, a: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_rejection_filter_checker_names_the_mistake(bad, words):
    result = checks.check_rejection_filter(bad)
    assert not result and words in result.message, result.message


def test_rejection_filter_checker_passes_the_right_one():
    assert checks.check_rejection_filter(_keep_right)


# ---------------------------------------------------------------- 3. majority vote


def _vote_right(answers):
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None


def _vote_counts_none(answers):
    return Counter(answers).most_common(1)[0][0]


def _vote_returns_count(answers):
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][1] if counts else None


def _vote_first(answers):
    return answers[0]


def _vote_last_on_ties(answers):
    counts = Counter(a for a in reversed(answers) if a is not None)
    return counts.most_common(1)[0][0] if counts else None


def _vote_crashes_on_nothing(answers):
    return Counter(a for a in answers if a is not None).most_common(1)[0][0]


@pytest.mark.parametrize(
    "bad, words",
    [
        (_vote_counts_none, "voted"),
        (_vote_returns_count, "how many votes"),
        (_vote_first, "first sample"),
        (_vote_last_on_ties, "sampled later"),
        (_vote_crashes_on_nothing, "no answer could be read"),
        (lambda answers: "12", "expected"),
    ],
)
def test_majority_vote_checker_names_the_mistake(bad, words):
    result = checks.check_majority_vote(bad)
    assert not result and words in result.message, result.message


def test_majority_vote_checker_passes_the_right_one():
    assert checks.check_majority_vote(_vote_right)
