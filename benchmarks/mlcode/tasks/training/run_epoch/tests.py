import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def _model_and_data(seed):
    _torch.manual_seed(seed)
    model = _nn.Sequential(_nn.Linear(4, 16), _nn.ReLU(), _nn.Dropout(0.5), _nn.Linear(16, 1))
    x = _torch.randn(10, 4)
    y = _torch.randn(10, 1)
    loader = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]
    return model, x, y, loader


def test_eval_pass():
    model, x, y, loader = _model_and_data(0)
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append((m.training, _torch.is_grad_enabled())))
    model.train()
    loss = run_epoch(model, loader, _F.mse_loss)
    assert isinstance(loss, float)
    assert seen == [(False, False)] * 3
    model.eval()
    with _torch.no_grad():
        expected = _F.mse_loss(model(x), y).item()
    assert abs(loss - expected) < 1e-5
    assert all(p.grad is None for p in model.parameters())


def test_train_pass_restores_mode():
    model, x, y, loader = _model_and_data(1)
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append((m.training, _torch.is_grad_enabled())))
    model.eval()
    before = [p.detach().clone() for p in model.parameters()]
    steps = []
    opt = _torch.optim.SGD(model.parameters(), lr=0.1)
    original = opt.step
    opt.step = lambda *a, **k: (steps.append(1), original(*a, **k))[1]
    loss = run_epoch(model, loader, _F.mse_loss, opt)
    assert isinstance(loss, float) and loss > 0
    assert seen == [(True, True)] * 3 and len(steps) == 3
    assert not model.training and not model[2].training
    assert any(not _torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_pass_matches_manual_loop():
    model, x, y, loader = _model_and_data(2)
    model.train()
    import copy as _copy
    twin = _copy.deepcopy(model)
    opt = _torch.optim.SGD(model.parameters(), lr=0.05)
    opt_twin = _torch.optim.SGD(twin.parameters(), lr=0.05)
    _torch.manual_seed(5)
    loss = run_epoch(model, loader, _F.mse_loss, opt)
    _torch.manual_seed(5)
    total = 0.0
    for xb, yb in loader:
        opt_twin.zero_grad()
        batch_loss = _F.mse_loss(twin(xb), yb)
        batch_loss.backward()
        opt_twin.step()
        total += batch_loss.item() * len(xb)
    assert abs(loss - total / 10) < 1e-5
    for p, q in zip(model.parameters(), twin.parameters()):
        _torch.testing.assert_close(p, q)
    assert model.training
