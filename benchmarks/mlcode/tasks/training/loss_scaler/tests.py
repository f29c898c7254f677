import torch as _torch


def _param_with_grad(values):
    p = _torch.nn.Parameter(_torch.zeros(len(values)))
    p.grad = _torch.tensor(values)
    return p


def test_scale_and_unscaled_step():
    scaler = DynamicLossScaler(init_scale=8.0, growth_interval=100)
    loss = _torch.tensor(1.5, requires_grad=True)
    scaled = scaler.scale(loss)
    assert scaled.item() == 12.0 and scaled.requires_grad
    p = _param_with_grad([8.0, -16.0])
    opt = _torch.optim.SGD([p], lr=1.0)
    assert scaler.step(opt) is True
    assert p.grad.tolist() == [1.0, -2.0]
    assert p.detach().tolist() == [-1.0, 2.0]
    assert scaler.get_scale() == 8.0


def test_overflow_skips_step_and_backs_off():
    scaler = DynamicLossScaler(init_scale=1024.0, backoff_factor=0.25, growth_interval=2)
    for bad in (float("inf"), float("nan")):
        p = _param_with_grad([1.0, bad])
        q = _torch.nn.Parameter(_torch.zeros(1))  # no grad: skipped
        opt = _torch.optim.SGD([{"params": [q]}, {"params": [p]}], lr=1.0)
        assert scaler.step(opt) is False
        assert p.detach().tolist() == [0.0, 0.0]
    assert scaler.get_scale() == 1024.0 / 16
    assert isinstance(scaler.get_scale(), float)


def test_growth_after_interval_of_good_steps():
    scaler = DynamicLossScaler(init_scale=4.0, growth_factor=3.0, growth_interval=3)
    p = _torch.nn.Parameter(_torch.zeros(1))
    opt = _torch.optim.SGD([p], lr=0.0)
    scales = []
    for grad in [1.0, 1.0, float("inf"), 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]:
        p.grad = _torch.tensor([grad])
        scaler.step(opt)
        scales.append(scaler.get_scale())
    assert scales == [4.0, 4.0, 2.0, 2.0, 2.0, 6.0, 6.0, 6.0, 18.0]
