import math as _math

import torch as _torch


def test_padding_is_invisible():
    g = _torch.Generator().manual_seed(0)
    q = _torch.randn(1, 3, 4, generator=g)
    k = _torch.randn(1, 3, 4, generator=g)
    v = _torch.randn(1, 3, 4, generator=g)
    unpadded = masked_attention(q, k, v, _torch.ones(1, 3, dtype=_torch.bool))
    k_pad = _torch.cat([k, _torch.randn(1, 2, 4, generator=g)], dim=1)
    v_pad = _torch.cat([v, _torch.randn(1, 2, 4, generator=g)], dim=1)
    mask = _torch.tensor([[True, True, True, False, False]])
    _torch.testing.assert_close(masked_attention(q, k_pad, v_pad, mask), unpadded)


def test_matches_reference_per_row():
    g = _torch.Generator().manual_seed(1)
    q, k, v = _torch.randn(2, 4, 8, generator=g), _torch.randn(2, 6, 8, generator=g), _torch.randn(2, 6, 8, generator=g)
    mask = _torch.tensor([[True] * 6, [False, True, False, True, True, False]])
    out = masked_attention(q, k, v, mask)
    for b in range(2):
        keep = mask[b]
        w = _torch.softmax(q[b] @ k[b, keep].T / _math.sqrt(8), dim=-1)
        _torch.testing.assert_close(out[b], w @ v[b, keep])
