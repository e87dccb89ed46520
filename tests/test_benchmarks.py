"""The recorded benchmark tables are the script's own output for the recorded raw results, and the
claims notebooks 03 and 04 make hold in every seed their benchmarks recorded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------------------------------------
# Notebooks 03 and 04 over several seeds: the tables are the scripts' rendering of the recorded
# JSON, and every claim the notebooks' text makes holds in every recorded seed.
# ---------------------------------------------------------------------------------------------
SEED_SCRIPTS = ("distill_seeds", "grpo_seeds")


def _seed_script(name):
    module = _load_script(name)
    return module, json.loads(module.DATA.read_text())


@pytest.mark.parametrize("name", SEED_SCRIPTS)
def test_seed_tables_are_the_scripts_rendering_of_the_recorded_runs(name):
    module, result = _seed_script(name)
    assert module.render(result) in (ROOT / "docs" / "benchmarks.md").read_text()
    assert result["notebook"] == module.NOTEBOOK.name


@pytest.mark.parametrize("name", SEED_SCRIPTS)
def test_what_the_notebook_says_holds_in_every_recorded_seed(name):
    module, result = _seed_script(name)
    claims = module.claims(result)
    assert len(result["seeds"]) >= 3 and len(claims) >= 5
    assert all(claims.values()), [text for text, ok in claims.items() if not ok]


def test_the_claims_can_fail():
    """Doctored results break the claims they contradict (the checks are not vacuous)."""
    import copy

    distill, result = _seed_script("distill_seeds")
    bad = copy.deepcopy(result)
    acc = bad["seeds"][0]["accuracy"]
    acc["answers only"], acc["traces (R1 recipe)"] = acc["traces (R1 recipe)"], acc["answers only"]
    failed = [text for text, ok in distill.claims(bad).items() if not ok]
    assert any("traces beat answers only" in text for text in failed)

    grpo, result = _seed_script("grpo_seeds")
    bad = copy.deepcopy(result)
    hack = bad["seeds"][-1]["hacking"]["naive format reward"]["last"]
    hack["format"] = hack["naive_format"]  # as if nothing malformed had been paid
    failed = [text for text, ok in grpo.claims(bad).items() if not ok]
    assert any("naive format reward is gamed" in text for text in failed)


def test_the_claims_that_nothing_holds_can_fail_too():
    """A method effect steadier than the seed's, or a difference of one sign in every seed, breaks
    the claims that say the seeds disagree."""
    import copy

    distill, result = _seed_script("distill_seeds")
    bad = copy.deepcopy(result)
    for i, seed in enumerate(bad["seeds"]):  # KD a steady 2 points above traces, one seed below
        acc = seed["accuracy"]
        for metric in ("greedy", "pass@1"):
            step = -0.01 if i == 0 else 0.02
            acc["logit KD"][metric] = acc["traces (R1 recipe)"][metric] + step
    failed = [text for text, ok in distill.claims(bad).items() if not ok]
    assert any("seed moves KD" in text for text in failed), failed
    bad = copy.deepcopy(result)
    for seed in bad["seeds"]:  # the unfiltered student behind at pass@1 in every seed
        acc = seed["accuracy"]
        acc["unfiltered traces"]["pass@1"] = acc["traces (R1 recipe)"]["pass@1"] - 0.15
    failed = [text for text, ok in distill.claims(bad).items() if not ok]
    assert any("not in every seed" in text for text in failed), failed

    grpo, result = _seed_script("grpo_seeds")
    bad = copy.deepcopy(result)
    for seed in bad["seeds"]:  # Dr. GRPO's KL above GRPO's in every seed
        runs = seed["ablations"]
        runs["Dr. GRPO"]["last"]["kl"] = runs["GRPO"]["last"]["kl"] + 0.05
    failed = [text for text, ok in grpo.claims(bad).items() if not ok]
    assert any("Dr. GRPO against GRPO: the KL" in text for text in failed), failed
    bad = copy.deepcopy(result)
    for i, seed in enumerate(bad["seeds"]):  # Dr. GRPO a steady 5 points ahead, one seed behind
        runs = seed["ablations"]
        runs["Dr. GRPO"]["eval_last2"] = runs["GRPO"]["eval_last2"] + (-0.01 if i == 0 else 0.05)
    failed = [text for text, ok in grpo.claims(bad).items() if not ok]
    assert any("varies over seeds by more than its mean" in text for text in failed), failed


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


# ----- notebook 01's and 02's multi-seed tables ---------------------------------------------------
def _notebook_sources(stem: str) -> tuple[str, list[str]]:
    cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    markdown = "\n".join(t for c, t in zip(cells, text) if c["cell_type"] == "markdown")
    return markdown, [t for c, t in zip(cells, text) if c["cell_type"] == "code"]


@pytest.mark.parametrize(
    "script,recorded,notebook",
    [
        ("moe_balance", "moe_balance", "01_mixture_of_experts"),
        ("mla_quality", "mla_quality", "02_multi_head_latent_attention"),
        ("mla_quality", "mla_quality_2400", "02_multi_head_latent_attention"),
    ],
)
def test_multi_seed_tables_in_docs_and_notebook_are_the_scripts_rendering(
    script, recorded, notebook
):
    """Every table row docs/benchmarks.md and the notebook quote is format_markdown of the JSON."""
    module = _load_script(script)
    result = json.loads((ROOT / "docs" / "benchmarks_data" / f"{recorded}.json").read_text())
    assert len(result["seeds"]) >= 3  # a comparison the prose concludes from holds over >= 3 seeds
    rows = [ln for ln in module.format_markdown(result).splitlines() if ln.startswith("| ")]
    assert len(rows) >= 6
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    markdown, _ = _notebook_sources(notebook)
    for row in rows:
        assert row in docs, f"{script}: row not in docs/benchmarks.md: {row}"
        assert row in markdown, f"{script}: row not in notebook {notebook}: {row}"


def test_notebook_01_sweep_figure_data_is_the_recorded_sweep():
    """The SWEEP literal notebook 01 plots is sweep_points of the recorded JSON."""
    import ast

    module = _load_script("moe_balance")
    result = json.loads((ROOT / "docs" / "benchmarks_data" / "moe_balance.json").read_text())
    _, code = _notebook_sources("01_mixture_of_experts")
    (cell,) = [c for c in code if "\nSWEEP = {" in c]
    assign = next(
        n for n in ast.parse(cell).body if isinstance(n, ast.Assign) and n.targets[0].id == "SWEEP"
    )
    assert ast.literal_eval(assign.value) == {
        k: tuple(v) for k, v in module.sweep_points(result).items()
    }


def test_moe_balance_statistics_by_hand():
    module = _load_script("moe_balance")
    stats = module.balance_stats([[10, 10, 0, 20], [10, 10, 10, 10]])
    # layer 0: mean 10, max 20 -> max/mean 2, MaxVio 1; layer 1 balanced; one expert under 1%
    assert stats == {"max_over_mean": 1.5, "max_vio": 1.0, "min_share": 0.0, "dead": 1}


def test_merge_adds_only_new_seeds_with_the_same_settings():
    module = _load_script("mla_quality")
    old = dict(steps=10, lr=0.1, variants=["MHA"], seeds=[0], runs=[{"seed": 0}], total_seconds=5)
    new = dict(steps=10, lr=0.1, variants=["MHA"], seeds=[1], runs=[{"seed": 1}], total_seconds=7)
    merged = module.merge(old, new)
    assert merged["seeds"] == [0, 1] and len(merged["runs"]) == 2 and merged["total_seconds"] == 12
    with pytest.raises(ValueError, match="new seeds"):
        module.merge(old, old)
    with pytest.raises(ValueError, match="same settings"):
        module.merge(old, new | {"steps": 20})
