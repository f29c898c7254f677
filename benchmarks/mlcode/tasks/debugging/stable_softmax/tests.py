import torch as _torch


def test_large_logits():
    x = _torch.tensor([[1000.0, 999.0, 0.0], [-1000.0, -1001.0, -1002.0]])
    out = softmax(x)
    assert _torch.isfinite(out).all()
    _torch.testing.assert_close(out, _torch.softmax(x, dim=-1))


def test_other_dims_and_masked_entries():
    g = _torch.Generator().manual_seed(0)
    x = _torch.randn(3, 4, 5, generator=g) * 300
    for dim in (0, 1, -1):
        _torch.testing.assert_close(softmax(x, dim=dim), _torch.softmax(x, dim=dim))
    x = _torch.tensor([[0.5, float("-inf"), 700.0], [float("-inf"), 2.0, float("-inf")]])
    _torch.testing.assert_close(softmax(x), _torch.softmax(x, dim=-1))


def test_dtype():
    x = (_torch.randn(4, 8, generator=_torch.Generator().manual_seed(1)) * 200).to(_torch.float64)
    out = softmax(x)
    assert out.dtype == _torch.float64
    _torch.testing.assert_close(out, _torch.softmax(x, -1))
