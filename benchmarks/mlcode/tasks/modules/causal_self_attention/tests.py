import math as _math

import torch as _torch


def _expected(module, x, n_heads):
    b, t, d = x.shape
    hd = d // n_heads
    qkv = x @ module.qkv.weight.T + module.qkv.bias
    out = _torch.zeros(b, t, d)
    for h in range(n_heads):
        q = qkv[..., h * hd : (h + 1) * hd]
        k = qkv[..., d + h * hd : d + (h + 1) * hd]
        v = qkv[..., 2 * d + h * hd : 2 * d + (h + 1) * hd]
        scores = q @ k.transpose(1, 2) / _math.sqrt(hd)
        scores = scores.masked_fill(_torch.ones(t, t, dtype=_torch.bool).triu(1), float("-inf"))
        out[..., h * hd : (h + 1) * hd] = scores.softmax(-1) @ v
    return out @ module.proj.weight.T + module.proj.bias


def test_parameters_and_validation():
    module = CausalSelfAttention(12, 3)
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == {"qkv.weight": (36, 12), "qkv.bias": (36,), "proj.weight": (12, 12), "proj.bias": (12,)}
    try:
        CausalSelfAttention(10, 3)
    except ValueError:
        pass
    else:
        raise AssertionError("expected ValueError")


def test_matches_reference_computation():
    _torch.manual_seed(0)
    module = CausalSelfAttention(12, 3)
    x = _torch.randn(2, 6, 12)
    out = module(x)
    assert out.shape == (2, 6, 12)
    _torch.testing.assert_close(out, _expected(module, x, 3), rtol=1e-4, atol=1e-5)


def test_future_tokens_do_not_leak():
    _torch.manual_seed(1)
    module = CausalSelfAttention(8, 2)
    x = _torch.randn(1, 5, 8)
    y = x.clone()
    y[:, 3:] = _torch.randn(1, 2, 8)
    _torch.testing.assert_close(module(x)[:, :3], module(y)[:, :3])
