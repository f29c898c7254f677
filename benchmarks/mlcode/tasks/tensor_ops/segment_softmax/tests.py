import torch as _torch


def _expected(scores, ids, num_segments):
    out = _torch.zeros_like(scores)
    for s in range(num_segments):
        sel = ids == s
        if sel.any():
            out = out.index_put((sel.nonzero().squeeze(1),), _torch.softmax(scores[sel], dim=0))
    return out


def test_matches_per_segment_softmax():
    g = _torch.Generator().manual_seed(0)
    scores = _torch.randn(30, generator=g, dtype=_torch.float64)
    ids = _torch.randint(0, 7, (30,), generator=g)
    ids[ids == 3] = 6
    out = segment_softmax(scores, ids, 8)
    assert out.shape == (30,) and out.dtype == _torch.float64
    _torch.testing.assert_close(out, _expected(scores, ids, 8))
    sums = _torch.zeros(8, dtype=_torch.float64).index_add(0, ids, out)
    _torch.testing.assert_close(sums[ids.unique()], _torch.ones(len(ids.unique()), dtype=_torch.float64))


def test_large_scores_are_stable():
    scores = _torch.tensor([1000.0, 999.0, -1000.0, -1001.0, 5.0])
    ids = _torch.tensor([0, 0, 1, 1, 2])
    out = segment_softmax(scores, ids, 3)
    assert _torch.isfinite(out).all()
    _torch.testing.assert_close(out, _expected(scores, ids, 3))


def test_gradient_matches_exact_softmax():
    g = _torch.Generator().manual_seed(1)
    scores = _torch.randn(12, generator=g, dtype=_torch.float64) * 3
    ids = _torch.randint(0, 3, (12,), generator=g)
    weights = _torch.randn(12, generator=g, dtype=_torch.float64)
    a = scores.clone().requires_grad_(True)
    (segment_softmax(a, ids, 3) * weights).sum().backward()
    b = scores.clone().requires_grad_(True)
    (_expected(b, ids, 3) * weights).sum().backward()
    _torch.testing.assert_close(a.grad, b.grad)


def test_empty_input():
    out = segment_softmax(_torch.zeros(0), _torch.zeros(0, dtype=_torch.long), 4)
    assert out.shape == (0,)
