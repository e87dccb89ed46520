from course_lib.checks.base import CheckResult, failed, passed


def test_check_result_truthiness_and_text():
    ok, bad = passed("all cases match"), failed("case 2 differs", hint="renormalise the weights")
    assert ok and not bad
    assert str(ok).startswith("PASS") and "Hint" not in str(ok)
    assert "renormalise" in str(bad) and str(bad).startswith("NOT YET")
    assert "Hint" in bad._repr_html_() and "Correct" in ok._repr_html_()
    assert isinstance(bad, CheckResult)
