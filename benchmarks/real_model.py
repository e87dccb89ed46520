"""Benchmark: DeepSeek-R1-Distill-Qwen-1.5B's exact architecture on one GPU, NF4 vs bf16.

No download: the model is built with random weights from the real config (same shapes, so the same
memory traffic and FLOPs; the tokens it writes are noise, which does not change the speed), saved to a
local folder, and loaded back through the same `from_pretrained` path the course uses, once in bf16 and
once in bitsandbytes NF4 with double quantisation.

Measured per setting: weight memory, peak memory while generating, time to first token for a
512-token prompt, batch-1 decode tokens/s, batched (16) sampling tokens/s, and batch-1 decode as a %
of the memory-bandwidth roofline (tokens/s <= bandwidth / weight bytes; docs/references.md "Memory, speed and the claims").
Each is tried with plain `generate` (dynamic cache) and with a static cache, with which transformers
compiles the decoding step (torch.compile + CUDA graphs) where the weights allow it (bf16 yes; NF4 no).

    python benchmarks/real_model.py --out results.json      # needs a CUDA GPU and bitsandbytes
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import torch

# Vendor peak memory bandwidth in GB/s, by substring of torch.cuda.get_device_name().
BANDWIDTH_GBS = {
    "H200": 4800,
    "H100 80GB HBM3": 3350,  # SXM
    "H100 PCIe": 2000,
    "A100-SXM4-80GB": 2039,
    "A100": 1555,
    "L4": 300,
    "T4": 320,
    "RTX 4090": 1008,
}


def bandwidth_for(name: str) -> float | None:
    for key, value in BANDWIDTH_GBS.items():
        if key in name:
            return float(value)
    return None


def measured_copy_bandwidth() -> float:
    """Device-to-device copy of 2 GiB, bytes read + written per second (GB/s)."""
    x = torch.empty(2**30, dtype=torch.int16, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    n = 10
    for _ in range(n):
        y.copy_(x)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / n
    del x, y
    return 2 * 2**31 / dt / 1e9


def distill_1_5b_config():
    """DeepSeek-R1-Distill-Qwen-1.5B's ``Qwen2Config`` (its config.json on the hub; the sizes are
    those of ``architectures.CONFIGS["Qwen2.5-Math-1.5B"]``), to build a random-weight copy of the real
    size and measure memory and speed without a download."""
    from transformers import Qwen2Config

    from course_lib import architectures
    from course_lib.r1.stand_in import qwen2_dims

    return Qwen2Config(
        **qwen2_dims(architectures.CONFIGS["Qwen2.5-Math-1.5B"]),
        max_position_embeddings=131_072,
        rope_theta=10_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        hidden_act="silu",
        use_sliding_window=False,
        bos_token_id=151_646,
        eos_token_id=151_643,
        dtype="bfloat16",
    )


def build_random_checkpoint(folder: Path) -> None:
    from transformers import Qwen2ForCausalLM

    config = distill_1_5b_config()
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    torch.cuda.empty_cache()
    print(f"random checkpoint: {n_params / 1e9:.3f}B parameters -> {folder}", flush=True)


def load(folder: Path, quant: str):
    from transformers import AutoModelForCausalLM

    from course_lib.r1.loader import quantization_config

    kwargs = {"dtype": torch.bfloat16, "device_map": {"": 0}}
    if quant == "nf4":
        kwargs["quantization_config"] = quantization_config(torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    model.eval()
    return model


def time_generate(model, input_ids, new_tokens: int, **kw) -> float:
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        pad_token_id=0,
        **kw,
    )
    torch.cuda.synchronize()
    assert out.shape[1] == input_ids.shape[1] + new_tokens
    return time.perf_counter() - t


def bench_setting(model, setting: str, args) -> dict:
    vocab = model.config.vocab_size
    g = torch.Generator(device="cuda").manual_seed(0)
    prompt = torch.randint(0, vocab, (1, args.prompt_len), device="cuda", generator=g)
    kw: dict = {"do_sample": False}
    if setting == "static":
        # With a static cache, transformers compiles the one-token decoding step itself
        # (torch.compile, CUDA graphs); prompt processing stays eager.
        kw["cache_implementation"] = "static"
    # Warm up with the exact shapes that are timed (a static cache is sized per length and batch).
    time_generate(model, prompt, 1, **kw)
    time_generate(model, prompt, args.new_tokens, **kw)
    torch.cuda.reset_peak_memory_stats()
    ttft = min(time_generate(model, prompt, 1, **kw) for _ in range(3))
    decode = time_generate(model, prompt, args.new_tokens, **kw)
    tok_s = (args.new_tokens - 1) / max(decode - ttft, 1e-9)
    sample_kw = dict(kw, do_sample=True, temperature=0.6, top_p=0.95)
    batch_prompt = prompt.expand(args.batch, -1).contiguous()
    time_generate(model, batch_prompt, args.new_tokens, **sample_kw)
    batched = time_generate(model, batch_prompt, args.new_tokens, **sample_kw)
    peak = torch.cuda.max_memory_allocated()
    return {
        "compiled": getattr(model, "_compiled_call", None) is not None,
        "ttft_s": ttft,
        "decode_tok_s": tok_s,
        "batched_tok_s": args.batch * args.new_tokens / batched,
        "peak_gib": peak / 2**30,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--quant", nargs="+", default=["nf4", "bf16"], choices=["nf4", "bf16"])
    p.add_argument(
        "--settings",
        nargs="+",
        default=["dynamic", "static"],
        choices=["dynamic", "static"],
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit(
            "This benchmark needs a CUDA GPU (see docs/benchmarks.md for recorded numbers)."
        )

    name = torch.cuda.get_device_name(0)
    vendor_bw = bandwidth_for(name)
    result = {
        "gpu": name,
        "torch": torch.__version__,
        "vendor_bandwidth_gbs": vendor_bw,
        "copy_bandwidth_gbs": measured_copy_bandwidth(),
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "batch": args.batch,
        "runs": [],
    }
    import bitsandbytes
    import transformers

    result["transformers"] = transformers.__version__
    result["bitsandbytes"] = bitsandbytes.__version__
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "r1-distill-qwen-1.5b-random"
        build_random_checkpoint(folder)
        for quant in args.quant:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            t = time.perf_counter()
            model = load(folder, quant)
            load_s = time.perf_counter() - t
            weights = torch.cuda.memory_allocated() - base
            footprint = model.get_memory_footprint()
            for setting in args.settings:
                row = {"quant": quant, "setting": setting, "load_s": load_s}
                row["weight_gib"] = weights / 2**30
                row["footprint_gib"] = footprint / 2**30
                try:
                    row.update(bench_setting(model, setting, args))
                    if vendor_bw:
                        # A decode step reads every weight once, except the input embedding table,
                        # of which it reads one row per token.
                        emb = model.get_input_embeddings().weight
                        read = footprint - emb.numel() * emb.element_size()
                        row["bytes_read_per_token_gib"] = read / 2**30
                        roof = vendor_bw * 1e9 / read
                        row["roofline_tok_s"] = roof
                        row["roofline_pct"] = 100 * row["decode_tok_s"] / roof
                except Exception as err:  # report and go on: e.g. compile unsupported for 4-bit
                    row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
                print(json.dumps(row), flush=True)
                result["runs"].append(row)
                torch._dynamo.reset()
            del model
            gc.collect()
            torch.cuda.empty_cache()

    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print(format_markdown(result))
    return 0


def format_markdown(result: dict) -> str:
    lines = [
        f"GPU: {result['gpu']} (vendor bandwidth {result['vendor_bandwidth_gbs']} GB/s, "
        f"measured copy {result['copy_bandwidth_gbs']:.0f} GB/s); torch {result['torch']}, "
        f"transformers {result['transformers']}, bitsandbytes {result['bitsandbytes']}; "
        f"prompt {result['prompt_len']} tokens, {result['new_tokens']} new tokens, batch {result['batch']}",
        "",
        "| weights | cache | compiled | weight mem GiB | peak GiB | TTFT ms | decode tok/s (b=1) | "
        "sampling tok/s (b=16) | % of roofline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        if "error" in r:
            lines.append(
                f"| {r['quant']} | {r['setting']} | {r['weight_gib']:.2f} | failed: {r['error']} |||||"
            )
            continue
        pct = f"{r['roofline_pct']:.1f}%" if "roofline_pct" in r else "-"
        lines.append(
            f"| {r['quant']} | {r['setting']} | {'yes' if r['compiled'] else 'no'} | "
            f"{r['weight_gib']:.2f} | {r['peak_gib']:.2f} | "
            f"{1000 * r['ttft_s']:.0f} | {r['decode_tok_s']:.1f} | {r['batched_tok_s']:.0f} | {pct} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
