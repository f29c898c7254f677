import math as _math

import torch as _torch


def _expected(m, x, mask, n_heads, n_kv):
    b, t, d = x.shape
    hd = d // n_heads
    q = x @ m.q_proj.weight.T
    k = x @ m.k_proj.weight.T
    v = x @ m.v_proj.weight.T
    y = _torch.zeros(b, t, n_heads * hd)
    for bi in range(b):
        for h in range(n_heads):
            kv = h // (n_heads // n_kv)
            for i in range(t):
                keys = [j for j in range(i + 1) if mask is None or int(mask[bi, j]) == 1]
                if not keys:
                    continue
                qi = q[bi, i, h * hd : (h + 1) * hd]
                kk = k[bi, keys, kv * hd : (kv + 1) * hd]
                vv = v[bi, keys, kv * hd : (kv + 1) * hd]
                w = (kk @ qi / _math.sqrt(hd)).softmax(0)
                y[bi, i, h * hd : (h + 1) * hd] = w @ vv
    return y @ m.o_proj.weight.T


def test_parameters_and_validation():
    m = GroupedQueryAttention(16, 4, 2)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {"q_proj.weight": (16, 16), "k_proj.weight": (8, 16), "v_proj.weight": (8, 16), "o_proj.weight": (16, 16)}
    for args in ((16, 4, 3), (15, 4, 2)):
        try:
            GroupedQueryAttention(*args)
        except ValueError:
            continue
        raise AssertionError(f"expected ValueError for {args}")


def test_matches_reference_no_mask():
    _torch.manual_seed(0)
    m = GroupedQueryAttention(16, 4, 2)
    x = _torch.randn(2, 5, 16)
    out = m(x)
    assert out.shape == (2, 5, 16)
    _torch.testing.assert_close(out, _expected(m, x, None, 4, 2), rtol=1e-4, atol=1e-5)


def test_padding_mask_left_and_right():
    _torch.manual_seed(1)
    m = GroupedQueryAttention(12, 6, 2)
    x = _torch.randn(2, 5, 12)
    mask = _torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    out = m(x, mask)
    assert _torch.isfinite(out).all()
    _torch.testing.assert_close(out, _expected(m, x, mask, 6, 2), rtol=1e-4, atol=1e-5)
    _torch.testing.assert_close(out[1, :2], _torch.zeros(2, 12))
    _torch.testing.assert_close(m(x, mask.bool()), out)


def test_single_kv_head():
    _torch.manual_seed(2)
    m = GroupedQueryAttention(8, 4, 1)
    x = _torch.randn(1, 4, 8)
    _torch.testing.assert_close(m(x), _expected(m, x, None, 4, 1), rtol=1e-4, atol=1e-5)
