import torch as _torch


def test_parameter_names_and_shapes():
    block = SwiGLU(8, 20)
    shapes = {name: tuple(p.shape) for name, p in block.named_parameters()}
    assert shapes == {"w_gate.weight": (20, 8), "w_up.weight": (20, 8), "w_down.weight": (8, 20)}


def test_formula():
    _torch.manual_seed(0)
    block = SwiGLU(6, 10)
    x = _torch.randn(2, 5, 6)
    gate = x @ block.w_gate.weight.T
    up = x @ block.w_up.weight.T
    expected = (gate * _torch.sigmoid(gate) * up) @ block.w_down.weight.T
    out = block(x)
    assert out.shape == (2, 5, 6)
    _torch.testing.assert_close(out, expected)


def test_backward():
    _torch.manual_seed(1)
    block = SwiGLU(4, 8)
    block(_torch.randn(3, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
