import torch as _torch


def _expected(x, weight, eps):
    x = x.double()
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * weight.double()


def test_parameters():
    norm = RMSNorm(8)
    assert [name for name, _ in norm.named_parameters()] == ["weight"]
    assert norm.weight.shape == (8,) and _torch.equal(norm.weight.detach(), _torch.ones(8))


def test_formula_with_custom_weight_and_eps():
    _torch.manual_seed(0)
    norm = RMSNorm(6, eps=1e-2)
    with _torch.no_grad():
        norm.weight.copy_(_torch.randn(6))
    x = _torch.randn(2, 3, 6) * 0.1
    out = norm(x)
    assert out.shape == x.shape and out.dtype == _torch.float32
    _torch.testing.assert_close(out.double(), _expected(x, norm.weight.detach(), 1e-2), rtol=1e-5, atol=1e-6)


def test_bfloat16_input():
    _torch.manual_seed(1)
    norm = RMSNorm(16)
    x = (_torch.randn(4, 16) * 50).to(_torch.bfloat16)
    out = norm(x)
    assert out.dtype == _torch.bfloat16
    _torch.testing.assert_close(out.double(), _expected(x.float(), norm.weight.detach(), 1e-6), rtol=2e-2, atol=2e-2)


def test_gradient_reaches_weight():
    _torch.manual_seed(2)
    norm = RMSNorm(4)
    norm(_torch.randn(3, 4)).pow(2).sum().backward()
    assert norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0
