import torch as _torch


def _slow(a, b):
    out = _torch.zeros(a.shape[0], b.shape[0], dtype=a.dtype)
    for i in range(a.shape[0]):
        ax1, ay1, ax2, ay2 = a[i].tolist()
        for j in range(b.shape[0]):
            bx1, by1, bx2, by2 = b[j].tolist()
            iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            ih = max(0.0, min(ay2, by2) - max(ay1, by1))
            inter = iw * ih
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def _boxes(n, seed):
    g = _torch.Generator().manual_seed(seed)
    xy = _torch.rand(n, 2, generator=g) * 10
    wh = _torch.rand(n, 2, generator=g) * 4
    return _torch.cat([xy, xy + wh], dim=1)


def test_matches_loop():
    a, b = _boxes(9, 0), _boxes(7, 1)
    _torch.testing.assert_close(box_iou(a, b), _slow(a, b), rtol=1e-5, atol=1e-6)


def test_degenerate_and_identical_boxes():
    a = _torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [5.0, 5.0, 6.0, 7.0]])
    b = _torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 3.0, 2.0]])
    out = box_iou(a, b)
    _torch.testing.assert_close(out, _slow(a, b), rtol=1e-5, atol=1e-6)
    assert out[1, 1].item() == 0.0 and abs(out[0, 0].item() - 1.0) < 1e-6


def test_speedup():
    a, b = _boxes(100, 2), _boxes(80, 3)
    _torch.testing.assert_close(box_iou(a, b), _slow(a, b), rtol=1e-5, atol=1e-6)
    speedup = _mlc_speedup(box_iou, _slow, (a, b))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
