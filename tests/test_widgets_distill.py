"""The soft-target viewer redraws with the position and temperature the sliders give."""

from __future__ import annotations

import pytest
import torch

from course_lib.plots import distill as plots
from course_lib.widgets import distill as widgets


def test_soft_target_viewer_redraws_on_slider_change(monkeypatch):
    calls = []
    real = plots.next_token_distributions

    def spy(teacher, student, vocab, temperature, top_k, title):
        calls.append((teacher.clone(), temperature))
        return real(teacher, student, vocab, temperature, top_k, title)

    monkeypatch.setattr(plots, "next_token_distributions", spy)
    g = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    view = widgets.soft_target_viewer(teacher, student, list("abcd"), list("uvwxyz"))
    assert len(calls) == 1 and calls[0][1] == 1.0
    torch.testing.assert_close(calls[0][0], teacher[3])  # starts at the last position
    position, temperature = view.controls["position"], view.controls["temperature"]
    temperature.value = 3.0
    position.value = 1
    assert calls[-1][1] == pytest.approx(3.0)
    torch.testing.assert_close(calls[-1][0], teacher[1])
    # the figure is on the page, once: the Output shows exactly the latest drawing
    (shown,) = view.output.outputs
    assert "application/vnd.plotly.v1+json" in shown["data"]
    assert (
        "after …'ab'" in shown["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    )


def test_soft_target_viewer_refuses_bad_shapes():
    with pytest.raises(ValueError, match="same text"):
        widgets.soft_target_viewer(torch.zeros(3, 5), torch.zeros(3, 4), list("abc"), list("vwxyz"))
    with pytest.raises(ValueError, match="context has"):
        widgets.soft_target_viewer(torch.zeros(3, 5), torch.zeros(3, 5), list("ab"), list("vwxyz"))
