"""Seconds per call of the course's graders on adversarial text: the time bound the tests do not assert.

A policy under RL (or a learner) can write anything, so a reward call must not stall on long,
repetitive text. Each grader runs on inputs built to make a careless implementation slow (many
unclosed tags, unclosed boxes, half tags that only form when others are removed, digit runs), at
several sizes; the time per megabyte must stay flat (linear time) and under ``BOUND_S_PER_MB``.
The regular expression and the boxed-answer scan the course used before are timed too, on smaller
inputs, to show the quadratic growth they had.

    python benchmarks/grading.py                         # prints the table
    python benchmarks/grading.py --json docs/benchmarks_data/grading_<machine>.json

``format_markdown`` turns the JSON into the table in docs/benchmarks.md; tests/test_benchmarks.py
checks the table is the script's output for the recorded JSON and that every library row is under
the bound.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import time
from collections.abc import Callable

from course_lib import formats, grpo, math_problems

# The promise: any library grader, on any text, in under this many seconds per megabyte of text.
BOUND_S_PER_MB = 1.0
SIZES = (10_000, 100_000, 1_000_000)  # characters
REFERENCE_SIZES = (3_000, 10_000, 30_000)  # the quadratic code before, kept small


def _repeat(unit: str, tail: str = "") -> Callable[[int], str]:
    return lambda n: (unit * (n // len(unit) + 1))[: n - len(tail)] + tail


INPUTS: dict[str, Callable[[int], str]] = {
    "<answer>5 repeated": _repeat("<answer>5"),
    "<answer>5 repeated, one </answer>": _repeat("<answer>5", "</answer>"),
    "</think> repeated": _repeat("</think>"),
    "\\boxed{ repeated": _repeat("\\boxed{"),
    "<thi ... <think> ... nk>": lambda n: "<thi" * (n // 7 - 1) + "<think>" + "nk>" * (n // 7 - 1),
    "digits": _repeat("1"),
    "digits and commas": _repeat("1,"),
}


def _regex_answer(text: str) -> str | None:
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    return found[-1].strip() if found else None


def _scan_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    while start >= 0:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{") : i - 1]
        start = text.rfind("\\boxed{", 0, start)
    return None


# name -> (function of the text, which inputs it is timed on)
GRADERS: dict[str, tuple[Callable[[str], object], tuple[str, ...]]] = {
    "grpo.accuracy_reward": (
        lambda t: grpo.accuracy_reward("", t, "5"),
        ("<answer>5 repeated", "<answer>5 repeated, one </answer>", "</think> repeated"),
    ),
    "grpo.strict_format_reward": (
        lambda t: grpo.strict_format_reward("", t),
        ("<answer>5 repeated", "</think> repeated"),
    ),
    "formats.extract_boxed": (formats.extract_boxed, ("\\boxed{ repeated",)),
    "formats.split_thinking": (formats.split_thinking, ("<thi ... <think> ... nk>",)),
    "math_problems.is_correct": (
        lambda t: math_problems.is_correct(t, t),
        ("digits", "digits and commas", "\\boxed{ repeated"),
    ),
}
REFERENCES: dict[str, tuple[Callable[[str], object], tuple[str, ...]]] = {
    "before: <answer>(.*?)</answer> regex": (_regex_answer, ("<answer>5 repeated",)),
    "before: boxed scan from every start": (_scan_boxed, ("\\boxed{ repeated",)),
}


def seconds_per_call(fn: Callable[[str], object], text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def run(repeats: int = 3) -> dict:
    rows = []
    for kind, table, sizes in (
        ("library", GRADERS, SIZES),
        ("reference", REFERENCES, REFERENCE_SIZES),
    ):
        for name, (fn, inputs) in table.items():
            for input_name in inputs:
                for n in sizes:
                    text = INPUTS[input_name](n)
                    s = seconds_per_call(fn, text, repeats if kind == "library" else 1)
                    rows.append(
                        {
                            "kind": kind,
                            "grader": name,
                            "input": input_name,
                            "chars": len(text),
                            "seconds": s,
                        }
                    )
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} cores",
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "bound_s_per_mb": BOUND_S_PER_MB,
        "rows": rows,
    }


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def format_markdown(result: dict) -> str:
    """The docs table: one row per grader and input, seconds per call at each size, s per MB."""
    groups: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in result["rows"]:
        groups.setdefault((r["kind"], r["grader"], r["input"]), {})[r["chars"]] = r["seconds"]
    lines = [
        "| grader | input | characters: seconds per call | worst s per MB |",
        "|---|---|---|---|",
    ]
    for (_kind, grader, input_name), by_size in groups.items():
        cells = ", ".join(f"{n:,}: {s:.4f}" for n, s in sorted(by_size.items()))
        worst = max(s / (n / 1e6) for n, s in by_size.items())
        lines.append(f"| {grader} | `{input_name}` | {cells} | {worst:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = run(args.repeats)
    print(f"{result['machine']}, load {result['load_average']}, Python {result['python']}")
    print(format_markdown(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
