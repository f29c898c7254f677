import torch as _torch


def _expected_row(row, k):
    ranked = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
    return [i in ranked for i in range(len(row))]


def test_random_rows_with_leading_dims():
    g = _torch.Generator().manual_seed(0)
    scores = _torch.randn(2, 3, 8, generator=g)
    out = topk_mask(scores, 3)
    assert out.dtype == _torch.bool and out.shape == (2, 3, 8)
    for row, got in zip(scores.reshape(-1, 8).tolist(), out.reshape(-1, 8).tolist()):
        assert got == _expected_row(row, 3)


def test_ties_prefer_lower_index():
    scores = _torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0, 5.0]])
    out = topk_mask(scores, 2)
    assert out.tolist() == [[False, True, True, False, False], [True, True, False, False, False]]
    g = _torch.Generator().manual_seed(1)
    scores = _torch.randint(0, 3, (20, 9), generator=g).float()
    for k in (1, 4, 7):
        out = topk_mask(scores, k)
        for row, got in zip(scores.tolist(), out.tolist()):
            assert got == _expected_row(row, k)


def test_k_bounds():
    scores = _torch.randn(3, 4, generator=_torch.Generator().manual_seed(2))
    assert not topk_mask(scores, 0).any()
    assert topk_mask(scores, 4).all() and topk_mask(scores, 9).all()
    assert topk_mask(scores, 2).sum(-1).tolist() == [2, 2, 2]
