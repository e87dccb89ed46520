"""Notebook 03 over several seeds: the numbers behind every comparison its text makes.

Runs ``notebooks/03_distillation.ipynb`` at full size once per seed (papermill's ``-p SEED s``: the
teacher's and the students' weights and batches and the teacher's samples change with it; the problem
sets do not), reads the results out of the kernel and writes
``docs/benchmarks_data/distill_seeds.json``. ``--render`` prints the section of ``docs/benchmarks.md``
made from that file; ``tests/test_benchmarks.py`` checks that the committed section is exactly that
rendering and that every statement in :func:`claims` (the ones notebook 03's text makes) holds.

    python benchmarks/distill_seeds.py 0 1 2 3 4     # about 3 minutes a seed on 2 busy cores
    python benchmarks/distill_seeds.py --render
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notebook_seeds import claims_footer, main, spread, stats, table  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "03_distillation.ipynb"
DATA = ROOT / "docs" / "benchmarks_data" / "distill_seeds.json"
MODELS = ("teacher", "answers only", "traces (R1 recipe)", "logit KD", "unfiltered traces")

PROBE = """
import json as _json
print(_json.dumps(dict(
    seed=SEED,
    kept_fraction=report.kept_fraction, n_kept=len(sets["traces"]), n_all=len(sets["unfiltered traces"]),
    accuracy={name: dict(zip(("greedy", "pass@1", "longer"), r.values())) for name, r in results.items()},
    scaling=dict(sizes=sizes, greedy=curve),
)))
"""


def _diffs(result: dict, a: str, b: str, metric: str) -> list[float]:
    return [s["accuracy"][a][metric] - s["accuracy"][b][metric] for s in result["seeds"]]


COMPARISONS = (
    ("traces − answers only", "traces (R1 recipe)", "answers only"),
    ("traces − unfiltered traces", "traces (R1 recipe)", "unfiltered traces"),
    ("logit KD − traces", "logit KD", "traces (R1 recipe)"),
)


def claims(result: dict) -> dict[str, bool]:
    """The statements notebook 03 makes from its comparisons, evaluated on the recorded seeds."""
    seeds = result["seeds"]
    mean = lambda values: stats(values)[0]  # noqa: E731
    traces = [
        d
        for metric in ("greedy", "pass@1")
        for d in _diffs(result, "traces (R1 recipe)", "answers only", metric)
    ]
    filt_p1 = _diffs(result, "traces (R1 recipe)", "unfiltered traces", "pass@1")
    filt_greedy = _diffs(result, "traces (R1 recipe)", "unfiltered traces", "greedy")
    kd = [_diffs(result, "logit KD", "traces (R1 recipe)", m) for m in ("greedy", "pass@1")]
    curves = [s["scaling"]["greedy"] for s in seeds]
    mean_curve = [mean([c[i] for c in curves]) for i in range(len(curves[0]))]
    return {
        "at least 3 seeds": len(seeds) >= 3,
        "traces beat answers only by over 20 points, greedy and pass@1, in every seed": min(traces)
        > 0.20,
        "filtered traces beat unfiltered ones at pass@1 on average, by over 10 points": mean(
            filt_p1
        )
        > 0.10,
        "... but not in every seed: the unfiltered student was ahead at pass@1 in one seed of five": (
            len(seeds),
            sum(d < 0 for d in filt_p1),
        )
        == (5, 1),
        "greedily, filtered and unfiltered differ by under 6 points in every seed": max(
            abs(d) for d in filt_greedy
        )
        < 0.06,
        "logit KD beats traces on average, greedy and pass@1, but falls below them in some seed": all(
            mean(d) > 0 and min(d) < 0 for d in kd
        ),
        "the seed moves KD − traces more than the method: its spread over seeds exceeds its mean, "
        "greedy and pass@1": all(stats(d)[1] > abs(mean(d)) for d in kd),
        "every model, teacher included, is below 10% on longer problems in every seed": max(
            s["accuracy"][m]["longer"] for s in seeds for m in MODELS
        )
        < 0.10,
        "a quarter of the kept traces beats an eighth of them in every seed": all(
            c[1] > c[0] for c in curves
        ),
        "on average over seeds, accuracy rises with every doubling of the kept traces": all(
            a < b for a, b in zip(mean_curve, mean_curve[1:])
        ),
        "half of the kept traces beat all of them in some seed (the curve flattens)": any(
            c[2] > c[3] for c in curves
        ),
    }


def render(result: dict) -> str:
    """The markdown section of docs/benchmarks.md for ``result`` (the JSON this script writes)."""
    seeds = result["seeds"]
    ids = [str(s["seed"]) for s in seeds]
    out = [
        "## `benchmarks/distill_seeds.py`: notebook 03 over several seeds",
        "",
        f"Notebook 03 at full size for seeds {', '.join(ids)} (`-p SEED s`: teacher and student weights, "
        "batches and the teacher's samples change; the problem sets do not). Held-out accuracy in %, "
        "as mean ± sample standard deviation (min … max) over the seeds; greedy on 300 2-digit problems, "
        "pass@1 at temperature 0.6, top-p 0.95 (4 samples a problem), and greedy on 300 3-digit problems. "
        f"Rejection sampling kept {spread([s['kept_fraction'] for s in seeds], 100)} % of the teacher's "
        "1,500 completions.",
        "",
        table(
            ("model", "greedy", "pass@1", "3-digit (longer), greedy"),
            [
                [m]
                + [
                    spread([s["accuracy"][m][k] for s in seeds], 100)
                    for k in ("greedy", "pass@1", "longer")
                ]
                for m in MODELS
            ],
        ),
        "",
        "Differences in points, seed by seed:",
        "",
        table(
            ("comparison", "metric", *[f"seed {i}" for i in ids], "mean", "positive in"),
            [
                [label, metric]
                + [f"{100 * d:+.1f}" for d in _diffs(result, a, b, metric)]
                + [
                    f"{100 * stats(_diffs(result, a, b, metric))[0]:+.1f}",
                    f"{sum(d > 0 for d in _diffs(result, a, b, metric))} of {len(seeds)}",
                ]
                for label, a, b in COMPARISONS
                for metric in ("greedy", "pass@1")
            ],
        ),
        "",
        "Data scaling: greedy accuracy (%) of the traces student trained on a share of the kept traces "
        "(same steps):",
        "",
        table(
            ("share of kept traces", "greedy"),
            [
                [f"{f:g}", spread([s["scaling"]["greedy"][i] for s in seeds], 100)]
                for i, f in enumerate((0.125, 0.25, 0.5, 1.0))
            ],
        ),
    ]
    out += claims_footer(result, claims(result))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main(NOTEBOOK, PROBE, DATA, render)
