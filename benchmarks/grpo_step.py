"""Seconds per GRPO step on TinySeek (notebook 04's settings), with 1 and with 2 torch threads.

    python benchmarks/grpo_step.py [steps]

Tiny models spend their time in many small kernels. On an idle 2-core machine two intra-op threads
are a little faster than one (0.21 vs 0.27 s per step measured at load 1.3); on a busy one, two
threads were 7-16x slower than one (load 6-11). Prints the numbers; asserts nothing.
"""

from __future__ import annotations

import sys
import time

import torch

from course_lib import grpo_trainer, runtime, students, tasks
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer


def seconds_per_step(threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    runtime.seed_everything(0)
    exs = [e for e in tasks.arithmetic(400, seed=1, digits=2) if students.needs_carry(e.prompt)]
    model = TinySeek(TinySeekConfig(max_seq_len=96))
    cfg = grpo_trainer.GRPOConfig(
        group_size=8, prompts_per_step=8, max_new_tokens=40, lr=2e-4, iterations=2
    )
    trainer = grpo_trainer.GRPOTrainer(model, default_tokenizer(), exs, cfg)
    trainer.step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    default = torch.get_num_threads()
    for threads in (1, 2):
        print(
            f"torch threads {threads}: {seconds_per_step(threads, steps):.3f} s per GRPO step "
            f"(8 prompts x G=8, up to 40 new tokens, 2 optimisation steps)"
        )
    torch.set_num_threads(default)


if __name__ == "__main__":
    main()
