import torch as _torch


def test_eval_mode_and_zero_p_are_identity():
    _torch.manual_seed(0)
    x = _torch.randn(8, 3, 4)
    module = DropPath(0.5).eval()
    assert _torch.equal(module(x), x)
    assert _torch.equal(DropPath(0.0).train()(x), x)


def test_whole_samples_dropped_or_rescaled():
    _torch.manual_seed(1)
    x = _torch.randn(4000, 5) + 3.0
    out = DropPath(0.3).train()(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    dropped = (out == 0).all(dim=1)
    kept = ~dropped
    _torch.testing.assert_close(out[kept], x[kept] / 0.7)
    assert 0.25 < dropped.float().mean().item() < 0.35


def test_p_one_and_gradient():
    _torch.manual_seed(2)
    x = _torch.randn(6, 2, requires_grad=True)
    assert _torch.equal(DropPath(1.0).train()(x), _torch.zeros(6, 2))
    out = DropPath(0.5).train()(x)
    out.sum().backward()
    kept = (out != 0).all(dim=1)
    _torch.testing.assert_close(x.grad[kept], _torch.full_like(x.grad[kept], 2.0))
    assert (x.grad[~kept] == 0).all()
