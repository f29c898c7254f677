import torch as _torch
import torch.nn.functional as _F


def test_moderate_logits_and_soft_labels():
    g = _torch.Generator().manual_seed(0)
    logits = _torch.randn(20, generator=g) * 3
    targets = _torch.rand(20, generator=g)
    loss = bce_with_logits(logits, targets)
    assert loss.dim() == 0
    _torch.testing.assert_close(loss, _F.binary_cross_entropy_with_logits(logits, targets))


def test_confident_logits():
    logits = _torch.tensor([[30.0, -30.0, 100.0], [-100.0, 1e4, -1e4]], requires_grad=True)
    targets = _torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.5]])
    loss = bce_with_logits(logits, targets)
    assert _torch.isfinite(loss)
    expected = _F.binary_cross_entropy_with_logits(logits.detach().double(), targets.double())
    _torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-3)
    loss.backward()
    assert _torch.isfinite(logits.grad).all()
    ref = logits.detach().clone().requires_grad_(True)
    _F.binary_cross_entropy_with_logits(ref, targets).backward()
    _torch.testing.assert_close(logits.grad, ref.grad)
