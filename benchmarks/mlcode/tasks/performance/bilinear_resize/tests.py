import torch as _torch


def _slow(images, out_h, out_w):
    b, c, h, w = images.shape
    out = _torch.empty(b, c, out_h, out_w, dtype=images.dtype)
    for i in range(out_h):
        y = i * (h - 1) / (out_h - 1) if out_h > 1 else 0.0
        y0 = min(int(y), h - 1)
        y1 = min(y0 + 1, h - 1)
        wy = y - y0
        for j in range(out_w):
            x = j * (w - 1) / (out_w - 1) if out_w > 1 else 0.0
            x0 = min(int(x), w - 1)
            x1 = min(x0 + 1, w - 1)
            wx = x - x0
            top = images[:, :, y0, x0] * (1 - wx) + images[:, :, y0, x1] * wx
            bottom = images[:, :, y1, x0] * (1 - wx) + images[:, :, y1, x1] * wx
            out[:, :, i, j] = top * (1 - wy) + bottom * wy
    return out


def test_matches_loop_up_and_down():
    g = _torch.Generator().manual_seed(0)
    images = _torch.randn(2, 3, 7, 9, generator=g)
    for out_h, out_w in [(13, 17), (4, 5), (7, 9), (1, 6), (5, 1), (1, 1)]:
        out = resize_bilinear(images, out_h, out_w)
        assert out.shape == (2, 3, out_h, out_w)
        _torch.testing.assert_close(out, _slow(images, out_h, out_w), rtol=1e-4, atol=1e-5)


def test_corners_are_preserved():
    images = _torch.randn(1, 1, 5, 6, generator=_torch.Generator().manual_seed(1))
    out = resize_bilinear(images, 11, 3)
    corners = out[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    _torch.testing.assert_close(corners, images[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]])


def test_speedup():
    images = _torch.randn(2, 3, 32, 40, generator=_torch.Generator().manual_seed(2))
    _torch.testing.assert_close(resize_bilinear(images, 64, 64), _slow(images, 64, 64), rtol=1e-4, atol=1e-5)
    speedup = _mlc_speedup(resize_bilinear, _slow, (images, 64, 64))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
