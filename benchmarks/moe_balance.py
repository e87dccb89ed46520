"""Notebook 01's comparisons over several seeds: dense vs MoE, the shared expert, and the three
balancing strategies on a router that drifts (V3-like) and on one that collapses (V2-like).

Every run is notebook 01's full-size recipe (``course_lib.moe_lab``: 300 steps, batch 32 of 64
tokens, the domain mixture) with the data and the initial weights drawn from the seed, as the
notebook does with ``SEED``. One torch thread, runs one after another.

    python benchmarks/moe_balance.py                 # seeds 0-4, writes docs/benchmarks_data/moe_balance.json
    python benchmarks/moe_balance.py --seeds 0 1 2 --out /tmp/moe.json
    python benchmarks/moe_balance.py --render docs/benchmarks_data/moe_balance.json   # the tables only

The tables in docs/benchmarks.md and notebook 01 are :func:`format_markdown` of the JSON
(``tests/test_benchmarks.py`` keeps them equal). Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notebook_seeds import mean_sd, merge  # noqa: E402

OUT = ROOT / "docs" / "benchmarks_data" / "moe_balance.json"
STEPS, BATCH, N_TRAIN, LR = 300, 32, 6000, 3e-3

# (setting, variant) -> config overrides; "dense" is the V3-like MoE's dense twin.
V3_LIKE = {
    "dense twin": "dense",
    "no balancing": dict(balance="none"),
    "aux loss α=0.01": dict(balance="aux_loss", aux_alpha=0.01),
    "aux-free γ=0.01": dict(balance="aux_free", bias_gamma=0.01),
    "no shared expert, top-3 of 9, aux-free γ=0.01": dict(
        balance="aux_free", bias_gamma=0.01, n_shared_experts=0, n_routed_experts=9,
        n_activated_experts=3,
    ),
}  # fmt: skip
COLLAPSE = {
    "no balancing": dict(balance="none"),
    **{f"aux loss α={a:g}": dict(balance="aux_loss", aux_alpha=a) for a in (0.001, 0.01, 0.1)},
    **{
        f"aux-free γ={g:g}": dict(balance="aux_free", bias_gamma=g)
        for g in (0.0001, 0.001, 0.01, 0.1)
    },
}
SETTINGS = {"V3-like": V3_LIKE, "collapse": COLLAPSE}
PAIRS = (  # (setting, A, B): the comparisons the notebook draws conclusions from, B - A per seed
    ("V3-like", "dense twin", "aux-free γ=0.01"),
    ("V3-like", "aux-free γ=0.01", "no shared expert, top-3 of 9, aux-free γ=0.01"),
    ("V3-like", "no balancing", "aux loss α=0.01"),
    ("V3-like", "no balancing", "aux-free γ=0.01"),
    ("V3-like", "aux loss α=0.01", "aux-free γ=0.01"),
    ("collapse", "no balancing", "aux loss α=0.01"),
    ("collapse", "no balancing", "aux-free γ=0.01"),
    ("collapse", "aux loss α=0.01", "aux-free γ=0.01"),
    ("collapse", "no balancing", "aux loss α=0.1"),
    ("collapse", "no balancing", "aux-free γ=0.1"),
)


def run_all(seeds: list[int]) -> dict:
    import torch

    from course_lib import moe_lab

    torch.set_num_threads(1)
    runs, start = [], time.perf_counter()
    for seed in seeds:
        data = moe_lab.make_data(n_train=N_TRAIN, batch_size=BATCH, seed=seed)
        for setting, variants in SETTINGS.items():
            base = moe_lab.moe_config if setting == "V3-like" else moe_lab.collapse_config
            for variant, overrides in variants.items():
                cfg = moe_lab.dense_twin(base()) if overrides == "dense" else base(**overrides)
                run = moe_lab.run_variant(
                    variant, cfg, data, STEPS, lr=LR, seed=seed, progress=False
                )
                row = dict(setting=setting, variant=variant, seed=seed, val_loss=run.val_loss,
                           val_curve=[run.val_steps, run.val_losses], seconds=run.seconds,
                           params_total=run.params_total, params_active=run.params_active)  # fmt: skip
                if run.loads is not None:
                    row["end_loads"] = run.end_loads().tolist()  # (layers, E), last 10% of steps
                runs.append(row)
                print(f"seed {seed} {setting:>8} {variant:<48} val {run.val_loss:.4f} "
                      f"({run.seconds:.0f} s)", flush=True)  # fmt: skip
    return dict(
        steps=STEPS, batch=BATCH, n_train=N_TRAIN, lr=LR, seeds=seeds,
        torch=torch.__version__, machine=platform.machine(),
        total_seconds=round(time.perf_counter() - start), runs=runs,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Statistics and tables (pure: JSON in, text out)
# ------------------------------------------------------------------------------------------------
def balance_stats(end_loads: list[list[float]], dead_below: float = 0.01) -> dict:
    """Max/mean (mean over layers), MaxVio (worst layer), smallest share, experts under 1% (all
    layers) of one run's end loads."""
    shares = [[c / sum(layer) for c in layer] for layer in end_loads]
    mom = [max(layer) / (sum(layer) / len(layer)) for layer in end_loads]
    return dict(
        max_over_mean=statistics.fmean(mom), max_vio=max(mom) - 1,
        min_share=min(min(s) for s in shares), dead=sum(sum(x < dead_below for x in s) for s in shares),
    )  # fmt: skip


def summary(result: dict) -> dict:
    """{setting: {variant: {"val_loss": [...], "max_vio": [...], ...}}}, one value per seed."""
    out: dict = {}
    for r in result["runs"]:
        cell = out.setdefault(r["setting"], {}).setdefault(r["variant"], {"val_loss": []})
        cell["val_loss"].append(r["val_loss"])
        if "end_loads" in r:
            for k, v in balance_stats(r["end_loads"]).items():
                cell.setdefault(k, []).append(v)
    return out


def paired(result: dict, setting: str, a: str, b: str) -> list[float]:
    """Per seed, val loss of ``b`` minus val loss of ``a`` (negative: ``b`` is better)."""
    by = {
        (r["variant"], r["seed"]): r["val_loss"] for r in result["runs"] if r["setting"] == setting
    }
    return [by[(b, s)] - by[(a, s)] for s in result["seeds"]]


def sweep_points(result: dict) -> dict[str, dict[str, tuple[float, float, float, float]]]:
    """For the collapse setting: {variant: (MaxVio mean, sd, val loss mean, sd)}, rounded to 4
    places: what notebook 01's balance-vs-loss figure plots."""
    cells = summary(result)["collapse"]

    def sd(v):
        return statistics.stdev(v) if len(v) > 1 else 0.0

    return {
        name: tuple(round(x, 4) for x in (statistics.fmean(c["max_vio"]), sd(c["max_vio"]),
                                          statistics.fmean(c["val_loss"]), sd(c["val_loss"])))
        for name, c in cells.items()
    }  # fmt: skip


def format_markdown(result: dict) -> str:
    """The tables docs/benchmarks.md and notebook 01 quote (generated, never edited by hand)."""
    n = len(result["seeds"])
    cells = summary(result)
    lines = [
        f"Seeds {', '.join(map(str, result['seeds']))}; {result['steps']} steps, batch "
        f"{result['batch']}; mean ± sd over the {n} seeds. End loads: tokens per expert over the "
        'last 10% of steps. MaxVio = max/mean − 1 of the worst MoE layer; "< 1%": experts (of '
        "both layers) with under 1% of the routing decisions, summed over the layers.",
        "",
    ]
    for setting in SETTINGS:
        lines += [
            f"| {setting} | val loss | max/mean load | MaxVio | smallest share | experts < 1% |",
            "|---|---|---|---|---|---|",
        ]
        for variant, c in cells[setting].items():
            if "max_vio" not in c:
                lines.append(f"| {variant} | {mean_sd(c['val_loss'])} | – | – | – | – |")
                continue
            lines.append(
                f"| {variant} | {mean_sd(c['val_loss'])} | {mean_sd(c['max_over_mean'], '.2f')} | "
                f"{mean_sd(c['max_vio'], '.2f')} | {mean_sd(c['min_share'], '.3f')} | "
                f"{mean_sd(c['dead'], '.1f')} |"
            )
        lines.append("")
    lines += ["| paired comparison | B − A val loss, mean ± sd | seeds where B is lower |",
              "|---|---|---|"]  # fmt: skip
    for setting, a, b in PAIRS:
        d = paired(result, setting, a, b)
        lines.append(
            f"| {setting}: A = {a}, B = {b} | {mean_sd(d, '+.4f')} | {sum(x < 0 for x in d)} of {n} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--render", type=Path, help="print the tables of a recorded JSON and stop")
    p.add_argument(
        "--add-to", type=Path, help="a recorded JSON to extend with --seeds (new seeds only)"
    )
    args = p.parse_args()
    if args.render:
        print(format_markdown(json.loads(args.render.read_text())))
        return
    result = run_all(args.seeds)
    if args.add_to:
        result = merge(json.loads(args.add_to.read_text()), result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(format_markdown(result))


if __name__ == "__main__":
    main()
