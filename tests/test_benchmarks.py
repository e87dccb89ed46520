"""The recorded benchmark tables are the script's own output for the recorded raw results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_script(name: str = "real_model"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_checkpoint_has_the_1_5b_distills_shape():
    """The benchmark's random-weight model has the real distill's config and parameter count."""
    import torch
    from transformers import Qwen2ForCausalLM

    from course_lib import published

    cfg = _load_script().distill_1_5b_config()
    assert (cfg.max_position_embeddings, cfg.rms_norm_eps, cfg.tie_word_embeddings) == (
        131_072, 1e-6, False,
    )  # fmt: skip
    assert cfg.rope_parameters["rope_theta"] == 10_000 and cfg.dtype == torch.bfloat16
    with torch.device("meta"):
        model = Qwen2ForCausalLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert n == published.R1_MODELS["R1-Distill-Qwen-1.5B"].params_total


def test_bandwidth_lookup():
    rm = _load_script()
    assert rm.bandwidth_for("NVIDIA H100 80GB HBM3") == 3350
    assert rm.bandwidth_for("Tesla T4") == 320
    assert rm.bandwidth_for("Some Future GPU") is None


def test_docs_table_rows_come_from_recorded_json():
    rm = _load_script()
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    files = sorted((ROOT / "docs" / "benchmarks_data").glob("real_model_*.json"))
    assert files
    for path in files:
        result = json.loads(path.read_text())
        rows = [line for line in rm.format_markdown(result).splitlines() if line.startswith("| ")]
        assert len(rows) >= 3  # header + separator + at least one run
        for row in rows[2:]:
            assert row in docs, f"{path.name}: row not in docs/benchmarks.md: {row}"
        for run in result["runs"]:
            if "roofline_pct" in run:
                expected = 100 * run["decode_tok_s"] * run["bytes_read_per_token_gib"] * 2**30
                assert (
                    abs(expected / (result["vendor_bandwidth_gbs"] * 1e9) - run["roofline_pct"])
                    < 1e-6
                )


# ---------------------------------------------------------------- notebook 06's multi-seed table

R1_JSON = ROOT / "docs" / "benchmarks_data" / "r1_pipeline_seeds.json"
R1_BEGIN = "<!-- r1_pipeline_seeds: begin"
R1_END = "<!-- r1_pipeline_seeds: end -->"


def _between_markers(text: str) -> str:
    assert R1_BEGIN in text and R1_END in text, "the r1_pipeline_seeds markers are missing"
    block = text.split(R1_BEGIN, 1)[1].split(R1_END, 1)[0]
    return block.split("-->", 1)[1].strip("\n") + "\n"  # drop the rest of the begin marker


def test_r1_pipeline_tables_are_the_rendering_of_the_recorded_json():
    """docs/benchmarks.md and notebook 06 (section 12) show exactly what the script renders from
    the committed raw results: nobody edits the numbers by hand."""
    result = json.loads(R1_JSON.read_text())
    assert len(result["seeds"]) >= 3, "a multi-seed claim needs at least 3 seeds"
    rendered = _load_script("r1_pipeline_seeds").render(result)
    assert _between_markers((ROOT / "docs" / "benchmarks.md").read_text()) == rendered
    notebook = json.loads((ROOT / "notebooks" / "06_r1_pipeline.ipynb").read_text())
    markdown = "\n".join(
        "".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"
    )
    assert _between_markers(markdown) == rendered


def test_r1_pipeline_spread_and_render_by_hand():
    script = _load_script("r1_pipeline_seeds")
    assert script.spread([0.5, 0.25, 1.0]) == "58% (25-100)"
    assert script.spread([20.0, 21.0], "tok") == "20.5 (20.0-21.0)"
    one = {"accuracy": 0.5, "format": 1.0, "language": 0.5, "length": 20.0}
    stages = {name: dict(one) for _, name in script.STAGES}
    stages.update({n: dict(one) for n in ("reasoning RL without the language reward",
                                          "small base", "small: direct RL", "small: distilled")})  # fmt: skip
    run = {"stages": stages, "flops": {"direct RL": 2e10, "distilled": 2e10},
           "cons_at_k": {"base": {"1": 0.5, "2": 0.25}}, "budget": {"R1": {"0": 0.0, "16": 1.0}},
           "base_by_length": {"13": [0, 3], "15": [2, 2]}}  # fmt: skip
    table = script.render({"seeds": {"0": run, "1": run, "2": run}})
    assert "Stage by stage, 3 seeds" in table
    assert (
        "| base (both paths start here) | 50% (50-50) | 100% (100-100) | 50% (50-50) | 20.0 (20.0-20.0) | - | - |"
        in table
    )
    assert (
        "| base | 50% (50-50) | 25% (25-25) |" in table
        and "| R1 | 0% (0-0) | 100% (100-100) |" in table
    )
    assert "| small: direct RL | 50% (50-50) | 50% (50-50) | - | 2.00e+10 |" in table
    assert "| accuracy | 0% (0/9) | 100% (6/6) |" in table  # pooled over the three seeds
    worse = {**run, "stages": {**stages, "small: direct RL": {**one, "accuracy": 0.4}}}
    paired = script.paired([run, worse, worse], "small: distilled", "small: direct RL")
    assert paired == "+6.7 points (+0.0 to +10.0); ahead in 2, level in 1, behind in 0 of 3 seeds"


def test_grading_table_comes_from_recorded_json_and_keeps_the_bound():
    """Every grader stays under its time bound per megabyte of adversarial text (as recorded by
    benchmarks/grading.py), and the docs table is the script's output for the recorded JSON."""
    grading = _load_script("grading")
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    files = sorted((ROOT / "docs" / "benchmarks_data").glob("grading_*.json"))
    assert files
    for path in files:
        result = json.loads(path.read_text())
        assert result["bound_s_per_mb"] == grading.BOUND_S_PER_MB
        for row in grading.format_markdown(result).splitlines()[2:]:
            assert row in docs, f"{path.name}: row not in docs/benchmarks.md: {row}"
        library = [r for r in result["rows"] if r["kind"] == "library"]
        assert {r["grader"] for r in library} == set(grading.GRADERS)
        assert max(r["chars"] for r in library) >= 800_000  # the bound is shown on long text
        for r in library:
            per_mb = r["seconds"] / (r["chars"] / 1e6)
            assert per_mb <= grading.BOUND_S_PER_MB, f"{path.name}: {r}"
