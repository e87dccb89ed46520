"""course_lib.runtime: FAST mode, seeding, device choice, the doctor."""

from __future__ import annotations

import pytest
import torch

from course_lib import runtime


@pytest.mark.parametrize(
    "raw,expected",
    [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)],
)
def test_fast_mode_reads_env(monkeypatch, raw, expected):
    monkeypatch.setenv("COURSE_FAST", raw)
    assert runtime.fast_mode() is expected


def test_fast_mode_default_when_unset(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert runtime.fast_mode() is False
    assert runtime.fast_mode(default=True) is True


def test_fast_mode_rejects_garbage(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="set it to 1"):
        runtime.fast_mode()


def _small_training_run(seed: int) -> torch.Tensor:
    runtime.seed_everything(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 4)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(5):
        x = torch.randn(32, 8)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sample = torch.multinomial(torch.softmax(model(torch.randn(4, 8)), -1), 3, replacement=True)
    return torch.cat(
        [p.detach().flatten() for p in model.parameters()] + [sample.float().flatten()]
    )


def test_seed_everything_makes_runs_bit_identical():
    a, b = _small_training_run(123), _small_training_run(123)
    assert torch.equal(a, b)
    c = _small_training_run(124)
    assert not torch.equal(a, c), "a different seed must give a different run"


def test_seed_everything_returns_seeded_generator():
    g1 = runtime.seed_everything(7)
    g2 = runtime.seed_everything(7)
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        runtime.seed_everything(bad)


def _big_reductions() -> torch.Tensor:
    # Sums over a million numbers each: torch splits such reductions between its threads.
    return torch.stack([torch.randn(1_100_000).sum() for _ in range(8)])


def test_seed_everything_repeats_only_at_the_thread_count_it_sets():
    before = torch.get_num_threads()
    try:
        runtime.seed_everything(0, threads=1)
        one = _big_reductions()
        runtime.seed_everything(0, threads=1)
        assert torch.get_num_threads() == 1 and torch.equal(_big_reductions(), one)
        runtime.seed_everything(0, threads=2)
        two = _big_reductions()
        assert torch.get_num_threads() == 2
        # The condition in the docstring is real: same seed, another thread count, other bits.
        assert not torch.equal(one, two)
        torch.testing.assert_close(one, two, rtol=1e-5, atol=0)  # ... in the last bits only
        runtime.seed_everything(0, threads=2)
        assert torch.equal(_big_reductions(), two)
    finally:
        torch.set_num_threads(before)


def test_seed_everything_keeps_the_thread_count_when_not_told():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        runtime.seed_everything(0)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_seed_everything_rejects_bad_thread_counts(bad):
    with pytest.raises(ValueError, match="threads=1"):
        runtime.seed_everything(0, threads=bad)


def test_is_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert runtime.is_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-x")
    assert runtime.is_colab() is True


def test_doctor_reports_versions_and_advice(capsys):
    report = runtime.doctor(verbose=True)
    out = capsys.readouterr().out
    assert report.get("torch").detail == torch.__version__
    for name in ("python", "transformers", "bitsandbytes", "device", "widgets"):
        assert name in out
        report.get(name)
    if not torch.cuda.is_available():
        assert "Colab T4" in report.get("device").advice
    assert "<table>" in report._repr_html_()


def test_doctor_brief_is_one_line(capsys):
    runtime.doctor(brief=True)
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and out.startswith("environment:")


def test_doctor_flags_missing_package(monkeypatch):
    real = runtime._version
    monkeypatch.setattr(runtime, "_version", lambda d: None if d == "transformers" else real(d))
    report = runtime.doctor(verbose=False)
    check = report.get("transformers")
    assert not check.ok and "pip install transformers" in check.advice
    assert not report.ok


def test_import_optional_names_the_install_command():
    with pytest.raises(ImportError, match="pip install no-such-pkg"):
        runtime.import_optional("no_such_module_xyz", "a test", install="no-such-pkg")


def test_doctor_says_what_the_cpu_path_of_notebook_05_loads(monkeypatch):
    """Without a GPU notebook 05 runs float32 (stand-in or real model) and loads one NF4 copy of
    the stand-in on the CPU to measure memory; it never loads 16-bit there."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_version", lambda d: "9.9" if d == "bitsandbytes" else "1.0")
    note = runtime.doctor(verbose=False).get("bitsandbytes").advice
    assert "float32" in note and "NF4" in note and "16-bit" not in note


def test_import_bitsandbytes_quiets_only_its_optional_kernel_notice(monkeypatch, caplog):
    import logging

    def fake_import(name):
        logging.getLogger(runtime.BNB_CPU_KERNEL_LOGGER).warning("pip install kernels, please")
        logging.getLogger("bitsandbytes.other").warning("a real problem")
        return name

    monkeypatch.setattr(runtime.importlib, "import_module", fake_import)
    with caplog.at_level(logging.WARNING):
        assert runtime.import_bitsandbytes() == "bitsandbytes"
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]
    assert logging.getLogger(runtime.BNB_CPU_KERNEL_LOGGER).level == logging.NOTSET  # restored


def test_quiet_progress_bars_restores_transformers_bars():
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    with runtime.quiet_progress_bars():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
