import ipywidgets as W
import pytest

from course_lib.moe_lab import make_data, moe_config, run_variant
from course_lib.widgets.moe import balancing_playground, playground_config, run_figures


def test_playground_config_keeps_total_expert_width():
    base = moe_config()
    cfg = playground_config("aux_loss", 4, 16, False, 0.01, 0.1, base)
    assert cfg.n_routed_experts * cfg.d_expert == base.n_routed_experts * base.d_expert
    assert cfg.n_shared_experts == 0 and cfg.aux_alpha == 0.1 and cfg.n_activated_experts == 4
    with pytest.raises(ValueError, match="n_activated_experts"):
        playground_config("none", 4, 2, True, 0.01, 0.01)


def test_dashboard_builds_and_trains_on_click():
    data = make_data(n_train=200, n_val=60, batch_size=2, seq_len=16, val_batches=1)
    base = moe_config(d_model=16, n_layers=1, n_heads=2, d_expert=4)
    ui = balancing_playground(data, steps=2, base=base)
    assert isinstance(ui, W.VBox)
    controls, out = ui.children
    names = [getattr(c, "description", "") for c in controls.children]
    for want in ("top-k", "routed experts", "shared expert", "gamma", "alpha"):
        assert want in names
    # only the strength the chosen balancing uses can move
    assert not ui.controls["gamma"].disabled and ui.controls["alpha"].disabled
    ui.controls["balancing"].value = "aux_loss"
    assert ui.controls["gamma"].disabled and not ui.controls["alpha"].disabled
    ui.controls["balancing"].value = "aux_free"
    assert "aux-loss-free bias (gamma): val loss" not in ui.static_html()
    button = controls.children[-1]
    button.click()  # trains 2 steps and draws into the Output
    assert "aux-loss-free bias (gamma): val loss" in ui.static_html()  # the new run, as shown
    run = run_variant(
        "x", playground_config("aux_free", 2, 8, True, 0.01, 0.01, base), data, 2, progress=False
    )
    figs = run_figures(run, data.domain_names)
    assert len(figs) == 3 and all(f.layout.title.text for f in figs)


def test_playground_starts_with_a_run_already_trained():
    data = make_data(n_train=200, n_val=60, batch_size=2, seq_len=16, val_batches=1)
    base = moe_config(d_model=16, n_layers=1, n_heads=2, d_expert=4)
    run = run_variant("earlier", base, data, 2, progress=False)
    ui = balancing_playground(data, steps=2, base=base, initial=run)
    shown = [o["data"]["application/vnd.plotly.v1+json"] for o in ui.output.outputs]
    assert len(shown) == 3 and shown[0]["layout"]["title"]["text"].startswith("Last MoE layer")
    assert "earlier: val loss" in ui.static_html()
