"""Notebook 04 over several seeds: the numbers behind every comparison its text makes.

Runs ``notebooks/04_grpo.ipynb`` at full size once per seed (papermill's ``-p SEED s``: the base
model's pre-training and every GRPO run change with it; the problem sets do not), reads the runs out
of the kernel and writes ``docs/benchmarks_data/grpo_seeds.json``. ``--render`` prints the section of
``docs/benchmarks.md`` made from that file; ``tests/test_benchmarks.py`` checks that the committed
section is exactly that rendering and that every statement in :func:`claims` (the ones notebook 04's
text makes) holds. Training metrics are means over the last ``LAST`` steps, not the last step alone.

    python benchmarks/grpo_seeds.py 0 1 2 3 4       # about 4 minutes a seed on 2 busy cores
    python benchmarks/grpo_seeds.py --render

Needs the ``rl`` extra too (the notebook's TRL section runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notebook_seeds import claims_footer, main, spread, stats, table  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "04_grpo.ipynb"
DATA = ROOT / "docs" / "benchmarks_data" / "grpo_seeds.json"
LAST = 10

PROBE = f"""
import json as _json

def _mean(hist, key, first=False, n={LAST}):
    vals = [r[key] for r in hist if key in r and r["step"] > 0]
    vals = vals[:n] if first else vals[-n:]
    return sum(vals) / len(vals)

def _run(hist):
    ev = [r["eval_accuracy"] for r in hist if "eval_accuracy" in r]
    keys = ("reward_mean", "accuracy", "format", "naive_format", "kl", "clip_fraction", "length")
    return dict(
        eval_start=ev[0], eval_end=ev[-1], eval_last2=sum(ev[-2:]) / 2,
        last={{k: _mean(hist, k) for k in keys}}, first={{k: _mean(hist, k, first=True) for k in keys}},
    )

print(_json.dumps(dict(
    seed=SEED,
    base=dict(greedy=before.accuracy, greedy_format=before.format_rate, sampled=sampled.accuracy,
              sampled_format=sampled.format_rate),
    main=dict(steps=GRPO_STEPS, after=after.accuracy, after_format=after.format_rate, **_run(trainer.history)),
    ablations={{name: _run(h) for name, h in runs.items()}},
    hacking={{name: _run(h) for name, h in hack_runs.items()}},
    ablation_steps=ABLATION_STEPS, hack_steps=HACK_STEPS,
)))
"""

ABLATIONS = ("GRPO", "GRPO, β = 0", "Dr. GRPO")
HACKS = ("naive format reward", "strict format reward")


def _pts(d: float) -> str:
    return f"{d:+.1f}"


def _kl(d: float) -> str:
    return f"{d:+.3f}"


def _tokens(d: float) -> str:
    return f"{d:+.2f}"


def _gamed(run: dict) -> float:
    """Share of answers the naive reward paid that are not well formed (last steps)."""
    return run["last"]["naive_format"] - run["last"]["format"]


def _change(result: dict, name: str, key: str) -> list[float]:
    """Per seed, ablation ``name`` minus GRPO: accuracy (mean of the last two evaluations) or a
    training metric over the last steps."""

    def value(run: dict) -> float:
        return run["eval_last2"] if key == "accuracy" else run["last"][key]

    return [value(s["ablations"][name]) - value(s["ablations"]["GRPO"]) for s in result["seeds"]]


def claims(result: dict) -> dict[str, bool]:
    """The statements notebook 04 makes from its runs, evaluated on the recorded seeds."""
    seeds = result["seeds"]
    main = [s["main"] for s in seeds]
    flips = lambda d: min(d) < 0 < max(d)  # noqa: E731
    return {
        "at least 3 seeds": len(seeds) >= 3,
        "the base model is right under 5% of the time greedily, more often when it samples, in every seed": all(
            s["base"]["greedy"] < 0.05 < s["base"]["sampled"] for s in seeds
        ),
        "GRPO lifts held-out accuracy to 90% or more in every seed": all(
            m["after"] >= 0.90 for m in main
        ),
        "strict format reaches 100% after the main run in every seed": all(
            m["after_format"] == 1.0 for m in main
        ),
        "the KL to the reference grows during the main run in every seed": all(
            m["last"]["kl"] > m["first"]["kl"] for m in main
        ),
        "the clip fraction of the main run is above 0 and below 5% in every seed": all(
            0 < m["last"]["clip_fraction"] < 0.05 for m in main
        ),
        "answers stay within 3 tokens of their starting length in every seed": all(
            abs(m["last"]["length"] - m["first"]["length"]) < 3 for m in main
        ),
        "β = 0 against β = 0.04: the KL difference changes sign across seeds": flips(
            _change(result, "GRPO, β = 0", "kl")
        ),
        "β = 0 against β = 0.04: the accuracy difference changes sign across seeds": flips(
            _change(result, "GRPO, β = 0", "accuracy")
        ),
        "Dr. GRPO against GRPO: the accuracy difference changes sign across seeds": flips(
            _change(result, "Dr. GRPO", "accuracy")
        ),
        "β = 0 and Dr. GRPO against GRPO: the accuracy difference varies over seeds by more than its "
        "mean": all(
            stats(d)[1] > abs(stats(d)[0])
            for d in (_change(result, name, "accuracy") for name in ("GRPO, β = 0", "Dr. GRPO"))
        ),
        "Dr. GRPO against GRPO: the KL difference changes sign across seeds": flips(
            _change(result, "Dr. GRPO", "kl")
        ),
        "Dr. GRPO and GRPO answer lengths differ by under half a token in every seed": max(
            abs(d) for d in _change(result, "Dr. GRPO", "length")
        )
        < 0.5,
        "the naive format reward is gamed (over 10% of answers) in every seed": all(
            _gamed(s["hacking"]["naive format reward"]) > 0.10 for s in seeds
        ),
        "the strict format reward is gamed less than the naive one in every seed": all(
            _gamed(s["hacking"]["strict format reward"])
            < _gamed(s["hacking"]["naive format reward"])
            for s in seeds
        ),
    }


def render(result: dict) -> str:
    """The markdown section of docs/benchmarks.md for ``result`` (the JSON this script writes)."""
    seeds = result["seeds"]
    ids = [str(s["seed"]) for s in seeds]
    pct = lambda vals: spread(vals, 100)  # noqa: E731
    s0 = seeds[0]
    out = [
        "## `benchmarks/grpo_seeds.py`: notebook 04 over several seeds",
        "",
        f"Notebook 04 at full size for seeds {', '.join(ids)} (`-p SEED s`: the base model's "
        "pre-training and every GRPO run change; the problem sets do not): mean ± sample standard "
        f"deviation (min … max) over the seeds. Training metrics are means over the last {LAST} steps "
        '("start": the first 10); held-out accuracy is greedy on 100 problems that need a carry, in %.',
        "",
        f"The main run ({s0['main']['steps']} steps) and the base model it starts from:",
        "",
        table(
            ("quantity", "value"),
            [
                [
                    "base model, held-out accuracy, greedy",
                    pct([s["base"]["greedy"] for s in seeds]),
                ],
                [
                    "base model, held-out accuracy, one sample at T = 1",
                    pct([s["base"]["sampled"] for s in seeds]),
                ],
                ["after GRPO, held-out accuracy", pct([s["main"]["after"] for s in seeds])],
                ["after GRPO, strict format", pct([s["main"]["after_format"] for s in seeds])],
                [
                    "KL to the reference, start → end",
                    f"{spread([s['main']['first']['kl'] for s in seeds], 1, 3)} → {spread([s['main']['last']['kl'] for s in seeds], 1, 3)}",
                ],
                [
                    "clip fraction (%), end",
                    pct([s["main"]["last"]["clip_fraction"] for s in seeds]),
                ],
                [
                    "answer length (tokens), start → end",
                    f"{spread([s['main']['first']['length'] for s in seeds])} → {spread([s['main']['last']['length'] for s in seeds])}",
                ],
            ],
        ),
        "",
        f"Ablations ({s0['ablation_steps']} steps each, from the same base model):",
        "",
        table(
            (
                "run",
                "held-out accuracy at the end",
                "mean of the last two evaluations",
                "KL",
                "answer length",
            ),
            [
                [
                    name,
                    pct([s["ablations"][name]["eval_end"] for s in seeds]),
                    pct([s["ablations"][name]["eval_last2"] for s in seeds]),
                    spread([s["ablations"][name]["last"]["kl"] for s in seeds], 1, 3),
                    spread([s["ablations"][name]["last"]["length"] for s in seeds]),
                ]
                for name in ABLATIONS
            ],
        ),
        "",
        "Each change against GRPO, seed by seed (held-out accuracy in points, mean of the last two "
        "evaluations; KL and answer length in tokens over the last steps):",
        "",
        table(
            ("change", "metric", *[f"seed {i}" for i in ids], "mean", "positive in"),
            [
                [name, label]
                + [fmt(d) for d in diffs]
                + [fmt(stats(diffs)[0]), f"{sum(d > 0 for d in diffs)} of {len(seeds)}"]
                for name in ABLATIONS[1:]
                for label, diffs, fmt in (
                    ("accuracy", [100 * d for d in _change(result, name, "accuracy")], _pts),
                    ("KL", _change(result, name, "kl"), _kl),
                    ("answer length", _change(result, name, "length"), _tokens),
                )
            ],
        ),
        "",
        f"Reward hacking ({s0['hack_steps']} steps each, the format reward alone), share of answers in %:",
        "",
        table(
            (
                "reward",
                "paid",
                "strict format",
                "naive format",
                "paid by the naive reward but malformed",
            ),
            [
                [
                    name,
                    pct([s["hacking"][name]["last"]["reward_mean"] for s in seeds]),
                    pct([s["hacking"][name]["last"]["format"] for s in seeds]),
                    pct([s["hacking"][name]["last"]["naive_format"] for s in seeds]),
                    pct([_gamed(s["hacking"][name]) for s in seeds]),
                ]
                for name in HACKS
            ],
        ),
    ]
    out += claims_footer(result, claims(result))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main(NOTEBOOK, PROBE, DATA, render)
