import pytest

from course_lib.tasks import (
    DOMAINS,
    addition_trace,
    arithmetic,
    domain_mixture,
    multiplication_trace,
)


def test_traces_hand_worked():
    assert addition_trace([47, 85]) == ("7+5=12;4+8+1=13", "132")
    assert addition_trace([99, 1]) == ("9+1=10;9+1=10", "100")
    assert addition_trace([123, 4]) == ("3+4=7;2=2;1=1", "127")
    assert multiplication_trace(47, 6) == ("7*6=42;4*6+4=28", "282")
    assert multiplication_trace(5, 3) == ("5*3=15", "15")


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_arithmetic_answers_are_right_and_deterministic(seed):
    exs = arithmetic(200, seed, digits=(1, 4), terms=(2, 4), ops="+*")
    assert exs == arithmetic(200, seed, digits=(1, 4), terms=(2, 4), ops="+*")
    assert exs != arithmetic(200, seed + 1, digits=(1, 4), terms=(2, 4), ops="+*")
    for ex in exs:
        expr = ex.prompt.rstrip("=")
        assert int(ex.answer) == eval(expr)  # noqa: S307 - our own digits and + or *
        assert ex.domain == "arithmetic" and ex.trace
    assert {"+" in e.prompt for e in exs} == {True, False}


def test_difficulty_controls():
    long = arithmetic(50, 0, digits=5, terms=3)
    for ex in long:
        nums = ex.prompt.rstrip("=").split("+")
        assert len(nums) == 3 and all(len(n) == 5 for n in nums)
        assert ex.trace.count(";") == 4  # five columns
    with pytest.raises(ValueError, match="range"):
        arithmetic(3, 0, digits=0)
    with pytest.raises(ValueError, match="ops"):
        arithmetic(3, 0, ops="-")


def test_domain_mixture_has_all_domains_and_right_answers():
    exs = domain_mixture(400, seed=3)
    assert exs == domain_mixture(400, seed=3)
    assert {e.domain for e in exs} == set(DOMAINS)
    for e in exs:
        if e.domain == "reverse":
            assert e.answer == e.prompt[4:-1][::-1]
        elif e.domain == "sort":
            assert e.answer == "".join(sorted(e.prompt[5:-1]))
    only = domain_mixture(20, 0, domains=("sort",))
    assert {e.domain for e in only} == {"sort"}
    with pytest.raises(ValueError, match="unknown domains"):
        domain_mixture(5, 0, domains=("poetry",))


def test_addition_trace_with_and_without_carries():
    assert addition_trace([47, 85]) == ("7+5=12;4+8+1=13", "132")
    # the careless student of notebook 04 forgets every carry
    assert addition_trace([47, 85], forget_carries=True) == ("7+5=12;4+8=12", "122")
    assert addition_trace([12, 84], forget_carries=True) == ("2+4=6;1+8=9", "96")  # no carry: right
    assert addition_trace([5, 95], forget_carries=True) == ("5+5=10;9=9", "90")
    with pytest.raises(ValueError):
        addition_trace([-1, 2], forget_carries=True)


def test_arithmetic_refuses_a_count_that_is_not_whole():
    with pytest.raises(ValueError, match="n must be a whole number"):
        arithmetic(2.5)
    with pytest.raises(ValueError, match=r"n must be a whole number, got '10' \(a str\)"):
        arithmetic("10")
