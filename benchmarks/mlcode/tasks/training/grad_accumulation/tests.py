import copy as _copy

import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def _setup(seed):
    _torch.manual_seed(seed)
    model = _nn.Sequential(_nn.Linear(5, 8), _nn.Tanh(), _nn.Linear(8, 3))
    x = _torch.randn(10, 5)
    y = _torch.randint(0, 3, (10,))
    return model, x, y


def test_matches_full_batch_step():
    model, x, y = _setup(0)
    full = _copy.deepcopy(model)
    opt_full = _torch.optim.SGD(full.parameters(), lr=0.5)
    full_loss = _F.cross_entropy(full(x), y)
    full_loss.backward()
    opt_full.step()

    opt = _torch.optim.SGD(model.parameters(), lr=0.5)
    for p in model.parameters():
        p.grad = _torch.full_like(p, 100.0)  # stale gradients must be discarded
    micro = [(x[:2], y[:2]), (x[2:7], y[2:7]), (x[7:], y[7:])]
    loss = accumulated_step(model, opt, micro, _F.cross_entropy)
    assert isinstance(loss, float)
    assert abs(loss - full_loss.item()) < 1e-5
    for p, q in zip(model.parameters(), full.parameters()):
        _torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)
        _torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_steps_exactly_once():
    model, x, y = _setup(1)
    opt = _torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    original = opt.step
    opt.step = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    accumulated_step(model, opt, [(x[:3], y[:3]), (x[3:], y[3:])], _F.cross_entropy)
    assert len(calls) == 1
