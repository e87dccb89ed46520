"""Text shown as written: a dollar sign meant as money must not be read as TeX math.

JupyterLab (and nbconvert's HTML) typeset ``$...$`` as math in Markdown, and plotly.js hands any
figure string holding two ``$`` signs to MathJax when the page has it: "at $2/GPU-hour: $5.576M"
became an empty title, and a Markdown table row "$5.6M | ... $2 ..." one run-together formula.
"""

from __future__ import annotations


def literal(text: str) -> str:
    """``text`` for a plotly string (title, label, table cell): each ``$`` as the entity ``&#36;``,
    which plotly draws as a dollar sign and never passes to MathJax."""
    return str(text).replace("$", "&#36;")


# MathJax skips elements of these classes (MathJax 3's default, and MathJax 2's, which nbconvert uses).
_NO_MATH = "<span class='tex2jax_ignore mathjax_ignore'>&#36;</span>"


def markdown_literal(text: str) -> str:
    """``text`` for Markdown: each ``$`` written so no renderer reads it as math.

    ``\\$`` is not enough: JupyterLab's Markdown turns it into a plain ``$``, and MathJax, which
    then scans the page, reads "x \\$2 = \\$5.576M" as the formula "2 =". So each ``$`` becomes the
    entity ``&#36;`` (no Markdown math parser sees a dollar) inside a span MathJax skips.
    """
    return str(text).replace(_NO_MATH, "$").replace("$", _NO_MATH)
