import torch as _torch


def test_head_order():
    g = _torch.Generator().manual_seed(0)
    x = _torch.randn(2, 3, 5, 4, generator=g)
    out = repeat_kv(x, 4)
    assert out.shape == (2, 12, 5, 4)
    for h in range(12):
        assert _torch.equal(out[:, h], x[:, h // 4])


def test_n_rep_one_and_gradients():
    g = _torch.Generator().manual_seed(1)
    x = _torch.randn(1, 2, 3, 2, generator=g, requires_grad=True)
    assert _torch.equal(repeat_kv(x, 1), x)
    weights = _torch.arange(6, dtype=_torch.float32).view(1, 6, 1, 1)
    (repeat_kv(x, 3) * weights).sum().backward()
    assert _torch.allclose(x.grad[0, 0], _torch.full((3, 2), 0.0 + 1 + 2))
    assert _torch.allclose(x.grad[0, 1], _torch.full((3, 2), 3.0 + 4 + 5))
