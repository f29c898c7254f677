import math as _math

import torch as _torch


def _expected(s, warmup, total, min_ratio):
    if s < warmup:
        return s / warmup
    if s > total:
        return min_ratio
    p = (s - warmup) / (total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + _math.cos(_math.pi * p))


def _lrs(optimizer, scheduler, steps):
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def test_warmup_then_cosine_two_groups():
    a, b = _torch.nn.Parameter(_torch.zeros(1)), _torch.nn.Parameter(_torch.zeros(1))
    opt = _torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=1.0)
    sched = cosine_schedule_with_warmup(opt, warmup_steps=4, total_steps=12)
    assert isinstance(sched, _torch.optim.lr_scheduler.LRScheduler)
    for s, (lr_a, lr_b) in enumerate(_lrs(opt, sched, 16)):
        m = _expected(s, 4, 12, 0.0)
        assert abs(lr_a - m) < 1e-9 and abs(lr_b - 0.1 * m) < 1e-9, (s, lr_a, lr_b)


def test_min_ratio_and_no_warmup():
    p = _torch.nn.Parameter(_torch.zeros(1))
    opt = _torch.optim.SGD([p], lr=2.0)
    sched = cosine_schedule_with_warmup(opt, warmup_steps=0, total_steps=5, min_lr_ratio=0.1)
    lrs = [lr for (lr,) in _lrs(opt, sched, 9)]
    assert abs(lrs[0] - 2.0) < 1e-9
    for s, lr in enumerate(lrs):
        assert abs(lr - 2.0 * _expected(s, 0, 5, 0.1)) < 1e-9, (s, lr)
    assert abs(lrs[-1] - 0.2) < 1e-9
