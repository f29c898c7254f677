import math as _math


def _close(a, b):
    return abs(a - b) < 1e-12


def test_full_schedule():
    lrs = [wsd_lr(s, 1.0, 4, 3, 4, 0.2) for s in range(14)]
    cool = [1.0 - 0.8 * _math.sqrt(k / 4) for k in (1, 2, 3, 4)]
    expected = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0] + cool + [0.2, 0.2, 0.2]
    assert all(isinstance(v, float) for v in lrs)
    assert all(_close(a, b) for a, b in zip(lrs, expected)), lrs


def test_empty_phases():
    got = [wsd_lr(s, 2.0, 0, 0, 4, 0.0) for s in range(5)]
    expected = [2.0 - 2.0 * _math.sqrt(k / 4) for k in (1, 2, 3, 4)] + [0.0]
    assert all(_close(a, b) for a, b in zip(got, expected)), got
    assert [wsd_lr(s, 3.0, 3, 0, 0, 0.3) for s in range(4)] == [1.0, 2.0, 3.0, 0.3]
    assert wsd_lr(10, 3.0, 0, 100, 0, 0.3) == 3.0
