import torch as _torch


def test_values():
    p = _torch.tensor([0.0, 0.5, 1.0, 2.0, 0.0])
    out = xlogx(p)
    expected = _torch.tensor([0.0, 0.5 * _torch.log(_torch.tensor(0.5)).item(), 0.0, 2.0 * _torch.log(_torch.tensor(2.0)).item(), 0.0])
    assert out.shape == p.shape and out.dtype == p.dtype
    _torch.testing.assert_close(out, expected)


def test_gradient_is_finite_and_zero_at_zero():
    p = _torch.tensor([[0.0, 0.25], [1.0, 0.0]], dtype=_torch.float64, requires_grad=True)
    xlogx(p).sum().backward()
    assert _torch.isfinite(p.grad).all()
    expected = _torch.tensor([[0.0, _torch.log(_torch.tensor(0.25, dtype=_torch.float64)).item() + 1], [1.0, 0.0]], dtype=_torch.float64)
    _torch.testing.assert_close(p.grad, expected)


def test_entropy_of_a_softmax_with_zeros_trains():
    logits = _torch.tensor([0.0, 1.0, float("-inf")], requires_grad=True)
    probs = _torch.softmax(logits, dim=0)
    entropy = -xlogx(probs).sum()
    entropy.backward()
    assert _torch.isfinite(entropy) and _torch.isfinite(logits.grad[:2]).all()
