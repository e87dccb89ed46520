"""Exercise checkers with friendly feedback; one module per notebook idea.

A checker takes the learner's function, runs it on cases with known answers, and returns a
:class:`course_lib.checks.base.CheckResult` that prints what went wrong and a hint.
"""
