import copy as _copy

import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def _setup():
    _torch.manual_seed(0)
    model = _nn.Sequential(_nn.Linear(8, 32), _nn.GELU(), _nn.Linear(32, 4))
    x = _torch.randn(16, 8)
    y = _torch.randint(0, 4, (16,))
    return model, x, y


def test_forward_runs_in_bfloat16_and_weights_stay_float32():
    model, x, y = _setup()
    dtypes = []
    model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    opt = _torch.optim.SGD(model.parameters(), lr=0.1)
    loss = bf16_train_step(model, opt, x, y, _F.cross_entropy)
    assert isinstance(loss, float)
    assert dtypes == [_torch.bfloat16]
    assert all(p.dtype == _torch.float32 for p in model.parameters())
    assert all(p.grad is None or p.grad.dtype == _torch.float32 for p in model.parameters())


def test_step_close_to_float32_step():
    model, x, y = _setup()
    ref = _copy.deepcopy(model)
    opt = _torch.optim.SGD(model.parameters(), lr=0.5)
    opt_ref = _torch.optim.SGD(ref.parameters(), lr=0.5)
    for p in model.parameters():
        p.grad = _torch.full_like(p, 50.0)  # stale gradients must be cleared
    loss = bf16_train_step(model, opt, x, y, _F.cross_entropy)
    ref_loss = _F.cross_entropy(ref(x), y)
    ref_loss.backward()
    opt_ref.step()
    assert abs(loss - ref_loss.item()) < 0.05
    for p, q in zip(model.parameters(), ref.parameters()):
        _torch.testing.assert_close(p, q, rtol=0.0, atol=0.02)
    changed = [not _torch.equal(p, q) for p, q in zip(model.parameters(), _setup()[0].parameters())]
    assert all(changed)
