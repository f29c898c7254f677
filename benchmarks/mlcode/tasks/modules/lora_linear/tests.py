import torch as _torch
import torch.nn as _nn


def test_parameters():
    _torch.manual_seed(0)
    layer = LoRALinear(6, 4, r=2, alpha=8)
    trainable = {name: tuple(p.shape) for name, p in layer.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A": (2, 6), "lora_B": (4, 2)}
    assert isinstance(layer.base, _nn.Linear) and not layer.base.weight.requires_grad
    assert layer.lora_A.abs().sum() > 0 and (layer.lora_B == 0).all()


def test_fresh_module_equals_base():
    _torch.manual_seed(1)
    layer = LoRALinear(5, 3, r=4, alpha=4)
    x = _torch.randn(2, 7, 5)
    _torch.testing.assert_close(layer(x), layer.base(x))


def test_forward_formula_and_gradients():
    _torch.manual_seed(2)
    layer = LoRALinear(5, 3, r=2, alpha=6, bias=False)
    with _torch.no_grad():
        layer.lora_B.normal_()
    x = _torch.randn(4, 5)
    expected = x @ layer.base.weight.T + 3.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    out = layer(x)
    _torch.testing.assert_close(out, expected)
    out.pow(2).sum().backward()
    assert layer.lora_A.grad.abs().sum() > 0 and layer.lora_B.grad.abs().sum() > 0
    assert layer.base.weight.grad is None


def test_merged_linear():
    _torch.manual_seed(3)
    for bias in (True, False):
        layer = LoRALinear(6, 5, r=3, alpha=12, bias=bias)
        with _torch.no_grad():
            layer.lora_B.normal_()
        before = {k: v.clone() for k, v in layer.state_dict().items()}
        merged = layer.merged_linear()
        assert isinstance(merged, _nn.Linear) and (merged.bias is None) == (not bias)
        x = _torch.randn(3, 6)
        _torch.testing.assert_close(merged(x), layer(x), rtol=1e-5, atol=1e-5)
        assert all(_torch.equal(before[k], v) for k, v in layer.state_dict().items())
