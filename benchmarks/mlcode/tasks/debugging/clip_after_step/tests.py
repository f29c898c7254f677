import copy as _copy

import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def test_update_is_bounded_by_the_clip():
    _torch.manual_seed(0)
    model = _nn.Linear(4, 1)
    before = [p.detach().clone() for p in model.parameters()]
    opt = _torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = _torch.randn(8, 4) * 100, _torch.randn(8, 1) * 1000
    loss = train_step(model, opt, x, y, _F.mse_loss, max_norm=0.5)
    assert isinstance(loss, float) and loss > 1e4
    change = _torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert abs(change.item() - 0.5) < 1e-3


def test_matches_manual_step():
    _torch.manual_seed(1)
    model = _nn.Sequential(_nn.Linear(3, 5), _nn.Tanh(), _nn.Linear(5, 2))
    twin = _copy.deepcopy(model)
    x, y = _torch.randn(6, 3) * 10, _torch.randn(6, 2) * 10
    opt = _torch.optim.SGD(model.parameters(), lr=0.1)
    train_step(model, opt, x, y, _F.mse_loss, max_norm=1.0)
    opt_twin = _torch.optim.SGD(twin.parameters(), lr=0.1)
    _F.mse_loss(twin(x), y).backward()
    _torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
    opt_twin.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        _torch.testing.assert_close(p, q)
