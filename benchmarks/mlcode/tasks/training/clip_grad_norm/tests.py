import torch as _torch
import torch.nn.utils as _nn_utils


def _forbidden(*args, **kwargs):
    raise AssertionError("torch.nn.utils.clip_grad_norm_ must not be used")


def _call(params, max_norm):
    saved = _nn_utils.clip_grad_norm_
    _nn_utils.clip_grad_norm_ = _forbidden
    try:
        return clip_grad_norm(params, max_norm)
    finally:
        _nn_utils.clip_grad_norm_ = saved


def test_clips_to_max_norm():
    a = _torch.zeros(2, requires_grad=True)
    b = _torch.zeros(1, requires_grad=True)
    c = _torch.zeros(3, requires_grad=True)  # no grad
    a.grad = _torch.tensor([3.0, 0.0])
    b.grad = _torch.tensor([4.0])
    total = _call(iter([a, b, c]), 1.0)
    assert total.dim() == 0 and total.dtype == _torch.float32
    assert abs(total.item() - 5.0) < 1e-6
    _torch.testing.assert_close(a.grad, _torch.tensor([3.0, 0.0]) / (5.0 + 1e-6))
    _torch.testing.assert_close(b.grad, _torch.tensor([4.0]) / (5.0 + 1e-6))
    assert c.grad is None


def test_small_norm_unchanged_and_model_generator():
    _torch.manual_seed(0)
    model = _torch.nn.Linear(4, 3)
    model(_torch.randn(5, 4)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    expected = _torch.sqrt(sum((g ** 2).sum() for g in grads))
    total = _call(model.parameters(), 1e6)
    _torch.testing.assert_close(total, expected)
    for p, g in zip(model.parameters(), grads):
        assert _torch.equal(p.grad, g)
    total = _call(model.parameters(), 0.5)
    new_norm = _torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert abs(new_norm.item() - 0.5) < 1e-4


def test_no_gradients():
    total = _call([_torch.zeros(2, requires_grad=True)], 1.0)
    assert total.item() == 0.0
