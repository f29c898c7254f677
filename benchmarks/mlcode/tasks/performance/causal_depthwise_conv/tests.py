import torch as _torch


def _slow(x, weight):
    b, c, t = x.shape
    k = weight.shape[1]
    out = _torch.zeros_like(x)
    for i in range(t):
        for j in range(k):
            src = i - k + 1 + j
            if src >= 0:
                out[:, :, i] += weight[:, j] * x[:, :, src]
    return out


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    for b, c, t, k in [(2, 3, 10, 4), (1, 5, 3, 4), (3, 2, 7, 1)]:
        x = _torch.randn(b, c, t, generator=g)
        w = _torch.randn(c, k, generator=g)
        out = causal_depthwise_conv(x, w)
        assert out.shape == x.shape
        _torch.testing.assert_close(out, _slow(x, w), rtol=1e-5, atol=1e-5)


def test_causality():
    g = _torch.Generator().manual_seed(1)
    x = _torch.randn(1, 2, 12, generator=g)
    w = _torch.randn(2, 3, generator=g)
    y = x.clone()
    y[..., 8:] = 100.0
    _torch.testing.assert_close(causal_depthwise_conv(x, w)[..., :8], causal_depthwise_conv(y, w)[..., :8])


def test_speedup():
    g = _torch.Generator().manual_seed(2)
    x, w = _torch.randn(4, 16, 1024, generator=g), _torch.randn(16, 4, generator=g)
    _torch.testing.assert_close(causal_depthwise_conv(x, w), _slow(x, w), rtol=1e-5, atol=1e-5)
    speedup = _mlc_speedup(causal_depthwise_conv, _slow, (x, w))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
