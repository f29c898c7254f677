import math as _math

import torch as _torch


def _expected(x, w_qkv, w_out, n_heads):
    b, t, d = x.shape
    hd = d // n_heads
    qkv = x @ w_qkv.T
    y = _torch.zeros(b, t, d)
    for h in range(n_heads):
        q = qkv[..., h * hd : (h + 1) * hd]
        k = qkv[..., d + h * hd : d + (h + 1) * hd]
        v = qkv[..., 2 * d + h * hd : 2 * d + (h + 1) * hd]
        s = (q @ k.transpose(1, 2) / _math.sqrt(hd)).masked_fill(_torch.ones(t, t, dtype=_torch.bool).triu(1), float("-inf"))
        y[..., h * hd : (h + 1) * hd] = s.softmax(-1) @ v
    return y @ w_out.T


def _weights(d, seed):
    g = _torch.Generator().manual_seed(seed)
    return _torch.randn(3 * d, d, generator=g) / d**0.5, _torch.randn(d, d, generator=g) / d**0.5


def test_matches_per_head_reference():
    w_qkv, w_out = _weights(8, 0)
    x = _torch.randn(2, 5, 8, generator=_torch.Generator().manual_seed(1))
    _torch.testing.assert_close(multi_head_attention(x, w_qkv, w_out, 2), _expected(x, w_qkv, w_out, 2), rtol=1e-4, atol=1e-5)


def test_causal():
    w_qkv, w_out = _weights(12, 2)
    g = _torch.Generator().manual_seed(3)
    x = _torch.randn(1, 6, 12, generator=g)
    y = x.clone()
    y[:, 4:] = _torch.randn(1, 2, 12, generator=g)
    _torch.testing.assert_close(multi_head_attention(x, w_qkv, w_out, 3)[:, :4], multi_head_attention(y, w_qkv, w_out, 3)[:, :4])
