import math as _math

import torch as _torch


def test_matches_loop():
    g = _torch.Generator().manual_seed(0)
    q, k, v = (_torch.randn(2, 5, 4, generator=g) for _ in range(3))
    out = causal_attention(q, k, v)
    assert _torch.isfinite(out).all()
    for b in range(2):
        for i in range(5):
            w = _torch.softmax(q[b, i] @ k[b, : i + 1].T / _math.sqrt(4), dim=-1)
            _torch.testing.assert_close(out[b, i], w @ v[b, : i + 1])


def test_first_position_copies_its_value():
    g = _torch.Generator().manual_seed(1)
    q, k, v = (_torch.randn(1, 3, 2, generator=g) for _ in range(3))
    _torch.testing.assert_close(causal_attention(q, k, v)[0, 0], v[0, 0])
