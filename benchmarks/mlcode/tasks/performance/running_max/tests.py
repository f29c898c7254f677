import torch as _torch


def _slow(x):
    out = x.clone()
    for b in range(x.shape[0]):
        for t in range(1, x.shape[1]):
            out[b, t] = _torch.maximum(out[b, t - 1], x[b, t])
    return out


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    for shape in [(3, 10), (1, 1), (4, 0)]:
        x = _torch.randn(*shape, generator=g)
        out = running_max(x)
        assert out.shape == x.shape
        assert _torch.equal(out, _slow(x))
    x = _torch.randint(-5, 5, (5, 9), generator=g).to(_torch.float64)
    out = running_max(x)
    assert out.dtype == _torch.float64 and _torch.equal(out, _slow(x))


def test_speedup():
    x = _torch.randn(64, 256, generator=_torch.Generator().manual_seed(1))
    assert _torch.equal(running_max(x), _slow(x))
    speedup = _mlc_speedup(running_max, _slow, (x,))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
