import torch as _torch


def _slow(x, k, stride):
    b, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = _torch.empty(b, c, oh, ow, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, :, i, j] = window.amax(dim=(-2, -1))
    return out


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    for shape, k, stride in [((2, 3, 7, 9), 2, 2), ((1, 2, 8, 8), 3, 1), ((2, 1, 10, 7), 3, 2), ((1, 1, 4, 4), 4, 1)]:
        x = _torch.randn(*shape, generator=g)
        out = max_pool2d(x, k, stride)
        expected = _slow(x, k, stride)
        assert out.shape == expected.shape and out.dtype == x.dtype
        assert _torch.equal(out, expected)


def test_speedup():
    x = _torch.randn(2, 2, 66, 66, generator=_torch.Generator().manual_seed(1))
    assert _torch.equal(max_pool2d(x, 3, 1), _slow(x, 3, 1))
    speedup = _mlc_speedup(max_pool2d, _slow, (x, 3, 1))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
