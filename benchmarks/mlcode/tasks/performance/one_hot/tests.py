import torch as _torch


def _slow(labels, num_classes, ignore_index=-100):
    out = _torch.zeros(labels.shape[0], num_classes)
    for i in range(labels.shape[0]):
        label = int(labels[i])
        if label != ignore_index:
            out[i, label] = 1.0
    return out


def _labels(n, c, seed, ignore=-100):
    g = _torch.Generator().manual_seed(seed)
    labels = _torch.randint(0, c, (n,), generator=g)
    labels[_torch.rand(n, generator=g) < 0.2] = ignore
    return labels


def test_matches_loop():
    labels = _labels(50, 6, 0)
    out = one_hot_with_ignore(labels, 6)
    assert out.dtype == _torch.float32
    assert _torch.equal(out, _slow(labels, 6))
    labels = _labels(30, 4, 1, ignore=3)
    assert _torch.equal(one_hot_with_ignore(labels, 4, ignore_index=3), _slow(labels, 4, ignore_index=3))


def test_empty_and_all_ignored():
    assert one_hot_with_ignore(_torch.zeros(0, dtype=_torch.long), 3).shape == (0, 3)
    assert _torch.equal(one_hot_with_ignore(_torch.full((4,), -100), 3), _torch.zeros(4, 3))


def test_speedup():
    labels = _labels(20000, 10, 2)
    assert _torch.equal(one_hot_with_ignore(labels, 10), _slow(labels, 10))
    speedup = _mlc_speedup(lambda: one_hot_with_ignore(labels, 10), lambda: _slow(labels, 10), ())
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
