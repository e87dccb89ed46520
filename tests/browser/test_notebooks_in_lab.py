"""Layer 6: every notebook as a learner sees it, in JupyterLab in headless Chromium (FAST mode).

Each notebook is opened and run (Run All) once; every control in every widget output is then
moved, and the page is read from the DOM before and after. Each test below asserts one rule on
that visit; the screenshots and a contact sheet go to ``COURSE_SHOTS`` (default ``build/shots``).
"""

from __future__ import annotations

import re

import pytest

from tests.browser.dom_checks import _overlap
from tests.browser.lab import ROOT

NAMES = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1500)]


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


def _check(visit, kind: str):
    v = visit
    assert not v.error, v.error
    found = v.problems.get(kind, [])
    assert not found, f"{v.name}: " + "\n".join(found)


def test_no_stderr_and_no_leftover_progress_bars(visit, name):
    """No stderr or error output anywhere: warnings we cause are fixed at the source, foreign
    libraries' noise is silenced where we call them. No progress bar stays on screen either."""
    _check(visit(name), "noise")


def test_every_control_changes_a_figure_or_output(visit, name):
    """Every widget output renders as widgets, and each slider, dropdown, checkbox and button in
    it changes something below it when moved (directly, or through its dashboard's button)."""
    v = visit(name)
    _check(v, "widgets")
    unchanged = [c for c in v.controls if not c.changed]
    assert not unchanged, unchanged


def test_figures_have_sane_axes_and_visible_titles(visit, name):
    _check(visit(name), "axes")


def test_no_dollar_amount_typeset_as_tex(visit, name):
    """A $ meant as currency, in Markdown, HTML or a plotly string, is not read as TeX math."""
    _check(visit(name), "tex")


def test_each_figure_is_drawn_once(visit, name):
    """Live curves redraw in place; a dashboard's static copy is not shown next to it."""
    _check(visit(name), "repeats")


def test_text_is_readable(visit, name):
    """No 'null' in figures, no float32 noise in printouts, no cut-off labels, no legend over
    tick labels, no overlapping text labels."""
    _check(visit(name), "text")


def test_no_console_errors(visit, name):
    """Zero console errors other than images that need the internet (badges)."""
    v = visit(name)
    assert not v.error, v.error
    assert not v.console, v.console


def test_live_grpo_curves_end_at_the_last_step(visit):
    """Notebook 04's live curves redraw in place up to the finished run. (A figure updated
    through a display handle stayed at its first draw: JupyterLab's plotly renderer ignores
    updates, so the page kept "step 10" while training went on to the end.)"""
    v = visit("04_grpo")
    assert not v.error, v.error
    live = [
        int(m.group(1))
        for f in v.report["figures"]
        for m in [re.fullmatch(r"GRPO, live \(step (\d+)\)", f["title"])]
        if m
    ]
    trained = [
        int(m.group(1))
        for o in v.report["outputs"]
        for m in [re.search(r"after (\d+) GRPO steps", o["text"])]
        if m
    ]
    assert len(live) == 1 and trained, (live, trained)
    assert live == trained[:1], f"the live figure shows step {live[0]}, training ran {trained[0]}"


def _page_text(v) -> str:
    return "\n".join(o["text"] for o in v.report["outputs"])


def test_distillation_steps_by_hand_show_they_match_the_library(visit):
    """Notebook 03 shows the learner an SFT row masked by hand and one KD step by hand, each with
    its agreement with the library: the page says how many positions carry a loss and that the
    weights after the hand-made step equal distill.train_on's."""
    v = visit("03_distillation")
    assert not v.error, v.error
    text = _page_text(v)
    masked = re.search(r"\.\.\. (\d+) of (\d+) positions carry a loss", text)
    assert masked and 0 < int(masked.group(1)) < int(masked.group(2)), text[:2000]
    gap = re.search(r"largest weight difference to distill\.train_on: (\S+)", text)
    assert gap and float(gap.group(1)) < 1e-6, gap and gap.group(0)


def test_grpo_loss_and_step_by_hand_show_they_match_the_library(visit):
    """Notebook 04 shows the assembled loss equal to grpo.grpo_loss for each aggregation, the
    1/|o| length bias in numbers (GRPO pushes each token of a 4-token answer 4x harder than one of
    a 16-token answer; DAPO and Dr. GRPO do not), and its hand-made step equal to
    GRPOTrainer.step."""
    v = visit("04_grpo")
    assert not v.error, v.error
    text = _page_text(v)
    equal = re.findall(
        r"^(\w+)\s+loss by hand ([-+]\d\.\d+) == grpo\.grpo_loss ([-+]\d\.\d+); gradients equal$",
        text,
        flags=re.M,
    )
    assert sorted(how for how, _, _ in equal) == ["dapo", "dr_grpo", "grpo"], equal
    assert all(mine == lib for _, mine, lib in equal), equal
    ratios = dict(re.findall(r"^(grpo|dapo|dr_grpo)\s+\d\.\d+\s+\d\.\d+\s+(\d+)x$", text, re.M))
    assert ratios == {"grpo": "4", "dapo": "1", "dr_grpo": "1"}, ratios
    gap = re.search(r"largest weight difference to GRPOTrainer\.step: (\S+)", text)
    assert gap and float(gap.group(1)) < 1e-6, gap and gap.group(0)


def test_moe_notebook_shows_the_written_out_layer_the_collapse_and_the_sweep(visit):
    """Notebook 01 as the learner sees it: the forward pass and the training step they read are
    checked equal to the library on the page, the collapsing router leaves idle experts, the
    balance-vs-loss sweep names every setting in its legend with no labels printed over each
    other, the playground offers V2's gate, and each of the four exercises answers 'Not yet'."""
    v = visit("01_mixture_of_experts")
    assert not v.error, v.error
    text = _page_text(v)
    assert "my_deepseek_moe == moe.DeepSeekMoE" in text
    assert "the hand-written step == train.train's step, bit for bit" in text
    idle = re.search(r"no balancing\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\[(\d+), (\d+)\]", text)
    assert idle and int(idle.group(1)) + int(idle.group(2)) > 0, "no idle expert shown"
    (sweep,) = [
        f for f in v.report["figures"] if f["title"].startswith("Collapse setting: balance")
    ]
    assert sweep["legend"] and not sweep["labels"], sweep["labels"]
    for setting in ("no balancing", "aux loss α=0.01", "aux-free γ=0.0001", "aux-free γ=0.1"):
        assert setting in sweep["strings"], (setting, sweep["strings"])
    gate = [c for c in v.controls if c.label == "gate"]
    assert gate and all(c.changed for c in gate), v.controls
    assert text.count("Not yet") >= 4


def test_mla_notebook_shows_the_matched_caches_and_its_four_exercises(visit):
    """Notebook 02: the title's 57x is the number its first cell prints, the experiment's three
    attentions show the caches the prose says (MHA 128, GQA-2 and MLA d_c = 28 both 32), the
    interleaved weights load with no difference (< 1e-5), and the four exercises answer 'Not yet'."""
    v = visit("02_multi_head_latent_attention")
    assert not v.error, v.error
    text = _page_text(v)
    ratio = re.search(r"MLA caches ([\d.]+)x less than MHA and ([\d.]+)x less than GQA-8", text)
    assert ratio and round(float(ratio.group(1))) == 57 and float(ratio.group(2)) == 3.6, ratio
    for name, cache in (("MHA", 128), ("GQA, 2 KV heads", 32), ("MLA, d_c = 28", 32)):
        assert re.search(rf"{re.escape(name)}\s+cache\s+{cache} numbers / token / layer", text), (
            name
        )
    diff = re.search(r"max \|diff\| = (\S+) \(outputs", text)
    assert diff and float(diff.group(1)) < 1e-5, diff
    assert text.count("Not yet") >= 4


def test_06_r1_pipeline_printouts_fit_and_figure_text_stays_apart(visit):
    """Notebook 06 prints a line of numbers per stage and draws three-panel comparisons: each
    printed line fits the page without wrapping (100 characters; the shots wrap at about 105),
    and no two texts of a figure (panel titles, bar labels) touch. (The generic rule allows a
    30% overlap; the stage comparison's panel titles overlapped by less and were unreadable.)"""
    v = visit("06_r1_pipeline")
    assert not v.error, v.error
    long = [
        (o["cell"], line)
        for o in v.report["outputs"]
        if o["mime"] == "application/vnd.jupyter.stdout"
        for line in o["text"].splitlines()
        if len(line) > 100
    ]
    assert not long, long
    touching = [
        (f["title"], ta, tb)
        for f in v.report["figures"]
        for i, (ta, a) in enumerate(f["labels"])
        for tb, b in f["labels"][i + 1 :]
        if _overlap(a, b) > 0
    ]
    assert not touching, touching
