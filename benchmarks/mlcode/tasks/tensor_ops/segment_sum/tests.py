import torch as _torch


def test_matches_loop_unsorted_ids():
    g = _torch.Generator().manual_seed(0)
    values = _torch.randn(20, 3, generator=g, dtype=_torch.float64)
    ids = _torch.randint(0, 6, (20,), generator=g)
    ids[ids == 4] = 5  # segment 4 stays empty
    v0 = values.clone()
    out = segment_sum(values, ids, 7)
    assert out.shape == (7, 3) and out.dtype == _torch.float64
    for s in range(7):
        expected = values[ids == s].sum(0) if (ids == s).any() else _torch.zeros(3, dtype=_torch.float64)
        _torch.testing.assert_close(out[s], expected)
    assert _torch.equal(values, v0)


def test_no_rows():
    out = segment_sum(_torch.zeros(0, 4), _torch.zeros(0, dtype=_torch.long), 3)
    assert out.shape == (3, 4) and out.abs().sum() == 0


def test_gradient():
    values = _torch.ones(5, 2, requires_grad=True)
    ids = _torch.tensor([2, 0, 2, 1, 0])
    weights = _torch.tensor([[1.0], [10.0], [100.0]])
    (segment_sum(values, ids, 3) * weights).sum().backward()
    assert values.grad[:, 0].tolist() == [100.0, 1.0, 100.0, 10.0, 1.0]
