"""Benchmark: three ways to run the routed experts of DeepSeekMoE on the CPU.

1. ``padded``: the course's vectorised dispatch (``course_lib.moe.RoutedExperts``): token-expert
   pairs sorted by expert into an (E, capacity, d) buffer, three batched matmuls, scatter back.
2. ``per-expert loop``: a Python loop over experts, each running its tokens (what transformers'
   eager ``DeepseekV3Experts`` does).
3. ``per-token loop``: a Python loop over tokens (the tests' reference; only for small batches).

Measured: forward + backward time (min over repeats, one thread), for a balanced router and for a
collapsed one (every token to the same k experts, the padded buffer's worst case).

    python benchmarks/moe_dispatch.py            # prints a markdown table
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from course_lib.moe import DeepSeekMoE, naive_moe_loop


def per_expert_loop(moe: DeepSeekMoE, x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1, x.shape[-1])
    weights, indices, _ = moe.router(flat)
    ex = moe.experts
    out = torch.zeros_like(flat)
    for e in range(ex.n_experts):
        tok, slot = torch.where(indices == e)
        if tok.numel() == 0:
            continue
        h = flat[tok]
        y = (F.silu(h @ ex.w_gate[e]) * (h @ ex.w_up[e])) @ ex.w_down[e]
        out = out.index_add(0, tok, y * weights[tok, slot, None])
    if moe.shared is not None:
        out = out + moe.shared(flat)
    return out.view_as(x)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| tokens | experts (top-k) | router | padded ms | per-expert loop ms | per-token loop ms |"
    )
    print("|---|---|---|---|---|---|")
    for tokens, n_exp, k in ((256, 8, 2), (2048, 8, 2), (2048, 16, 4), (2048, 64, 6)):
        for router in ("balanced", "collapsed"):
            torch.manual_seed(0)
            moe = DeepSeekMoE(
                64, 32, n_routed_experts=n_exp, n_shared_experts=1, n_activated_experts=k
            )
            if router == "collapsed":
                with torch.no_grad():
                    moe.router.bias[:k] = 10.0
            x = torch.randn(1, tokens, 64)

            def fwd_bwd(forward, moe=moe, x=x):
                return lambda: forward(moe, x).pow(2).sum().backward()

            padded = best_time(fwd_bwd(lambda m, v: m(v)), args.repeats)
            loop = best_time(fwd_bwd(per_expert_loop), args.repeats)
            naive = best_time(fwd_bwd(naive_moe_loop), 1) if tokens <= 256 else float("nan")
            print(f"| {tokens} | {n_exp} ({k}) | {router} | {padded * 1e3:.1f} | {loop * 1e3:.1f} | "
                  f"{'-' if naive != naive else f'{naive * 1e3:.0f}'} |")  # fmt: skip


if __name__ == "__main__":
    main()
