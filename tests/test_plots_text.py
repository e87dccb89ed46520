"""A $ meant as money stays a dollar sign: in plotly strings and in Markdown."""

from __future__ import annotations

import html
import re

import pytest

from course_lib.plots.text import literal, markdown_literal

SAMPLES = ["DeepSeek trained R1 for $5.6M", "x $2 = $5.576M", "no dollars", "$$ both $"]


@pytest.mark.parametrize("text", SAMPLES)
def test_literal_keeps_every_dollar_out_of_plotlys_tex(text):
    out = literal(text)
    assert "$" not in out and out.count("&#36;") == text.count("$")
    assert html.unescape(out) == text


@pytest.mark.parametrize("text", SAMPLES)
def test_markdown_literal_hides_every_dollar_from_math(text):
    out = markdown_literal(text)
    assert "$" not in out  # neither Markdown's math parser nor MathJax can pair them
    assert out.count("mathjax_ignore") == text.count("$")
    assert html.unescape(re.sub(r"<[^>]+>", "", out)) == text  # what the page shows
    assert markdown_literal(out) == out  # escaping twice changes nothing
