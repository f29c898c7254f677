import torch as _torch


def test_value():
    g = _torch.Generator().manual_seed(0)
    logits = _torch.randn(8, 5, generator=g)
    targets = _torch.randint(0, 5, (8,), generator=g)
    expected = -_torch.log_softmax(logits, -1)[_torch.arange(8), targets].mean()
    loss = classification_loss(logits, targets)
    assert loss.dim() == 0
    _torch.testing.assert_close(loss, expected)


def test_confident_and_correct_is_near_zero():
    logits = _torch.tensor([[20.0, -20.0], [-20.0, 20.0]], requires_grad=True)
    loss = classification_loss(logits, _torch.tensor([0, 1]))
    assert loss.item() < 1e-6
    loss.backward()
    assert logits.grad is not None
