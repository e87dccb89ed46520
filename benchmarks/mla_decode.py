"""Decode time per token of one MLA layer, naive cache vs absorbed cache, across context lengths.

    python benchmarks/mla_decode.py                  # V2-proportioned toy layer
    python benchmarks/mla_decode.py --contexts 1024 8192 --steps 32

Prints a table (ms per token and the naive/absorbed ratio) and the `uptime` load, since timings on a
shared CPU depend on what else runs. Nothing is asserted: unit tests never check timings.
"""

from __future__ import annotations

import argparse
import os

import torch

from course_lib.mla import MultiHeadLatentAttention, decode_step_seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contexts", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    p.add_argument("--steps", type=int, default=16, help="timed steps per point (fastest counts)")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head-dim", type=int, default=32, help="d_h; latent = 4 d_h, RoPE = d_h / 2")
    args = p.parse_args()
    torch.manual_seed(0)
    d_h = args.head_dim
    attn = MultiHeadLatentAttention(
        args.d_model, args.heads, kv_lora_rank=4 * d_h, qk_nope_head_dim=d_h,
        qk_rope_head_dim=d_h // 2, v_head_dim=d_h,
    ).eval()  # fmt: skip
    print(
        f"MLA layer: d_model={args.d_model}, heads={args.heads}, d_h={d_h}; cache per token "
        f"naive {attn.cache_elements_per_token('naive')} vs absorbed "
        f"{attn.cache_elements_per_token('absorbed')} numbers"
    )
    print(f"{'context':>8} {'naive ms':>10} {'absorbed ms':>12} {'ratio':>7}")
    for ctx in args.contexts:
        n = decode_step_seconds(attn, ctx, "naive", steps=args.steps)
        a = decode_step_seconds(attn, ctx, "absorbed", steps=args.steps)
        print(f"{ctx:>8} {1e3 * n:>10.2f} {1e3 * a:>12.2f} {n / a:>7.1f}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
