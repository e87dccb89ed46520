"""The roofline: is a forward pass limited by arithmetic or by memory? Numbers in, numbers out.

A GPU does two things per second: arithmetic (its peak FLOP/s) and reading memory (its bandwidth). A
pass of a decoder over T tokens costs about 2 FLOPs per matmul weight per token but reads each weight
once per pass, however many tokens share it; so its *arithmetic intensity*, FLOPs per byte read, grows
with T. Below the GPU's ridge point (peak / bandwidth) memory sets the time, above it compute does:
decoding one token is memory-bound, reading a long prompt (the prefill) compute-bound. This is the
classic roofline model (Williams, Waterman and Patterson, CACM 2009).

Simplified: attention's own FLOPs (the scores) are left out, and an MoE's routed experts are read as
if the tokens chose them evenly (:func:`course_lib.sizing.params_read`). Bytes and GB as in
:mod:`course_lib.sizing`. Nothing runs on import.
"""

from __future__ import annotations

from dataclasses import dataclass

from course_lib import validate
from course_lib.published import GPU, GPUS, ModelSpec
from course_lib.sizing import (
    GB,
    get_gpu,
    get_model,
    kv_cache_bytes,
    params_read,
    weight_bytes,
)


@dataclass(frozen=True)
class Roofline:
    """One forward pass on one GPU: its FLOPs and bytes, and which of the two sets its time."""

    tokens: int  # tokens the pass produces or processes (prompt length, or batch x 1 when decoding)
    flops: float
    bytes: float
    peak_tflops: float
    bandwidth_gbs: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: FLOPs per byte read."""
        return self.flops / self.bytes

    @property
    def ridge(self) -> float:
        """The GPU's FLOPs per byte at which compute and memory take equally long."""
        return self.peak_tflops * 1e12 / (self.bandwidth_gbs * GB)

    @property
    def compute_s(self) -> float:
        return self.flops / (self.peak_tflops * 1e12)

    @property
    def memory_s(self) -> float:
        return self.bytes / (self.bandwidth_gbs * GB)

    @property
    def seconds(self) -> float:
        """Lower bound on the pass's time: the slower of the two."""
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def roofline(
    model: str | ModelSpec,
    bits: float,
    gpu: str | GPU,
    new_tokens: int = 1,
    batch: int = 1,
    context_tokens: int = 0,
    peak_tflops: float | None = None,
    kv_bytes_per_element: float = 2,
) -> Roofline:
    """The roofline of one pass: ``batch`` sequences, each adding ``new_tokens`` to a context of
    ``context_tokens`` (prefill: ``new_tokens`` = the prompt; decoding: ``new_tokens=1``).

    FLOPs = 2 x matmul weights per token x tokens (the input embedding is a lookup, not a matmul;
    attention scores left out). Bytes = the weights the pass reads (``params_read``) at ``bits`` plus
    the KV cache read and written. Prefill of a long prompt does hundreds of FLOPs per byte and is
    compute-bound; decoding one token does about 2 FLOPs per weight byte at 8 bits and is
    memory-bound. ``peak_tflops`` defaults to the GPU's 16-bit tensor-core peak.
    """
    g = get_gpu(gpu)
    spec = get_model(model)
    peak = g.bf16_tflops if peak_tflops is None else peak_tflops
    if peak is None:
        known = [n for n, x in GPUS.items() if x.bf16_tflops]
        raise ValueError(
            f"No 16-bit peak is recorded for {g.name}; pass peak_tflops= (from its datasheet) or use "
            f"one of {known}."
        )
    peak = validate.number(
        "peak_tflops", peak, "pass the GPU's dense 16-bit TFLOP/s, e.g. 65 for a T4.", low=0,
        low_open=True,
    )  # fmt: skip
    t = validate.number(
        "new_tokens", new_tokens, "pass e.g. 1 (decoding) or 512 (a prompt).", low=1, integer=True
    )
    b = validate.number(
        "batch", batch, "pass the number of sequences, e.g. 1.", low=1, integer=True
    )
    read = params_read(spec, t * b)
    per_token = params_read(spec, 1)
    matmul = sum(v for k, v in per_token.items() if k != "embedding")
    flops = 2.0 * matmul * t * b
    kv = kv_cache_bytes(spec, context_tokens, b, kv_bytes_per_element) + kv_cache_bytes(
        spec, t, b, kv_bytes_per_element
    )
    return Roofline(
        t * b, flops, weight_bytes(sum(read.values()), bits) + kv, peak, g.bandwidth_gbs
    )
