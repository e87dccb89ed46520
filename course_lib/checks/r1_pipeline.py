"""Exercise checkers for notebook 06 (the R1 pipeline, DeepSeek-R1 §2.3-§2.4 and §3).

Each checker runs the learner's function on small hand-made cases whose answers come from the
library (:mod:`course_lib.languages`, :mod:`course_lib.r1_pipeline`, :mod:`course_lib.test_time`)
and names the usual mistakes:

* the language-consistency score: counting the answer too, counting characters instead of words,
  scoring the majority language instead of the target, counting a mixed word as the target, a
  crash (or a non-zero score) when there is no thinking;
* the rejection filter: forgetting readability, correctness or the format, ``or`` for ``and``,
  a filter that wants digits whatever the question's language;
* the majority vote: letting unreadable answers vote, returning the count, breaking a tie
  towards the last sample, returning the first sample.
"""

from __future__ import annotations

from collections.abc import Callable

from course_lib import languages
from course_lib.checks.base import CheckResult, failed, passed
from course_lib.formats import is_well_formed
from course_lib.grpo import accuracy_reward
from course_lib.r1_pipeline import readable
from course_lib.test_time import majority_vote


def _run(fn: Callable, *args):
    try:
        return fn(*args), None
    except Exception as err:  # the learner's code: report, don't crash the notebook
        return None, err


def _as_float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# 1. The language-consistency score
# --------------------------------------------------------------------------------------------

# (completion, target): a spread of cases on which the usual mistakes all give other numbers.
_CONSISTENCY_CASES = [
    ("<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>", "letters"),  # 3/7
    ("<think>h+f=bc;4+8+1=13</think><answer>132</answer>", "digits"),  # 4/7
    ("<think>7+5=12;4+8+1=13</think><answer>bdc</answer>", "letters"),  # 0
    ("<think>h+f=bc;e+i+b=bd</think><answer>bdc</answer>", "letters"),  # 1
    ("<think>h+f=bc;e+8+1=bd</think><answer>bdc</answer>", "letters"),  # 5/7
    ("<think>1c+f=bc</think><answer>bdc</answer>", "letters"),  # 2/3: a mixed word
]
_NO_THINKING = ("<answer>132</answer>", "digits")


def _characters(completion: str, target: str) -> float:
    thinking = languages.thinking_of(completion) or ""
    chars = [c for c in thinking if c in languages.DIGITS + languages.LETTERS]
    alphabet = languages.DIGITS if target == "digits" else languages.LETTERS
    return sum(c in alphabet for c in chars) / len(chars) if chars else 0.0


def _with_answer(completion: str, target: str) -> float:
    found = languages.words(completion)
    return sum(languages.word_script(w) == target for w in found) / len(found) if found else 0.0


def _majority(completion: str, target: str) -> float:
    return max(languages.language_consistency(completion, s) for s in languages.SCRIPTS)


def _mixed_counts(completion: str, target: str) -> float:
    found = languages.words(languages.thinking_of(completion) or "")
    keep = (target, "mixed")
    return sum(languages.word_script(w) in keep for w in found) / len(found) if found else 0.0


def check_language_consistency(fn: Callable[[str, str], float]) -> CheckResult:
    """Check ``fn(completion, target) -> share of the thinking's words written in target``."""
    got = []
    for completion, target in _CONSISTENCY_CASES:
        value, err = _run(fn, completion, target)
        if err is not None:
            return failed(
                f"your function raised {type(err).__name__}: {err} on {completion!r}.",
                "Use languages.thinking_of(completion) and languages.words(...) first.",
            )
        value = _as_float(value)
        if value is None:
            return failed(f"return a number between 0 and 1, got {value!r}.")
        got.append(value)

    def same(reference: Callable[[str, str], float]) -> bool:
        return all(abs(g - reference(c, t)) < 1e-6 for g, (c, t) in zip(got, _CONSISTENCY_CASES))

    if not same(languages.language_consistency):
        if same(_with_answer):
            return failed(
                "you counted the answer's words (and everything outside the thinking) too.",
                "R1's score is on the chain of thought: take the words of thinking_of(completion) only.",
            )
        if same(_characters):
            return failed(
                "you counted characters, not words: 'bc' is one word, not two.",
                "R1 counts target-language words; languages.words() splits the thinking into them.",
            )
        if same(_majority):
            return failed(
                "you scored the share of whichever language is most common, not of the target one.",
                "A chain of thought all in digits, for a question in letters, should score 0.",
            )
        if same(lambda c, t: 1 - languages.language_consistency(c, t)):
            return failed(
                "your score is the share of the OTHER language (it is upside down).",
                "Count the words whose script is the target: word_script(w) == target.",
            )
        if same(_mixed_counts):
            return failed(
                "a word that mixes scripts ('1c') counted as the target language.",
                "Only a word written wholly in the target script counts: word_script(w) == target.",
            )
        return failed(
            "the values differ from the share of the thinking's words written in the target script.",
            "By hand: '<think>h+f=bc;4+8+1=13</think>' with target letters has 3 of 7 words in letters.",
        )
    value, err = _run(fn, *_NO_THINKING)
    if err is not None:
        return failed(
            f"a completion without thinking made your function raise {type(err).__name__}.",
            "With no thinking (or no word in it) there is nothing readable to pay for: return 0.",
        )
    if _as_float(value) != 0.0:
        return failed(
            f"a completion without thinking scored {value!r}; it should score 0.",
            "The reward pays for a readable chain of thought; none is none.",
        )
    return passed(
        "the share of the thinking's words in the question's language: R1's language-consistency "
        "reward (§2.3.2)."
    )


# --------------------------------------------------------------------------------------------
# 2. The rejection filter
# --------------------------------------------------------------------------------------------

# (prompt, completion, answer, what is wrong with it or None)
_FILTER_CASES = [
    ("47+85=", "<think>7+5=12;4+8+1=13</think><answer>132</answer>", "132", None),
    ("eh+if=", "<think>h+f=bc;e+i+b=bd</think><answer>bdc</answer>", "bdc", None),
    ("eh+if=", "<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>", "bdc", "mixed"),
    ("47+85=", "<think>7+5=12;e+i+b=bd</think><answer>132</answer>", "132", "mixed"),
    ("eh+if=", "<think>h+f=bc;e+i+1=bd</think><answer>bdc</answer>", "bdc", "mixed"),  # 6/7
    ("47+85=", "<think>7+5=12;4+8=12</think><answer>122</answer>", "132", "wrong"),
    ("eh+if=", "<think>h+f=bc;e+i=bc</think><answer>bcc</answer>", "bdc", "wrong"),
    ("47+85=", "<think>7+5=12;4+8+1=13</think><answer>132</answer> 132", "132", "format"),
    ("47+85=", "7+5=12;4+8+1=13 <answer>132</answer>", "132", "format"),
]


def _reference_keep(prompt: str, completion: str, answer: str) -> bool:
    return bool(
        is_well_formed(completion)
        and accuracy_reward(prompt, completion, answer)
        and readable(prompt, completion)
    )


def check_rejection_filter(fn: Callable[[str, str, str], bool]) -> CheckResult:
    """Check ``fn(prompt, completion, answer) -> keep?``: correct AND well formed AND readable."""
    kept = []
    for prompt, completion, answer, _flaw in _FILTER_CASES:
        value, err = _run(fn, prompt, completion, answer)
        if err is not None:
            return failed(f"your function raised {type(err).__name__}: {err} on {completion!r}.")
        kept.append(bool(value))
    wrongly_kept = {case[3] for case, k in zip(_FILTER_CASES, kept) if case[3] and k}
    good_rejected = [case[1] for case, k in zip(_FILTER_CASES, kept) if case[3] is None and not k]
    digits_ok, letters_ok = kept[0], kept[1]  # the two clean traces
    if digits_ok and not letters_ok and not wrongly_kept:
        return failed(
            "you rejected a clean trace written in letters, for a question asked in letters.",
            "Readable means the question's language (languages.script_of(prompt)), not always digits.",
        )
    if len(wrongly_kept) >= 2 and not good_rejected:
        return failed(
            f"you kept traces that fail a test ({', '.join(sorted(wrongly_kept))}): "
            "did you join the tests with 'or'?",
            "Keep a trace only if it passes every test: correct AND well formed AND readable.",
        )
    if "mixed" in wrongly_kept:
        return failed(
            "you kept a correct trace that mixes languages.",
            "R1 also filtered out chains of thought with mixed languages (§2.3.3): "
            "require a language consistency of 1 (r1_pipeline.readable).",
        )
    if "wrong" in wrongly_kept:
        return failed(
            "you kept a trace with a wrong answer.",
            "Rejection sampling keeps only correct responses: check the answer with "
            "grpo.accuracy_reward (or formats.check_answer).",
        )
    if "format" in wrongly_kept:
        return failed(
            "you kept a badly formatted trace (text after </answer>, or no <think> block).",
            "Use formats.is_well_formed: the SFT data teaches the format too.",
        )
    if good_rejected:
        return failed(
            f"you rejected a correct, well-formed, readable trace: {good_rejected[0]!r}.",
            "Print each test's result for it to find the one that is too strict.",
        )
    return passed(
        "correct AND well formed AND in one language: what R1 kept of its reasoning samples (§2.3.3)."
    )


# --------------------------------------------------------------------------------------------
# 3. The majority vote
# --------------------------------------------------------------------------------------------

_VOTES = [
    ["12", None, None, None, "13", "12"],  # None is the most common entry but must not vote
    ["7", "5", "5"],
    ["12", "13", "12", "13"],  # a tie: the answer sampled first wins
    ["9", "8"],
    [None, None],
    ["3"],
]


def check_majority_vote(fn: Callable[[list], object]) -> CheckResult:
    """Check ``fn(answers) -> the most common answer`` (None never votes; ties go to the first)."""
    got = []
    for answers in _VOTES:
        value, err = _run(fn, list(answers))
        if err is not None:
            if all(a is None for a in answers):
                return failed(
                    f"when no answer could be read your function raised {type(err).__name__}.",
                    "Return None when there is nothing to vote for.",
                )
            return failed(f"your function raised {type(err).__name__}: {err} on {answers}.")
        got.append(value)
    want = [majority_vote(a) for a in _VOTES]
    if got == want:
        return passed(
            "the most common readable answer, ties to the first sampled: cons@k as R1 reports it."
        )
    if got[0] is None:
        return failed(
            "unreadable answers (None) voted, and won: a model that fails to answer would beat "
            "a right answer.",
            "Count only the answers that are not None.",
        )
    if all(isinstance(g, int) for g in got[:2]):
        return failed(
            "you returned how many votes the winner got, not the winning answer.",
            "Counter(...).most_common(1)[0][0] is the answer; [0][1] is its count.",
        )
    if got == [a[0] for a in _VOTES]:
        return failed(
            "you returned the first sample: that is pass@1, not a vote.",
            "Count every answer and return the most common one.",
        )
    if (got[2], got[3]) == ("13", "8") and got[1] == "5":
        return failed(
            "the tie between '12' and '13' went to '13': the answer sampled later.",
            "Break ties towards the answer sampled first (Counter keeps first-seen order).",
        )
    return failed(
        f"for {_VOTES} expected {want}, got {got}.",
        "Drop the None entries, count the rest, return the most common (first sampled on a tie).",
    )
