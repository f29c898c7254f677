import torch as _torch


def _slow(a, b):
    out = _torch.empty(a.shape[0], b.shape[0], dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = ((a[i] - b[j]) ** 2).sum()
    return out


def _inputs(n, m, d, seed):
    g = _torch.Generator().manual_seed(seed)
    return _torch.randn(n, d, generator=g) * 3, _torch.randn(m, d, generator=g) * 3


def test_matches_loop():
    for n, m, d, seed in [(7, 5, 3, 0), (1, 9, 16, 1), (12, 1, 1, 2)]:
        a, b = _inputs(n, m, d, seed)
        out = pairwise_sq_dists(a, b)
        assert out.shape == (n, m)
        _torch.testing.assert_close(out, _slow(a, b), rtol=1e-4, atol=1e-4)
        assert (out >= 0).all()


def test_identical_points_give_zero():
    a, _ = _inputs(4, 1, 8, 3)
    out = pairwise_sq_dists(a, a.clone())
    assert (out.diagonal().abs() < 1e-4).all() and (out >= 0).all()


def test_speedup():
    a, b = _inputs(100, 80, 16, 4)
    _torch.testing.assert_close(pairwise_sq_dists(a, b), _slow(a, b), rtol=1e-4, atol=1e-4)
    speedup = _mlc_speedup(pairwise_sq_dists, _slow, (a, b))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
