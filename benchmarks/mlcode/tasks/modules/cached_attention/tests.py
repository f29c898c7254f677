import math as _math

import torch as _torch


def _expected_full(m, x, n_heads):
    b, t, d = x.shape
    hd = d // n_heads
    qkv = x @ m.qkv.weight.T + m.qkv.bias
    y = _torch.zeros(b, t, d)
    causal = _torch.ones(t, t, dtype=_torch.bool).triu(1)
    for h in range(n_heads):
        q = qkv[..., h * hd : (h + 1) * hd]
        k = qkv[..., d + h * hd : d + (h + 1) * hd]
        v = qkv[..., 2 * d + h * hd : 2 * d + (h + 1) * hd]
        s = (q @ k.transpose(1, 2) / _math.sqrt(hd)).masked_fill(causal, float("-inf"))
        y[..., h * hd : (h + 1) * hd] = s.softmax(-1) @ v
    return y @ m.proj.weight.T + m.proj.bias


def test_full_sequence_and_cache_shapes():
    _torch.manual_seed(0)
    m = CachedCausalSelfAttention(12, 3)
    x = _torch.randn(2, 6, 12)
    out, (k, v) = m(x)
    assert out.shape == (2, 6, 12) and k.shape == (2, 3, 6, 4) and v.shape == (2, 3, 6, 4)
    _torch.testing.assert_close(out, _expected_full(m, x, 3), rtol=1e-4, atol=1e-5)
    qkv = x @ m.qkv.weight.T + m.qkv.bias
    _torch.testing.assert_close(k[:, 1], qkv[..., 12 + 4 : 12 + 8])
    _torch.testing.assert_close(v[:, 2], qkv[..., 24 + 8 : 24 + 12])


def test_prefill_then_token_by_token_matches_full():
    _torch.manual_seed(1)
    m = CachedCausalSelfAttention(8, 2)
    x = _torch.randn(2, 7, 8)
    full, _ = m(x)
    with _torch.no_grad():
        out, cache = m(x[:, :3])
        outs = [out]
        for t in range(3, 7):
            step, cache = m(x[:, t : t + 1], cache)
            assert cache[0].shape == (2, 2, t + 1, 4)
            outs.append(step)
    _torch.testing.assert_close(_torch.cat(outs, dim=1), full.detach(), rtol=1e-4, atol=1e-5)


def test_chunked_decoding_matches_full():
    _torch.manual_seed(2)
    m = CachedCausalSelfAttention(8, 4)
    x = _torch.randn(1, 9, 8)
    full, _ = m(x)
    a, cache = m(x[:, :4])
    b, cache = m(x[:, 4:7], cache)
    c, cache = m(x[:, 7:], cache)
    _torch.testing.assert_close(_torch.cat([a, b, c], dim=1), full, rtol=1e-4, atol=1e-5)
