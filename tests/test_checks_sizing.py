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
    assert checks.check_decode_bound(lambda n, b, bw: bw * 1e9 / (n * b / 8))
    no_scale = checks.check_decode_bound(lambda n, b, bw: bw / (n * b / 8))
    assert not no_scale and "1e9" in no_scale.hint


def test_kv_checker_spots_missing_layers():
    res = checks.check_gqa_kv_bytes(lambda n_l, h, d, t, e: 2 * h * d * t * e)
    assert not res and "n_layers" in res.hint


def test_unfinished_stub_gets_a_friendly_message():
    res = checks.check_decode_bound(lambda n, b, bw: None)
    assert not res and "returned None" in res.message
