import torch as _torch
import torch.nn.functional as _F


def test_parameters_and_zero_init():
    module = AdaLayerNorm(8, 5)
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == {"proj.weight": (16, 5), "proj.bias": (16,)}
    assert all((p == 0).all() for p in module.parameters())


def test_fresh_module_is_layer_norm():
    _torch.manual_seed(0)
    module = AdaLayerNorm(8, 5)
    x = _torch.randn(2, 3, 8)
    out = module(x, _torch.randn(2, 5))
    _torch.testing.assert_close(out, _F.layer_norm(x, (8,), eps=1e-6))


def test_modulation_formula():
    _torch.manual_seed(1)
    module = AdaLayerNorm(4, 3)
    with _torch.no_grad():
        module.proj.weight.normal_()
        module.proj.bias.normal_()
    x = _torch.randn(2, 5, 4)
    cond = _torch.randn(2, 3)
    mod = cond @ module.proj.weight.T + module.proj.bias
    shift, scale = mod[:, :4], mod[:, 4:]
    expected = _F.layer_norm(x, (4,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
    out = module(x, cond)
    assert out.shape == (2, 5, 4)
    _torch.testing.assert_close(out, expected)
