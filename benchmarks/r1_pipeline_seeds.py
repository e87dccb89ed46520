"""Notebook 06's R1 pipeline over several seeds: every number its text concludes from.

Runs the notebook's full-size recipe (``r1_pipeline.Sizes.full()``, the same stages in the same
order) for each seed -- a seed changes the pre-training corpus, every model's initial weights and
every sample; the problem sets stay fixed -- and writes the raw numbers to JSON. ``--render``
turns a JSON file into the Markdown tables of docs/benchmarks.md (tests/test_benchmarks.py checks
that the committed tables are this rendering of the committed JSON).

    python benchmarks/r1_pipeline_seeds.py 0 1 2 3 4 --out docs/benchmarks_data/r1_pipeline_seeds.json
    python benchmarks/r1_pipeline_seeds.py --render docs/benchmarks_data/r1_pipeline_seeds.json

About 3-4 minutes per seed on an idle 2-core CPU, one torch thread.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from course_lib import languages, r1_pipeline, runtime, students, test_time
from course_lib.grpo_trainer import GRPOConfig
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer

P_TARGET = 0.5  # the base corpus writes each step in the question's language with this chance
KS = (1, 2, 4, 8, 16)
BUDGETS = (0, 4, 8, 12, 14, 16, 20)


def pretrained(arch: dict, corpus, seed: int, steps: int, tok) -> TinySeek:
    runtime.seed_everything(seed)
    model = TinySeek(TinySeekConfig(**arch))
    students.pretrain_base(model, corpus, tok, steps=steps, batch_size=32, lr=3e-3, seed=seed,
                           progress=False)  # fmt: skip
    return model


def run_seed(seed: int, sizes: r1_pipeline.Sizes) -> dict:
    """Every stage of notebook 06 for one seed; returns its numbers and per-stage seconds."""
    torch.set_num_threads(1)
    tok, P = default_tokenizer(), r1_pipeline
    pr = P.problems(sizes)
    out: dict = {"stages": {}, "seconds": {}, "curves": {}}
    clock = [time.perf_counter()]

    def done(name: str, model, other: bool = False) -> None:
        out["stages"][name] = P.measure(
            model, tok, pr.held_out, pr.held_out_other if other else (), sizes.eval_samples,
            seed=seed,
        )  # fmt: skip
        now = time.perf_counter()
        out["seconds"][name] = round(now - clock[0], 1)
        clock[0] = now

    corpus = languages.mixed_corpus(pr.corpus, P.STUDENT_MIX, P_TARGET, seed=seed)
    base = pretrained(P.BIG, corpus, seed, sizes.base_steps, tok)
    done("base", base, other=True)
    out["base_by_length"] = test_time.accuracy_by_length(
        base, tok, pr.held_out, 4, P.MAX_NEW_TOKENS, seed=seed
    )
    cfg = GRPOConfig(**P.GRPO, seed=seed)
    zero, _ = P.rl(base, tok, pr.rl, P.reasoning_rewards(language=False), sizes.rl_steps, cfg,
                   progress=False)  # fmt: skip
    done("R1-Zero", zero.policy)
    prompts, texts = P.cold_start_data(base, tok, pr.cold, seed=seed)
    cold, _, _ = P.sft(base, tok, prompts, texts, sizes.cold_steps, seed=seed, progress=False)
    done("cold start", cold)
    reasoning, _ = P.rl(cold, tok, pr.rl, P.reasoning_rewards(), sizes.rl_steps, cfg,
                        progress=False)  # fmt: skip
    done("reasoning RL", reasoning.policy)
    no_language, _ = P.rl(cold, tok, pr.rl, P.reasoning_rewards(language=False), sizes.rl_steps,
                          cfg, progress=False)  # fmt: skip
    done("reasoning RL without the language reward", no_language.policy)
    kept = P.rejection_sample(reasoning.policy, tok, pr.rejection, sizes.rs_samples, seed=seed)
    out["rejection"] = {"kept_fraction": kept.report.kept_fraction,
                        "prompts_covered": kept.prompts_covered, "kept": len(kept.prompts)}  # fmt: skip
    nr_prompts, nr_texts = P.non_reasoning_data(pr.non_reasoning, seed=seed)
    sft_prompts, sft_texts = kept.prompts + nr_prompts, kept.completions + nr_texts
    sft_model, _, rows = P.sft(base, tok, sft_prompts, sft_texts, sizes.sft_steps, seed=seed,
                               progress=False)  # fmt: skip
    done("SFT on rejection samples + non-reasoning", sft_model, other=True)
    final, _ = P.rl(sft_model, tok, pr.rl + pr.non_reasoning, P.all_scenario_rewards(),
                    sizes.final_steps, replace(cfg, lr=P.FINAL_LR), progress=False)  # fmt: skip
    done("RL for all scenarios (R1)", final.policy, other=True)

    # R1 §4.1 in miniature: a smaller dense model, distilled or trained with RL, same FLOPs.
    small = pretrained(P.SMALL, corpus, seed, sizes.base_steps, tok)
    done("small base", small, other=True)
    n_params = small.num_parameters()
    every = max(1, sizes.rl_steps // 5)

    def point(model) -> float:
        return P.measure(model, tok, pr.held_out, samples=2, seed=seed)["accuracy"]

    rl_curve: list = []

    def on_step(trainer, row: dict) -> None:
        if row["step"] % every == 0:
            rl_curve.append((row["flops"], point(trainer.policy)))

    direct, meter = P.rl(small, tok, pr.rl, P.reasoning_rewards(language=False), sizes.rl_steps,
                         cfg, callback=on_step, progress=False)  # fmt: skip
    done("small: direct RL", direct.policy, other=True)
    steps = P.sft_steps_for(n_params, rows, 32, meter.flops, seed=seed)
    distilled, history, _ = P.sft(
        small, tok, sft_prompts, sft_texts, steps, seed=seed, progress=False,
        eval_fn=lambda m: {"accuracy": point(m)}, eval_every=max(1, steps // 5),
    )  # fmt: skip
    done("small: distilled", distilled, other=True)
    sft_curve = [(P.sft_flops(n_params, rows, 32, r["step"] + 1, seed), r["accuracy"])
                 for r in history.rows if "accuracy" in r]  # fmt: skip
    out["curves"] = {"direct RL": rl_curve, "distilled": sft_curve}
    out["flops"] = {"direct RL": meter.flops, "distilled": P.sft_flops(n_params, rows, 32, steps, seed),
                    "distill_steps": steps}  # fmt: skip

    # Test-time compute.
    ks = tuple(k for k in KS if k <= sizes.vote_samples)
    models = {"base": base, "R1-Zero": zero.policy, "R1": final.policy,
              "small: distilled": distilled, "small: direct RL": direct.policy}  # fmt: skip
    out["cons_at_k"] = {
        name: test_time.cons_at_k(m, tok, pr.held_out, ks, P.MAX_NEW_TOKENS, seed=seed)
        for name, m in models.items()
    }
    out["budget"] = {
        name: test_time.budget_accuracy(models[name], tok, pr.held_out, BUDGETS, seed=seed)
        for name in ("R1-Zero", "R1")
    }
    out["seconds"]["test-time compute"] = round(time.perf_counter() - clock[0], 1)
    return out


# --------------------------------------------------------------------------------------------
# Rendering: JSON -> the Markdown tables of docs/benchmarks.md
# --------------------------------------------------------------------------------------------
STAGES = (
    ("R1-Zero", "base"),
    ("R1-Zero", "R1-Zero"),
    ("R1", "cold start"),
    ("R1", "reasoning RL"),
    ("R1", "SFT on rejection samples + non-reasoning"),
    ("R1", "RL for all scenarios (R1)"),
)
METRICS = (("accuracy", "%"), ("format", "%"), ("language", "%"), ("length", "tok"),
           ("other_accuracy", "%"), ("helpfulness", "%"))  # fmt: skip


def spread(values: list[float], unit: str = "%") -> str:
    """``"mean (min-max)"``: percentages for shares, one decimal for token counts."""
    if unit == "%":
        lo, mean, hi = (100 * min(values), 100 * statistics.fmean(values), 100 * max(values))
        return f"{mean:.0f}% ({lo:.0f}-{hi:.0f})"
    return f"{statistics.fmean(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def paired(runs: list[dict], a: str, b: str, key: str = "accuracy") -> str:
    """Seed by seed, stage ``a`` minus stage ``b`` in percentage points: mean (min to max), and
    in how many seeds ``a`` came out ahead, level and behind."""
    diffs = [100 * (r["stages"][a][key] - r["stages"][b][key]) for r in runs]
    ahead = sum(d > 0 for d in diffs)
    level = sum(d == 0 for d in diffs)
    return (
        f"{statistics.fmean(diffs):+.1f} points ({min(diffs):+.1f} to {max(diffs):+.1f}); "
        f"ahead in {ahead}, level in {level}, behind in {len(diffs) - ahead - level} of {len(diffs)} seeds"
    )


def _cells(runs: list[dict], name: str, keys=METRICS) -> list[str]:
    cells = []
    for key, unit in keys:
        values = [r["stages"][name][key] for r in runs if key in r["stages"][name]]
        cells.append(spread(values, unit) if values else "-")
    return cells


def render(result: dict) -> str:
    """The Markdown of every table, from a result JSON (``{"meta": ..., "seeds": {seed: run}}``)."""
    runs = [result["seeds"][s] for s in sorted(result["seeds"], key=int)]
    n = len(runs)
    head = ("| stage | accuracy | format | language consistency | length (tokens) | "
            "translation accuracy | helpfulness stand-in |")  # fmt: skip
    lines = [f"Stage by stage, {n} seeds, mean (min-max):", "", head, "|---" * 7 + "|"]
    for path, name in STAGES:
        label = name if path == "R1" or name != "base" else "base (both paths start here)"
        lines.append(f"| {label} | " + " | ".join(_cells(runs, name)) + " |")
    lines += ["", "The language-consistency reward (reasoning RL from the same cold start):", "",
              "| reasoning RL | accuracy | language consistency |", "|---|---|---|"]  # fmt: skip
    for name, label in (("reasoning RL", "accuracy + format + language"),
                        ("reasoning RL without the language reward", "accuracy + format")):  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(
            _cells(runs, name, (("accuracy", "%"), ("language", "%")))) + " |")  # fmt: skip
    with_, without = "reasoning RL", "reasoning RL without the language reward"
    lines += ["", f"With minus without the language reward, accuracy: {paired(runs, with_, without)}; "
              f"language consistency: {paired(runs, with_, without, 'language')}."]  # fmt: skip
    lines += ["", "Distillation vs RL on the small model, the same FLOPs each (R1 §4.1 in miniature):",
              "", "| small model | accuracy | language consistency | translation accuracy | "
              "training FLOPs |", "|---|---|---|---|---|"]  # fmt: skip
    for name in ("small base", "small: direct RL", "small: distilled"):
        flops = "-"
        if name != "small base":
            key = name.split(": ")[1]
            flops = f"{statistics.fmean(r['flops'][key] for r in runs):.2e}"
        cells = _cells(runs, name, (("accuracy", "%"), ("language", "%"), ("other_accuracy", "%")))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {flops} |")
    lines += ["", "Distilled minus direct RL, accuracy: "
              f"{paired(runs, 'small: distilled', 'small: direct RL')}."]  # fmt: skip
    ks = sorted({int(k) for r in runs for k in next(iter(r["cons_at_k"].values()))})
    lines += ["", "Majority voting: accuracy of the most common of k sampled answers (cons@k; "
              "k = 1 is pass@1):", "", "| model | " + " | ".join(f"k = {k}" for k in ks) + " |",
              "|---" * (len(ks) + 1) + "|"]  # fmt: skip
    for name in runs[0]["cons_at_k"]:
        cells = [spread([r["cons_at_k"][name][str(k)] for r in runs]) for k in ks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    budgets = sorted({int(b) for r in runs for b in next(iter(r["budget"].values()))})
    lines += ["", "A thinking budget: accuracy when the thinking is cut after b tokens:", "",
              "| model | " + " | ".join(f"b = {b}" for b in budgets) + " |",
              "|---" * (len(budgets) + 1) + "|"]  # fmt: skip
    for name in runs[0]["budget"]:
        cells = [spread([r["budget"][name][str(b)] for r in runs]) for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lengths = sorted({int(n) for r in runs for n in r["base_by_length"]})
    lines += ["", "The base model's own samples (4 per problem): accuracy by thinking length, pooled "
              "over seeds (right / samples):", "",
              "| thinking tokens | " + " | ".join(str(n) for n in lengths) + " |",
              "|---" * (len(lengths) + 1) + "|"]  # fmt: skip
    pooled = [[sum(r["base_by_length"].get(str(n), (0, 0))[i] for r in runs) for i in (0, 1)]
              for n in lengths]  # fmt: skip
    lines.append("| accuracy | " + " | ".join(
        f"{right / total:.0%} ({right}/{total})" for right, total in pooled) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="write the raw results to this JSON file")
    parser.add_argument("--render", type=Path, help="print the tables of a results JSON and stop")
    parser.add_argument("--fast", action="store_true", help="the FAST sizes (a smoke test)")
    args = parser.parse_args()
    if args.render:
        sys.stdout.write(render(json.loads(args.render.read_text())))
        return
    sizes = r1_pipeline.Sizes.fast() if args.fast else r1_pipeline.Sizes.full()
    result = {
        "meta": {
            "date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": 1, "sizes": asdict(sizes), "p_target": P_TARGET,
        },
        "seeds": {},
    }  # fmt: skip
    for seed in args.seeds:
        start = time.perf_counter()
        result["seeds"][str(seed)] = run_seed(seed, sizes)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n")
    sys.stdout.write(render(json.loads(json.dumps(result))))


if __name__ == "__main__":
    main()
