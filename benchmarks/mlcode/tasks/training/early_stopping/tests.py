def test_min_mode_sequence():
    stopper = EarlyStopping(patience=2)
    assert stopper.best is None
    decisions = [stopper.step(v) for v in [1.0, 0.8, 0.85, 0.9, 0.7, 0.7, 0.71]]
    assert decisions == [False, False, False, True, False, False, True]
    assert stopper.best == 0.7 and stopper.num_bad_steps == 2


def test_min_delta_and_max_mode():
    stopper = EarlyStopping(patience=3, min_delta=0.1, mode="max")
    out = [stopper.step(v) for v in [0.5, 0.55, 0.59, 0.61, 0.65]]
    assert out == [False, False, False, False, False]
    assert stopper.best == 0.61 and stopper.num_bad_steps == 1
    assert [stopper.step(v) for v in [0.7, 0.71]] == [False, True]


def test_bad_mode():
    try:
        EarlyStopping(patience=1, mode="up")
    except ValueError:
        return
    raise AssertionError("expected ValueError")
