import math as _math

import torch as _torch


def _slow(q, k, v):
    b, h, t, d = q.shape
    out = _torch.empty_like(q)
    for bi in range(b):
        for hi in range(h):
            for i in range(t):
                scores = k[bi, hi, : i + 1] @ q[bi, hi, i] / _math.sqrt(d)
                out[bi, hi, i] = _torch.softmax(scores, dim=0) @ v[bi, hi, : i + 1]
    return out


def _qkv(shape, seed):
    g = _torch.Generator().manual_seed(seed)
    return [_torch.randn(*shape, generator=g) for _ in range(3)]


def test_matches_loop():
    for shape, seed in [((1, 2, 5, 4), 0), ((2, 1, 9, 8), 1), ((1, 1, 1, 3), 2)]:
        q, k, v = _qkv(shape, seed)
        out = causal_attention(q, k, v)
        assert out.shape == q.shape
        _torch.testing.assert_close(out, _slow(q, k, v), rtol=1e-4, atol=1e-5)


def test_speedup():
    q, k, v = _qkv((2, 4, 128, 32), 3)
    _torch.testing.assert_close(causal_attention(q, k, v), _slow(q, k, v), rtol=1e-4, atol=1e-5)
    speedup = _mlc_speedup(causal_attention, _slow, (q, k, v))
    assert speedup >= 5.0, f"only {speedup:.1f}x faster than the loop version"
