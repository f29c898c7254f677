import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def _model_and_data():
    _torch.manual_seed(0)
    model = _nn.Sequential(_nn.Linear(3, 5), _nn.Tanh(), _nn.Linear(5, 1))
    model[0].bias.requires_grad_(False)
    x = _torch.randn(8, 3)
    y = _torch.randn(8, 1)
    return model, x, y


def test_matches_full_batch_gradient():
    def body(rank, world_size):
        model, x, y = _model_and_data()
        shard = slice(rank * 4, rank * 4 + 4)
        _F.mse_loss(model(x[shard]), y[shard]).backward()
        grad_ids = [id(p.grad) for p in model.parameters() if p.grad is not None]
        result = average_gradients(model)
        assert result is None
        assert grad_ids == [id(p.grad) for p in model.parameters() if p.grad is not None]
        assert model[0].bias.grad is None
        return [p.grad.tolist() for p in model.parameters() if p.requires_grad]

    model, x, y = _model_and_data()
    _F.mse_loss(model(x), y).backward()
    expected = [p.grad for p in model.parameters() if p.requires_grad]
    for grads in _mlc_run_ranks(body):
        for got, want in zip(grads, expected):
            _torch.testing.assert_close(_torch.tensor(got), want, rtol=1e-5, atol=1e-6)


def test_ranks_take_identical_steps():
    def body(rank, world_size):
        model, x, y = _model_and_data()
        opt = _torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        for step in range(3):
            opt.zero_grad()
            _F.mse_loss(model(x[rank::2] + step), y[rank::2]).backward()
            average_gradients(model)
            opt.step()
        return [p.detach().tolist() for p in model.parameters()]

    a, b = _mlc_run_ranks(body)
    assert a == b
