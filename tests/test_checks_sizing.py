"""Notebook-00 checkers pass right answers and explain the usual wrong ones."""

from __future__ import annotations

from course_lib.checks import sizing as checks


def test_weights_checker():
    assert checks.check_weights_gb(lambda n, b: n * b / 8 / 1e9)
    bad = checks.check_weights_gb(lambda n, b: n * b / 1e9)
    assert not bad and "divide bits by 8" in bad.hint
    gib = checks.check_weights_gb(lambda n, b: n * b / 8 / 2**30)
    assert not gib and "GiB" in gib.hint
    boom = checks.check_weights_gb(lambda n, b: 1 / 0)
    assert not boom and "ZeroDivisionError" in boom.message


def test_kv_checker():
    assert checks.check_gqa_kv_bytes(lambda n_l, h, d, t, e: 2 * n_l * h * d * t * e)
    only_k = checks.check_gqa_kv_bytes(lambda n_l, h, d, t, e: n_l * h * d * t * e)
    assert not only_k and "factor 2" in only_k.hint
    no_bytes = checks.check_gqa_kv_bytes(lambda n_l, h, d, t, e: 2 * n_l * h * d * t)
    assert not no_bytes and "bytes_per_element" in no_bytes.hint


def test_decode_checker():
    assert checks.check_decode_bound(lambda total, active, b, bw: bw * 1e9 / (active * b / 8))
    no_scale = checks.check_decode_bound(lambda total, active, b, bw: bw / (active * b / 8))
    assert not no_scale and "1e9" in no_scale.hint


def test_decode_checker_spots_total_instead_of_active():
    # the learner gets both counts and must choose: all 671B of R1 is the MoE slip
    res = checks.check_decode_bound(lambda total, active, b, bw: bw * 1e9 / (total * b / 8))
    assert not res and "params_active" in res.hint and "DeepSeek-R1" in res.message


def test_decode_checker_spots_gib_and_ignored_bits():
    gib = checks.check_decode_bound(lambda total, active, b, bw: bw * 2**30 / (active * b / 8))
    assert not gib and "GiB" in gib.hint
    fixed = checks.check_decode_bound(lambda total, active, b, bw: bw * 1e9 / (active * 4 / 8))
    assert not fixed and "ignores bits" in fixed.hint


def test_kv_checker_spots_hard_coded_bytes_per_element():
    res = checks.check_gqa_kv_bytes(lambda n_l, h, d, t, e: 2 * n_l * h * d * t * 2)
    assert not res and "2 bytes per element" in res.hint


def test_kv_checker_spots_missing_layers():
    res = checks.check_gqa_kv_bytes(lambda n_l, h, d, t, e: 2 * h * d * t * e)
    assert not res and "n_layers" in res.hint


def test_unfinished_stub_gets_a_friendly_message():
    res = checks.check_decode_bound(lambda total, active, b, bw: None)
    assert not res and "returned None" in res.message
