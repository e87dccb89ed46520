"""Notebook 02's comparison over several seeds: MHA, GQA, MQA and MLA with matched KV caches.

Each run is :func:`course_lib.attention_lab.run_variant` at the notebook's full size (the same
batches for every variant of a seed; the data and the initial weights drawn from the seed, as the
notebook does with ``SEED``). One torch thread, runs one after another.

    python benchmarks/mla_quality.py                     # seeds 0-2, all variants
    python benchmarks/mla_quality.py --seeds 0 1 2 3 --out /tmp/mla.json
    python benchmarks/mla_quality.py --seeds 3 4 --add-to docs/benchmarks_data/mla_quality.json
    python benchmarks/mla_quality.py --steps 2400 --variants MHA "GQA, 2 KV heads" "MLA, d_c = 28" \\
        --seeds 0 1 2 3 4 --out docs/benchmarks_data/mla_quality_2400.json     # until flat
    python benchmarks/mla_quality.py --render docs/benchmarks_data/mla_quality.json

The table in docs/benchmarks.md and notebook 02 is :func:`format_markdown` of the JSON
(``tests/test_benchmarks.py`` keeps them equal). Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notebook_seeds import mean_sd, merge  # noqa: E402

OUT = ROOT / "docs" / "benchmarks_data" / "mla_quality.json"
STEPS, LR, EVAL_EVERY = 1200, 3e-3, 100
PAIRS = (  # (A, B): B - A per seed
    ("GQA, 2 KV heads", "MLA, d_c = 28"),
    ("MHA", "MLA, d_c = 28"),
    ("MHA", "GQA, 2 KV heads"),
    ("MQA", "MLA, d_c = 12"),
)


def run_all(seeds: list[int], variants: list[str], steps: int = STEPS) -> dict:
    import torch

    from course_lib import attention_lab

    torch.set_num_threads(1)
    runs, start = [], time.perf_counter()
    for seed in seeds:
        data = attention_lab.make_data(steps, seed=seed)
        for name in variants:
            r = attention_lab.run_variant(name, data, lr=LR, seed=seed, eval_every=EVAL_EVERY,
                                          progress=False)  # fmt: skip
            runs.append(dict(variant=name, seed=seed, val_loss=r.val_loss, params=r.params,
                             cache_per_token=r.cache_per_token, val_curve=[r.val_steps, r.val_losses],
                             seconds=r.seconds))  # fmt: skip
            print(f"seed {seed} {name:<18} val {r.val_loss:.4f} ({r.seconds:.0f} s)", flush=True)
    return dict(steps=steps, lr=LR, seeds=seeds, variants=variants, torch=torch.__version__,
                machine=platform.machine(), total_seconds=round(time.perf_counter() - start),
                runs=runs)  # fmt: skip


def _late_change(curve: list[list[float]]) -> float:
    """Relative drop of the validation loss over the last 20% of the steps (how flat the end is)."""
    steps, losses = curve
    cut = steps[-1] * 0.8
    before = [v for s, v in zip(steps, losses) if s <= cut][-1]
    return (before - losses[-1]) / before


def format_markdown(result: dict) -> str:
    """The tables docs/benchmarks.md and notebook 02 quote (generated, never edited by hand)."""
    n = len(result["seeds"])
    by = {(r["variant"], r["seed"]): r for r in result["runs"]}
    lines = [
        f"Seeds {', '.join(map(str, result['seeds']))}; {result['steps']} steps of 16 x 64 tokens; "
        f"mean ± sd over the {n} seeds. Cache: numbers per token and layer. Last 20%: how much "
        "the validation loss still fell over the last fifth of training.",
        "",
        "| attention | cache / token / layer | parameters | val loss | last 20% |",
        "|---|---|---|---|---|",
    ]
    for name in result["variants"]:
        rows = [by[(name, s)] for s in result["seeds"]]
        lines.append(
            f"| {name} | {rows[0]['cache_per_token']} | {rows[0]['params']:,} | "
            f"{mean_sd([r['val_loss'] for r in rows])} | "
            f"{mean_sd([100 * _late_change(r['val_curve']) for r in rows], '.1f')}% |"
        )
    lines += ["", "| paired comparison | B − A val loss, mean ± sd | seeds where B is lower |",
              "|---|---|---|"]  # fmt: skip
    for a, b in PAIRS:
        if a in result["variants"] and b in result["variants"]:
            d = [by[(b, s)]["val_loss"] - by[(a, s)]["val_loss"] for s in result["seeds"]]
            lines.append(
                f"| A = {a}, B = {b} | {mean_sd(d, '+.4f')} | {sum(x < 0 for x in d)} of {n} |"
            )
    return "\n".join(lines)


def main() -> None:
    from course_lib.attention_lab import VARIANTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=STEPS, help="training steps (the notebook's: 1200)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--render", type=Path, help="print the tables of a recorded JSON and stop")
    p.add_argument(
        "--add-to", type=Path, help="a recorded JSON to extend with --seeds (new seeds only)"
    )
    args = p.parse_args()
    if args.render:
        print(format_markdown(json.loads(args.render.read_text())))
        return
    result = run_all(args.seeds, args.variants, args.steps)
    if args.add_to:
        result = merge(json.loads(args.add_to.read_text()), result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(format_markdown(result))


if __name__ == "__main__":
    main()
