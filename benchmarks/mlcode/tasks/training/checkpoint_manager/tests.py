import os as _os
import tempfile as _tempfile

import torch as _torch
import torch.nn as _nn
import torch.nn.functional as _F


def _make():
    model = _nn.Sequential(_nn.Linear(4, 16), _nn.ReLU(), _nn.Dropout(0.3), _nn.Linear(16, 1))
    opt = _torch.optim.AdamW(model.parameters(), lr=0.01)
    sched = _torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def _train(model, opt, sched, steps, data):
    for _ in range(steps):
        x, y = data
        opt.zero_grad()
        _F.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()


def test_resume_is_exact():
    _torch.manual_seed(0)
    data = (_torch.randn(8, 4), _torch.randn(8, 1))
    with _tempfile.TemporaryDirectory() as tmp:
        manager = CheckpointManager(_os.path.join(tmp, "ckpts"), keep_last=2)
        model, opt, sched = _make()
        _train(model, opt, sched, 3, data)
        manager.save(3, model, opt, sched)
        _train(model, opt, sched, 3, data)  # the uninterrupted run
        expected = [p.detach().clone() for p in model.parameters()]

        _torch.manual_seed(123)
        model2, opt2, sched2 = _make()
        fresh = CheckpointManager(_os.path.join(tmp, "ckpts"), keep_last=2)
        assert fresh.load(model2, opt2, sched2) == 3
        assert sched2.last_epoch == 3
        _train(model2, opt2, sched2, 3, data)
        for p, q in zip(model2.parameters(), expected):
            assert _torch.equal(p.detach(), q)


def test_retention_and_file_names():
    _torch.manual_seed(1)
    model, opt, sched = _make()
    with _tempfile.TemporaryDirectory() as tmp:
        manager = CheckpointManager(tmp, keep_last=2)
        assert manager.latest_step() is None
        for step in (5, 10, 15, 120):
            manager.save(step, model, opt)
        assert sorted(_os.listdir(tmp)) == ["ckpt_00000015.pt", "ckpt_00000120.pt"]
        assert manager.latest_step() == 120
        state = _torch.load(_os.path.join(tmp, "ckpt_00000120.pt"), weights_only=True)
        assert isinstance(state, dict)


def test_load_specific_step_and_missing():
    _torch.manual_seed(2)
    model, opt, sched = _make()
    data = (_torch.randn(4, 4), _torch.randn(4, 1))
    with _tempfile.TemporaryDirectory() as tmp:
        manager = CheckpointManager(tmp, keep_last=3)
        try:
            manager.load(model, opt)
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("expected FileNotFoundError")
        manager.save(1, model, opt)
        first = [p.detach().clone() for p in model.parameters()]
        _train(model, opt, sched, 2, data)
        manager.save(2, model, opt)
        assert manager.load(model, opt, step=1) == 1
        for p, q in zip(model.parameters(), first):
            assert _torch.equal(p.detach(), q)
        try:
            manager.load(model, opt, step=7)
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("expected FileNotFoundError")
