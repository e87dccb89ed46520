"""Exercise checkers for notebook 00: the learner writes three calculators, we run them on real cases.

Each checker compares the learner's function with ``course_lib.sizing`` and, when it disagrees,
recognises the usual slips (bits not divided by 8, K or V forgotten, 2 bytes per element hard-coded,
GiB instead of GB, the total instead of the active parameters of an MoE) and names the one it sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from course_lib import architectures, published, sizing
from course_lib.checks.base import CheckResult, failed, passed


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel)


def _call(fn: Callable, *args) -> tuple[float | None, str]:
    try:
        value = fn(*args)
        if value is None:
            return None, "returned None (replace the `return None` line with your formula)"
        return float(value), ""
    except Exception as exc:  # the learner's code may raise anything; report it kindly
        return None, f"raised {type(exc).__name__}: {exc}"


def check_weights_gb(fn: Callable[[float, float], float]) -> CheckResult:
    """``fn(n_params, bits) -> GB`` (1 GB = 1e9 bytes) for every R1 model at 16/8/4/1.58 bits."""
    for name, spec in published.R1_MODELS.items():
        for bits in sizing.BITS_CHOICES:
            want = sizing.weight_bytes(spec.params_total, bits) / sizing.GB
            got, err = _call(fn, spec.params_total, bits)
            if err:
                return failed(f"{name} at {bits:g} bits: {err}", "return a number of GB.")
            if _close(got, want):
                continue
            hint = "bytes = n_params x bits / 8, then divide by 1e9 for GB."
            if _close(got, want * 8):
                hint = "you returned gigabits: divide bits by 8 to get bytes."
            elif _close(got, want * 1e9):
                hint = "that is bytes: divide by 1e9 for GB."
            elif _close(got, want * 1e9 / 2**30):
                hint = "that is GiB (2**30 bytes); the course uses GB = 1e9 bytes like GPU vendors."
            return failed(
                f"{name} at {bits:g} bits: got {got:.4g} GB, expected {want:.4g} GB.", hint
            )
    return passed(
        f"all {len(published.R1_MODELS) * len(sizing.BITS_CHOICES)} model x bits cases match."
    )


def check_gqa_kv_bytes(fn: Callable[[int, int, int, int, float], float]) -> CheckResult:
    """``fn(n_layers, n_kv_heads, head_dim, context_tokens, bytes_per_element) -> bytes``."""
    cases = [
        (name, cfg, ctx, bpe)
        for name, cfg in architectures.CONFIGS.items()
        if cfg.attention == "gqa"
        for ctx, bpe in ((1, 2), (4096, 2), (32_768, 1))
    ]
    results = []  # (name, cfg, ctx, bpe, got, want)
    for name, cfg, ctx, bpe in cases:
        got, err = _call(fn, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, ctx, bpe)
        if err:
            return failed(f"{name}: {err}", "return the number of bytes.")
        results.append((name, cfg, ctx, bpe, got, sizing.kv_cache_bytes(cfg, ctx, 1, bpe)))
    wrong = [r for r in results if not _close(r[4], r[5])]
    if not wrong:
        return passed(f"all {len(cases)} cases on real GQA configs match.")

    def every(pred) -> bool:  # a slip is diagnosed only if it explains every case
        return all(pred(*r) for r in results)

    hint = "per token and layer: a K and a V vector for each KV head, head_dim numbers each."
    if every(lambda n, c, t, e, got, want: _close(got * 2, want)):
        hint = "you cached only K (or only V): both are stored, hence the factor 2."
    elif every(lambda n, c, t, e, got, want: _close(got, want / e * 2)):
        hint = (
            "you used 2 bytes per element whatever bytes_per_element says; the 32,768-token cases "
            "pass 1 (an fp8 cache): multiply by bytes_per_element."
        )
    elif every(lambda n, c, t, e, got, want: _close(got * e, want)):
        hint = "multiply the element count by bytes_per_element (2 for bf16)."
    elif every(lambda n, c, t, e, got, want: _close(got * c.n_layers, want)):
        hint = "every layer has its own cache: multiply by n_layers."
    name, _, ctx, bpe, got, want = wrong[0]
    return failed(
        f"{name}, {ctx:,} tokens, {bpe:g} B/element: got {got:,.0f}, expected {want:,.0f} bytes "
        f"({len(wrong)} of {len(cases)} cases differ).",
        hint,
    )


def check_decode_bound(fn: Callable[[float, float, float, float], float]) -> CheckResult:
    """``fn(params_total, params_active, bits, bandwidth_gbs) -> tokens/s``, the batch-1 bound.

    Every R1 model on every GPU at 4 and 16 bits; the expected value counts every active weight as
    read once per token (``sizing.decode_bound``; the notebook refines it by the embedding).
    """
    for name, spec in published.R1_MODELS.items():
        for gpu in published.GPUS.values():
            for bits in (4, 16):
                want = sizing.decode_bound(spec.params_active, bits, gpu.bandwidth_gbs)
                got, err = _call(fn, spec.params_total, spec.params_active, bits, gpu.bandwidth_gbs)
                if err:
                    return failed(f"{name} on {gpu.name}: {err}", "return tokens per second.")
                if _close(got, want):
                    continue
                hint = (
                    "tokens/s = (bandwidth in bytes/s) / (bytes of active weights read per token)."
                )
                with_total = sizing.decode_bound(spec.params_total, bits, gpu.bandwidth_gbs)
                other_bits = sizing.decode_bound(spec.params_active, 20 - bits, gpu.bandwidth_gbs)
                if spec.is_moe and _close(got, with_total):
                    hint = (
                        f"you divided by all {spec.params_total / 1e9:.0f}B parameters: a token of an "
                        f"MoE reads only the active ones ({spec.params_active / 1e9:.0f}B), so use "
                        "params_active."
                    )
                elif _close(got * 1e9, want):
                    hint = "bandwidth is in GB/s: multiply by 1e9 to get bytes per second."
                elif _close(got, want * 2**30 / 1e9):
                    hint = (
                        "that is GiB/s (2**30 bytes): the vendors' GB/s are 1e9 bytes per second, "
                        "so multiply bandwidth_gbs by 1e9."
                    )
                elif _close(got, want * 8) or _close(got * 8, want):
                    hint = "check bits vs bytes: bytes = params x bits / 8."
                elif _close(got, other_bits):
                    hint = "your result ignores bits: at 4 bits a weight takes a quarter of 16."
                return failed(
                    f"{name} at {bits} bits on {gpu.name}: got {got:.4g}, expected {want:.4g} "
                    "tokens/s.",
                    hint,
                )
    return passed("the bound matches for every R1 model on every GPU, at 4 and 16 bits.")
