import torch as _torch
import torch.nn as _nn


def test_update_formula_and_independence():
    _torch.manual_seed(0)
    model = _nn.Linear(3, 2)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    ema = EMA(model, decay=0.9)
    with _torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    state = ema.state_dict()
    assert set(state) == {"weight", "bias"}
    for n in state:
        assert _torch.equal(state[n], start[n])  # shadow unaffected by the in-place change
    ema.update(model)
    ema.update(model)
    for n, p in model.named_parameters():
        expected = 0.81 * start[n] + 0.19 * (start[n] + 1.0)
        _torch.testing.assert_close(ema.state_dict()[n], expected)
        assert not ema.state_dict()[n].requires_grad


def test_copy_to_and_state_dict_round_trip():
    _torch.manual_seed(1)
    model = _nn.Sequential(_nn.Linear(2, 4), _nn.Linear(4, 1))
    ema = EMA(model, decay=0.5)
    with _torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    ema.update(model)
    saved = ema.state_dict()
    saved["0.weight"].zero_()  # a copy: the EMA must not change
    assert not _torch.equal(ema.state_dict()["0.weight"], saved["0.weight"])
    other = EMA(model, decay=0.5)
    other.load_state_dict(ema.state_dict())
    other.copy_to(model)
    for n, p in model.named_parameters():
        assert _torch.equal(p.detach(), ema.state_dict()[n])
    assert all(p.requires_grad for p in model.parameters())
