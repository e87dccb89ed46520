"""The notebook-00 dashboard: controls exist with the asked defaults and drive the figures."""

from __future__ import annotations

import html

import pytest

from course_lib import sizing
from course_lib.widgets import sizing as w


def test_dashboard_figures_follow_the_controls():
    a = w.dashboard_figures(2.0, 4, 4096, "T4")
    b = w.dashboard_figures(3.0, 16, 65536, "H100")
    assert "$5.576M" in html.unescape(a["cost"].layout.title.text)
    assert "$8.364M" in html.unescape(b["cost"].layout.title.text)
    # memory: weights at the chosen bits, KV at the chosen context, the chosen GPU's line
    assert a["memory"].data[0].y[1] == pytest.approx(1_777_088_000 * 4 / 8 / 1e9)
    assert b["memory"].data[0].y[1] == pytest.approx(1_777_088_000 * 16 / 8 / 1e9)
    assert b["memory"].data[1].y[1] == pytest.approx(28_672 * 65536 / 1e9)
    assert [s.y0 for s in a["memory"].layout.shapes] == [16]
    assert [s.y0 for s in b["memory"].layout.shapes] == [80]
    # decode: the MoE's bar uses its 37B active params
    r1 = a["decode"].data[0].y[0]
    assert r1 == pytest.approx(sizing.decode_tokens_per_s("DeepSeek-R1", 4, "T4", 4096))


def test_summary_lists_what_fits():
    text = w.dashboard_summary(2.0, 4, 4096, "T4")
    assert "$5.576M" in text and "R1-Distill-Qwen-1.5B" in text and "DeepSeek-R1," not in text


def test_dashboard_widget_wires_controls_to_figures():
    box = w.sizing_dashboard(gpu="RTX 4090")
    assert set(box.controls) == {"price_per_gpu_hour", "bits", "context_tokens", "gpu"}
    assert box.controls["gpu"].value == "RTX 4090"
    assert box.controls["price_per_gpu_hour"].value == 2.0
    assert [s.y0 for s in box.figures["memory"].layout.shapes] == [24]
    box.controls["gpu"].value = "M2 Ultra"
    assert [s.y0 for s in box.figures["memory"].layout.shapes] == [192]
    box.controls["price_per_gpu_hour"].value = 4.0
    assert "$11.152M" in html.unescape(box.figures["cost"].layout.title.text)


def test_dashboard_rejects_bad_defaults():
    with pytest.raises(ValueError, match="pick one of"):
        w.sizing_dashboard(bits=7)
    with pytest.raises(ValueError, match="use one of"):
        w.sizing_dashboard(gpu="GTX 1080")
