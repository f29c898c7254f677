import torch as _torch
import torch.nn as _nn


def _model_and_data():
    _torch.manual_seed(0)
    model = _nn.Sequential(_nn.Linear(4, 32), _nn.BatchNorm1d(32), _nn.ReLU(), _nn.Dropout(0.5), _nn.Linear(32, 3))
    loader = [(_torch.randn(16, 4), _torch.randint(0, 3, (16,))) for _ in range(3)]
    return model, loader


def test_deterministic_and_state_unchanged():
    model, loader = _model_and_data()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grad_modes = []
    model[0].register_forward_hook(lambda m, i, o: grad_modes.append(_torch.is_grad_enabled()))
    first = evaluate(model, loader)
    second = evaluate(model, loader)
    assert isinstance(first, float) and first == second
    assert all(_torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training and model[3].training
    assert grad_modes and not any(grad_modes)


def test_accuracy_value_and_mode_kept():
    model, loader = _model_and_data()
    model.eval()
    with _torch.no_grad():
        correct = sum((model(x).argmax(-1) == y).sum().item() for x, y in loader)
    assert abs(evaluate(model, loader) - correct / 48) < 1e-12
    assert not model.training
