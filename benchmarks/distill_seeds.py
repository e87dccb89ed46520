"""How much do notebook 03's student gaps depend on the random seed?

Runs the notebook's full-size recipe once for the teacher, then trains the four students for several
student seeds (initial weights) and prints greedy accuracy and pass@1 (T=0.6, top-p 0.95, 4 samples)
on the same held-out problems. Sizes mirror notebooks/03_distillation.ipynb (full mode).

    python benchmarks/distill_seeds.py            # seeds 1 2 3 (about 3-6 minutes on 2 cores)
    python benchmarks/distill_seeds.py 1 2 3 4 5
"""

from __future__ import annotations

import sys
import time

import torch

from course_lib import distill, formats, sampling, tasks
from course_lib.data import sft_rows
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer

TEACHER_CFG = dict(d_model=64, n_layers=2, n_heads=4, d_ff=192)
STUDENT_CFG = dict(d_model=48, n_layers=2, n_heads=4, d_ff=128)
MAX_LEN = 64


def new_model(cfg: dict, seed: int) -> TinySeek:
    torch.manual_seed(seed)
    return TinySeek(TinySeekConfig(max_seq_len=MAX_LEN, **cfg))


def main(seeds: list[int]) -> None:
    torch.set_num_threads(1)
    tok = default_tokenizer()
    start = time.perf_counter()
    teacher = new_model(TEACHER_CFG, 0)
    worked = tasks.arithmetic(4000, seed=1, digits=2)
    targets = [formats.format_target(e.answer, e.trace) for e in worked]
    data = sft_rows(tok, [e.prompt for e in worked], targets)
    distill.train_on(teacher, data, 450, batch_size=64, progress=False)
    problems = tasks.arithmetic(1500, seed=2, digits=2)
    prompts, answers = [e.prompt for e in problems], [e.answer for e in problems]
    comps = sampling.sample(teacher, tok, prompts, max_new_tokens=MAX_LEN - 12).texts
    report = distill.rejection_filter(prompts, comps, answers)
    print(report)
    sets = distill.student_datasets(report, tok, MAX_LEN)
    test = tasks.arithmetic(300, seed=3, digits=2)
    plan = {
        "answers only": (sets["answers only"], {}),
        "traces": (sets["traces"], {}),
        "logit KD": (sets["traces"], dict(teacher=teacher, temperature=2.0, kd_weight=0.5)),
        "unfiltered": (sets["unfiltered traces"], {}),
    }
    print(f"{'seed':>4} " + " ".join(f"{name:>24}" for name in plan))
    for seed in seeds:
        cells = []
        for data, extra in plan.values():
            model = new_model(STUDENT_CFG, seed)
            distill.train_on(model, data, 600, batch_size=32, progress=False, **extra)
            greedy = sampling.evaluate(model, tok, test, MAX_LEN - 12).accuracy
            p1 = sampling.evaluate(
                model, tok, test, MAX_LEN - 12, temperature=0.6, top_p=0.95, samples=4
            ).accuracy
            cells.append(f"greedy {greedy:5.1%} pass@1 {p1:5.1%}")
        print(f"{seed:>4} " + " ".join(f"{c:>24}" for c in cells), flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 2, 3])
