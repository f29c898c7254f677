import copy as _copy

import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def test_each_step_uses_its_own_gradient():
    _torch.manual_seed(0)
    model = _nn.Linear(3, 1)
    twin = _copy.deepcopy(model)
    batches = [(_torch.randn(4, 3), _torch.randn(4, 1)) for _ in range(4)]
    opt = _torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = _torch.ones_like(p) * 5  # stale
    losses = train_steps(model, opt, batches, _F.mse_loss)
    opt_twin = _torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    expected = []
    for x, y in batches:
        opt_twin.zero_grad()
        loss = _F.mse_loss(twin(x), y)
        loss.backward()
        opt_twin.step()
        expected.append(loss.item())
    assert all(isinstance(v, float) for v in losses)
    assert all(abs(a - b) < 1e-6 for a, b in zip(losses, expected))
    for p, q in zip(model.parameters(), twin.parameters()):
        _torch.testing.assert_close(p, q)


def test_repeated_batch_gradient_does_not_grow():
    _torch.manual_seed(1)
    model = _nn.Linear(2, 1)
    with _torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    x, y = _torch.ones(1, 2), _torch.ones(1, 1)
    opt = _torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the gradient stays the same
    train_steps(model, opt, [(x, y)] * 3, _F.mse_loss)
    _torch.testing.assert_close(model.bias.grad, _torch.tensor([-2.0]))
