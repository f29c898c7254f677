import torch as _torch
import torch.nn as _nn


def test_buffers_and_quantised_values():
    _torch.manual_seed(0)
    linear = _nn.Linear(16, 5)
    with _torch.no_grad():
        linear.weight[2] = 0.0
    q = Int8Linear.from_float(linear)
    assert list(q.parameters()) == []
    state = q.state_dict()
    assert set(state) == {"weight_int8", "scale", "bias"}
    assert state["weight_int8"].dtype == _torch.int8 and state["weight_int8"].shape == (5, 16)
    assert state["scale"].dtype == _torch.float32 and state["scale"].shape == (5,)
    w = linear.weight.detach()
    scale = w.abs().amax(1) / 127
    scale[2] = 1.0
    _torch.testing.assert_close(state["scale"], scale)
    expected_q = _torch.clamp(_torch.round(w / scale[:, None]), -127, 127).to(_torch.int8)
    assert _torch.equal(state["weight_int8"], expected_q)
    assert (state["weight_int8"][2] == 0).all()
    assert state["weight_int8"].abs().amax(1)[[0, 1, 3, 4]].tolist() == [127, 127, 127, 127]


def test_forward_close_to_float_layer():
    _torch.manual_seed(1)
    linear = _nn.Linear(32, 8)
    q = Int8Linear.from_float(linear)
    x = _torch.randn(4, 3, 32)
    out = q(x)
    assert out.shape == (4, 3, 8)
    deq = q.weight_int8.float() * q.scale[:, None]
    _torch.testing.assert_close(out, x @ deq.T + linear.bias.detach())
    ref = linear(x).detach()
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 0.02


def test_without_bias():
    _torch.manual_seed(2)
    linear = _nn.Linear(4, 3, bias=False)
    q = Int8Linear.from_float(linear)
    assert q.bias is None and "bias" not in q.state_dict()
    x = _torch.randn(2, 4)
    _torch.testing.assert_close(q(x), x @ (q.weight_int8.float() * q.scale[:, None]).T)
